import { describe, expect, it } from 'vitest';
import { periodOf } from '../../lib/partitions.ts';
import { escapeHtml, renderGrid, renderType } from './render.ts';
import type { TypeView } from './scanner.ts';
import { partitionStatus } from './state.ts';

const hostile = '<script>alert("x")</script>&\'`';
const type: TypeView = {
  name: 'page_view',
  owner: hostile,
  description: hostile,
  priority: 'normal',
  partitioning: 'hourly',
  storage: ['gcs'],
  sloHours: 24,
  status: 'active',
  versions: [{ version: 1, fingerprint: hostile, createdAt: hostile }],
};

describe('status pages', () => {
  it('escapes every character that could open markup or an attribute', () => {
    expect(escapeHtml(hostile)).toBe('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;&#39;&#96;');
  });

  it('renders registry text (owner, description, fingerprints) escaped, never as markup', () => {
    const p = periodOf(Date.parse('2026-11-30T10:00:00Z'), 'hourly');
    const status = partitionStatus(type, p, { accepted: 1, stagedFiles: 1, stagedRecords: 1, leased: false }, p.startMs + 1, { graceMs: 0, deadlineMs: 1 });
    const grid = renderGrid({
      at: '2026-11-30T10:00:00Z',
      filter: { owner: hostile, priority: undefined, hours: 24, page: 1 },
      owners: [hostile],
      hourly: { columns: [p.key], rows: [{ type, partitions: [status] }] },
      daily: { columns: [], rows: [] },
      totalTypes: 1,
      pageSize: 100,
    });
    const typePage = renderType(type, [status], undefined);
    for (const html of [grid, typePage]) {
      expect(html).not.toContain('<script');
      expect(html).not.toContain('"x"');
      expect(html).toContain('&#60;script&#62;');
      // No resource from elsewhere: styles inline, no script.
      expect(html).not.toMatch(/<(script|link)\b|src=/);
    }
    expect(grid).toContain(`data-state="open"`);
  });
});
