import { describe, expect, it } from 'vitest';
import { periodOf } from '../../lib/partitions.ts';
import { partitionStatus, type PartitionFacts, type TypeSettingsView } from './state.ts';

const HOUR = 3_600_000;
const MIN = 60_000;
const type: TypeSettingsView = { name: 'page_view', owner: 'web', priority: 'high', partitioning: 'hourly', storage: ['gcs'], sloHours: 3 };
const p = periodOf(Date.parse('2026-11-30T10:00:00Z'), 'hourly');
const timing = { graceMs: 5 * MIN, deadlineMs: 3 * HOUR };
const none: PartitionFacts = { accepted: 0, stagedFiles: 0, stagedRecords: 0, leased: false };
const manifest = { closedBy: 'complete' as const, recordCount: 10, accepted: 10, delivered: 10, duplicatesDropped: 0, files: 1, schemaFingerprints: ['f'], closedAtMs: p.endMs + 10 * MIN };

describe('partitionStatus', () => {
  it('is open until the period ends, with staged and accepted counts so far', () => {
    const s = partitionStatus(type, p, { ...none, accepted: 7, stagedRecords: 5, stagedFiles: 2 }, p.startMs + 30 * MIN, timing);
    expect(s).toMatchObject({ state: 'open', accepted: 7, staged: 5, stagedFiles: 2, delivered: null, missing: 0, late: 0, loaded: null });
    expect(s.slo).toMatchObject({ hours: 3, due: '2026-11-30T14:00:00.000Z', met: true, remainingSeconds: 3.5 * 3600, closeLagSeconds: null });
  });

  it('is closing after the end, overdue past the deadline, and the SLO is missed then', () => {
    const facts = { ...none, accepted: 7, stagedRecords: 5, stagedFiles: 1 };
    expect(partitionStatus(type, p, facts, p.endMs + MIN, timing).state).toBe('closing');
    const late = partitionStatus(type, p, facts, p.endMs + 3 * HOUR + MIN, timing);
    expect(late.state).toBe('overdue');
    expect(late.slo.met).toBe(false);
    expect(late.slo.remainingSeconds).toBe(-60);
    // A closer holding the lease past the deadline is closing it, not overdue.
    expect(partitionStatus(type, p, { ...facts, leased: true }, p.endMs + 3 * HOUR + MIN, timing).state).toBe('closing');
  });

  it('tells empty (nothing accepted) from missing (accepted, nothing staged)', () => {
    const empty = partitionStatus(type, p, none, p.endMs + HOUR, timing);
    expect(empty.state).toBe('empty');
    expect(empty.slo.met).toBe(true);
    expect(partitionStatus(type, p, { ...none, accepted: 4 }, p.endMs + HOUR, timing).state).toBe('missing');
  });

  it('reads a closed partition from its manifest: outcome, missing count, late events, close lag against the SLO', () => {
    const complete = partitionStatus(type, p, { ...none, manifest, lateCount: 2 }, p.endMs + 5 * HOUR, timing);
    expect(complete).toMatchObject({ state: 'closed-complete', accepted: 10, delivered: 10, missing: 0, late: 2, closedAt: '2026-11-30T11:10:00.000Z' });
    expect(complete.slo).toMatchObject({ closeLagSeconds: 600, met: true, remainingSeconds: null });
    const deadline = partitionStatus(type, p, { ...none, manifest: { ...manifest, closedBy: 'deadline', accepted: 12, delivered: 9, recordCount: 9, closedAtMs: p.endMs + 3 * HOUR + 30_000 } }, p.endMs + 5 * HOUR, timing);
    expect(deadline).toMatchObject({ state: 'closed-deadline', accepted: 12, delivered: 9, missing: 3 });
    expect(deadline.slo).toMatchObject({ closeLagSeconds: 3 * 3600 + 30, met: false });
  });

  it('says whether a type stored in BigQuery is loaded', () => {
    const bq = { ...type, storage: ['gcs', 'bigquery'] as TypeSettingsView['storage'] };
    expect(partitionStatus(bq, p, { ...none, manifest }, p.endMs + HOUR, timing)).toMatchObject({ loaded: false, loadedRows: null });
    const loaded = partitionStatus(bq, p, { ...none, manifest, loaded: { table: 't', rows: 10, lateRows: 2, loadedAt: 'x' } }, p.endMs + HOUR, timing);
    expect(loaded).toMatchObject({ loaded: true, loadedRows: 12 });
  });

  it('keys a daily partition by its day', () => {
    const day = periodOf(Date.parse('2026-11-30T10:00:00Z'), 'daily');
    const s = partitionStatus({ ...type, partitioning: 'daily', sloHours: 24 }, day, none, day.startMs + HOUR, { graceMs: 0, deadlineMs: 24 * HOUR });
    expect(s).toMatchObject({ period: '2026-11-30', state: 'open', end: '2026-12-01T00:00:00.000Z' });
    expect(s.slo.due).toBe('2026-12-02T00:00:00.000Z');
  });
});
