import { describe, expect, it } from 'vitest';
import { periodOf } from '../lib/partitions.ts';
import { buildManifest, closeDecision, dedupById, summarizeRecords } from './closer.ts';
import type { StagedRecord } from './envelope.ts';

const period = periodOf(Date.parse('2026-11-23T09:00:00Z'), 'hourly');
const base = { period, graceMs: 60_000, deadlineMs: 3 * 3_600_000, livenessMs: 120_000, stagingQuietMs: 10 * 60_000 };
const finalAudit = (accepted: number) => [{ instanceId: 'i1', accepted, unreported: 0, final: true, lastWriteMs: period.endMs }];
const delivered = (n: number) => new Map([['i1', n]]);

describe('closeDecision', () => {
  it('waits while the period is open or within its grace', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs - 1, audits: finalAudit(5), delivered: delivered(5) }).decision).toBe('wait');
    expect(closeDecision({ ...base, nowMs: period.endMs + 59_999, audits: finalAudit(5), delivered: delivered(5) }).decision).toBe('wait');
  });
  it('closes complete once the grace passed and the final count matches', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, audits: finalAudit(5), delivered: delivered(5) }).decision).toBe('complete');
  });
  it('waits for missing events (or duplicates counted) until the deadline, then closes', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, audits: finalAudit(6), delivered: delivered(5) }).decision).toBe('wait');
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, audits: finalAudit(4), delivered: delivered(5) }).decision).toBe('wait');
    expect(closeDecision({ ...base, nowMs: period.endMs + 3 * 3_600_000, audits: finalAudit(6), delivered: delivered(5) }).decision).toBe('deadline');
  });
  it('with staged counts (an upper bound) a final instance needs at least its count: the counting merge decides', () => {
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, audits: finalAudit(4), delivered: delivered(5), upperBound: true }).decision).toBe('complete');
    expect(closeDecision({ ...base, nowMs: period.endMs + 60_000, audits: finalAudit(6), delivered: delivered(5), upperBound: true }).decision).toBe('wait');
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
