import { describe, expect, it } from 'vitest';
import { periodOf } from '../lib/partitions.ts';
import { buildManifest, closeDecision, dedupById, summarizeRecords } from './closer.ts';
import type { StagedRecord } from './envelope.ts';

const period = periodOf(Date.parse('2026-11-23T09:00:00Z'), 'hourly');
const base = { period, graceMs: 60_000, deadlineMs: 3 * 3_600_000 };

describe('closeDecision', () => {
  it('waits while the period is open or within its grace', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs - 1, accepted: 5, delivered: 5 })).toBe('wait');
    expect(closeDecision({ ...base, nowMs: period.endMs + 59_999, accepted: 5, delivered: 5 })).toBe('wait');
  });
  it('closes complete once the grace passed and the audit matches', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, accepted: 5, delivered: 5 })).toBe('complete');
  });
  it('waits for missing events (or a lagging audit) until the deadline, then closes', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, accepted: 6, delivered: 5 })).toBe('wait');
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, accepted: 4, delivered: 5 })).toBe('wait');
    expect(closeDecision({ ...base, nowMs: period.endMs + 3 * 3_600_000, accepted: 6, delivered: 5 })).toBe('deadline');
  });
});

const rec = (eventId: string, fp = 'a', record = Buffer.from([1]), stats: Record<string, number> = {}): StagedRecord => ({ eventId, receiveTime: period.startMs + eventId.length, schemaFingerprint: fp, stats, record });

describe('dedupById', () => {
  it('keeps one record per id, sorted, the same one whatever the input order', () => {
    const input = [rec('b'), rec('a', 'b'), rec('a', 'a', Buffer.from([2])), rec('a', 'a', Buffer.from([1])), rec('c')];
    const out = dedupById(input);
    expect(out.map((r) => r.eventId)).toEqual(['a', 'b', 'c']);
    expect(out[0]!.record).toEqual(Buffer.from([1]));
    expect(dedupById([...input].reverse())).toEqual(out);
  });
});

describe('buildManifest', () => {
  it('sums stats and audits after dedup', () => {
    const records = [rec('a', 'a', Buffer.from([1]), { nulledFields: 2 }), rec('bb', 'a', Buffer.from([1]), { nulledFields: 1 })];
    const m = buildManifest({ eventType: 't', period, delivered: summarizeRecords(records), files: [], fingerprints: ['a'], deliveredSchemas: { a: {} }, accepted: 2, duplicatesDropped: 3, closedBy: 'complete', lateCount: 0 });
    expect(m.transformStats).toEqual({ nulledFields: 3 });
    expect(m.audit).toEqual({ accepted: 2, delivered: 2, duplicatesDropped: 3, complete: true });
    expect(m.timeRange).toMatchObject({ start: '2026-11-23T09:00:00.000Z', end: '2026-11-23T10:00:00.000Z', minReceiveTime: '2026-11-23T09:00:00.001Z' });
  });
});
