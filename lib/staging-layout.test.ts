import { describe, expect, it } from 'vitest';
import { parseStagedName } from './staging-layout.ts';

describe('staged object names', () => {
  it('reads the type and period of an unsharded and of a sharded staged file', () => {
    expect(parseStagedName('staging/page_view/2026-01-05T07/abc.avro')).toEqual({ eventType: 'page_view', periodKey: '2026-01-05T07' });
    expect(parseStagedName('staging/page_view/2026-01-05T07/shard-2-of-4/abc.avro')).toEqual({ eventType: 'page_view', periodKey: '2026-01-05T07' });
    expect(parseStagedName('staging/page_view/2026-01-05T07/other/abc.avro')).toBeUndefined();
  });
});
