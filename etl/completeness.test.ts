import { describe, expect, it } from 'vitest';
import { periodOf } from '../lib/partitions.ts';
import { DIRECT, distinctPerInstance, encodeInstanceCounts, judgeCompleteness, manifestCompleteness, parseInstanceCounts, upperBoundsPerInstance, type InstanceAudit } from './completeness.ts';

const period = periodOf(Date.parse('2026-11-23T09:00:00Z'), 'hourly');
const base = { period, graceMs: 60_000, deadlineMs: 3 * 3_600_000, livenessMs: 120_000, stagingQuietMs: 10 * 60_000 };
const after = period.endMs + 60_000;
const audit = (instanceId: string, accepted: number, final: boolean, lastWriteMs = after, unreported = 0): InstanceAudit => ({ instanceId, accepted, unreported, final, lastWriteMs });

describe('judgeCompleteness', () => {
  it('complete: every instance final with exactly its count delivered; direct events are reported, never waited for', () => {
    const c = judgeCompleteness({ ...base, nowMs: after, audits: [audit('a', 3, true), audit('b', 2, true)], delivered: new Map([['a', 3], ['b', 2], [DIRECT, 7]]) });
    expect(c.decision).toBe('complete');
    expect(c.directDelivered).toBe(7);
    expect(c.lostInstances).toEqual([]);
  });

  it('a final count counts the events confirmed after their client timed out too', () => {
    expect(judgeCompleteness({ ...base, nowMs: after, audits: [audit('a', 3, true, after, 1)], delivered: new Map([['a', 4]]) }).decision).toBe('complete');
    expect(judgeCompleteness({ ...base, nowMs: after, audits: [audit('a', 3, true, after, 1)], delivered: new Map([['a', 3]]) }).decision).toBe('wait');
  });

  it('complete-after-instance-loss: an instance silent for longer than the liveness bound without a final count, its last count delivered', () => {
    const lastWrite = period.endMs - 30 * 60_000;
    const c = judgeCompleteness({ ...base, nowMs: after, audits: [audit('a', 3, true), audit('dead', 10, false, lastWrite)], delivered: new Map([['a', 3], ['dead', 12]]) });
    expect(c.decision).toBe('complete-after-instance-loss');
    expect(c.lostInstances).toEqual(['dead']);
    expect(c.instances.find((i) => i.instanceId === 'dead')).toMatchObject({ audited: 10, delivered: 12, state: 'lost', satisfied: true });
  });

  it('a lost instance with less than its last durable count delivered keeps the period waiting until the deadline', () => {
    const old = period.endMs - 30 * 60_000;
    expect(judgeCompleteness({ ...base, nowMs: after, audits: [audit('dead', 10, false, old)], delivered: new Map([['dead', 9]]) }).decision).toBe('wait');
    expect(judgeCompleteness({ ...base, nowMs: period.endMs + base.deadlineMs, audits: [audit('dead', 10, false, old)], delivered: new Map([['dead', 9]]) }).decision).toBe('deadline');
  });

  it('a lost instance counts only once the period\'s staging was quiet for the liveness bound too (its last interval may be on its way)', () => {
    const old = period.endMs - 30 * 60_000;
    const judge = (stagingQuietMs: number) =>
      judgeCompleteness({ ...base, stagingQuietMs, nowMs: after, audits: [audit('dead', 10, false, old)], delivered: new Map([['dead', 10]]) }).decision;
    expect(judge(base.livenessMs)).toBe('wait');
    expect(judge(base.livenessMs + 1)).toBe('complete-after-instance-loss');
    // Final instances do not wait for quiet staging: their counts are exact.
    expect(judgeCompleteness({ ...base, stagingQuietMs: 0, nowMs: after, audits: [audit('a', 3, true)], delivered: new Map([['a', 3]]) }).decision).toBe('complete');
  });

  it('a live instance without a final count (events in flight) keeps the period open, however many were delivered', () => {
    const c = judgeCompleteness({ ...base, nowMs: after, audits: [audit('a', 3, true), audit('live', 5, false, after - 1000)], delivered: new Map([['a', 3], ['live', 50]]) });
    expect(c.decision).toBe('wait');
    expect(c.instances.find((i) => i.instanceId === 'live')).toMatchObject({ state: 'live', satisfied: false });
    // Exactly at the bound it is still live; past it, gone.
    const atBound = judgeCompleteness({ ...base, nowMs: after, audits: [audit('x', 5, false, after - base.livenessMs)], delivered: new Map([['x', 5]]) });
    expect(atBound.decision).toBe('wait');
    const pastBound = judgeCompleteness({ ...base, nowMs: after, audits: [audit('x', 5, false, after - base.livenessMs - 1)], delivered: new Map([['x', 5]]) });
    expect(pastBound.decision).toBe('complete-after-instance-loss');
  });

  it('an instance that delivered events but never wrote an audit count is lost with a count of 0, and named', () => {
    const c = judgeCompleteness({ ...base, nowMs: after, audits: [audit('a', 1, true)], delivered: new Map([['a', 1], ['unaudited', 4]]) });
    expect(c.decision).toBe('complete-after-instance-loss');
    expect(c.lostInstances).toEqual(['unaudited']);
  });

  it('never completes within the grace', () => {
    expect(judgeCompleteness({ ...base, nowMs: after - 1, audits: [audit('a', 1, true)], delivered: new Map([['a', 1]]) }).decision).toBe('wait');
  });

  it('the manifest section names the rule, the lost instances, audited vs delivered per instance and the direct events', () => {
    const c = judgeCompleteness({ ...base, nowMs: after, audits: [audit('dead', 2, false, 0)], delivered: new Map([['dead', 2], [DIRECT, 1]]) });
    expect(manifestCompleteness(c, 120_000)).toEqual({
      rule: 'complete-after-instance-loss',
      lostInstances: ['dead'],
      livenessMs: 120_000,
      instances: [{ instanceId: 'dead', audited: 2, unreported: 0, final: false, delivered: 2, state: 'lost' }],
      direct: { delivered: 1 },
    });
  });
});

describe('per-instance counts of staged files', () => {
  it('counts distinct ids per instance; an id accepted by two instances counts for each', () => {
    const counts = distinctPerInstance([
      { eventId: 'x', instanceId: 'a' },
      { eventId: 'x', instanceId: 'a' },
      { eventId: 'x', instanceId: 'b' },
      { eventId: 'y' },
    ]);
    expect(counts).toEqual(new Map([['a', 1], ['b', 1], [DIRECT, 1]]));
  });

  it('sums files into upper bounds; a file without per-instance counts bounds every instance by its records', () => {
    const known = { records: 3, byInstance: new Map([['a', 2], ['b', 1]]) };
    expect(upperBoundsPerInstance([known, known], ['a', 'c'])).toEqual(new Map([['a', 4], ['b', 2], ['c', 0]]));
    expect(upperBoundsPerInstance([known, { records: 5, byInstance: undefined }], ['c'])).toEqual(new Map([['a', 7], ['b', 6], ['c', 5], [DIRECT, 5]]));
  });

  it('metadata round-trips, and is left out when too large for object metadata', () => {
    const counts = new Map([['b', 2], ['a', 1]]);
    expect(parseInstanceCounts(encodeInstanceCounts(counts))).toEqual(counts);
    const many = new Map(Array.from({ length: 500 }, (_, i) => [`instance-${i}-abcdef`, i] as [string, number]));
    expect(encodeInstanceCounts(many)).toBeUndefined();
  });
});
