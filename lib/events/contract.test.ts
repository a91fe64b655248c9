import { describe, expect, it } from 'vitest';
import { foldAuditCount, laterAuditCount, parseAuditCount, parseAuditSummary, type AuditCount } from './contract.ts';

const count = (instanceId: string, accepted: number, extra: Partial<AuditCount> = {}): AuditCount => ({
  eventType: 't',
  hour: '2026-01-02T03',
  instanceId,
  accepted,
  updatedAt: '2026-01-02T03:10:00.000Z',
  ...extra,
});

describe('audit counts', () => {
  it('a final count wins over a larger non-final one, otherwise the larger count wins', () => {
    expect(laterAuditCount(count('a', 5), count('a', 7))).toMatchObject({ accepted: 7 });
    expect(laterAuditCount(count('a', 9), count('a', 7, { final: true }))).toMatchObject({ accepted: 7, final: true });
    expect(laterAuditCount(count('a', 7, { final: true }), count('a', 9))).toMatchObject({ accepted: 7, final: true });
  });

  it('folding is idempotent and order-independent, one entry per instance sorted by id', () => {
    const a = count('a', 3, { final: true });
    const b = count('b', 4);
    const b2 = count('b', 6, { final: true });
    const one = foldAuditCount(foldAuditCount(foldAuditCount(undefined, b), a), b2);
    const two = foldAuditCount(foldAuditCount(foldAuditCount(foldAuditCount(undefined, b2), a), b), a);
    expect(one).toEqual(two);
    expect(one.instances.map((c) => `${c.instanceId}:${c.accepted}`)).toEqual(['a:3', 'b:6']);
  });

  it('reads only well-formed counts and summaries', () => {
    expect(parseAuditCount(count('a', 1, { final: true, unreported: 2 }))).toEqual(count('a', 1, { final: true, unreported: 2 }));
    expect(parseAuditCount({ ...count('a', 1), accepted: -1 })).toBeUndefined();
    expect(parseAuditCount({ ...count('a', 1), accepted: 1.5 })).toBeUndefined();
    expect(parseAuditCount({ ...count('a', 1), updatedAt: 'yesterday' })).toBeUndefined();
    expect(parseAuditCount('x')).toBeUndefined();
    expect(parseAuditSummary({ eventType: 't', hour: '2026-01-02T03', instances: [count('a', 1), { bad: true }] })?.instances).toHaveLength(1);
    expect(parseAuditSummary({ eventType: 't' })).toBeUndefined();
  });
});
