/**
 * The state of one partition, derived (pure) from what the buckets hold for
 * it and the clock: the `_SUCCESS` manifest, the `_LATE` counter, the
 * `_LOADED` marker, the staged files, the closer's lease and the audit counts.
 */
import type { Period } from '../../lib/partitions.ts';
import type { Partitioning, Priority, StorageTarget } from '../../lib/registry/types.ts';

/**
 * - `open`: the period has not ended; events are still being accepted.
 * - `closing`: it ended and is waiting to close (audit not complete yet, or a closer holds its lease).
 * - `overdue`: it ended more than the close deadline ago and has no manifest: the ETL is behind or down.
 * - `missing`: it ended, events were accepted, and nothing is staged or closed.
 * - `empty`: it ended with nothing accepted and nothing staged (fine, nothing to deliver).
 * - `closed-complete`: `_SUCCESS` written with every accepted event delivered.
 * - `closed-deadline`: `_SUCCESS` written at the SLO deadline with events missing.
 */
export const partitionStates = ['open', 'closing', 'overdue', 'missing', 'empty', 'closed-complete', 'closed-deadline'] as const;
export type PartitionState = (typeof partitionStates)[number];

/** What the listing pass found for one partition. */
export interface PartitionFacts {
  /** Sum of the audit counts (accepted events) of the period. */
  accepted: number;
  stagedFiles: number;
  /** Sum of the staged files' record counts (duplicates included). */
  stagedRecords: number;
  /** A closer holds the period's lease. */
  leased: boolean;
  manifest?: ManifestSummary;
  /** Late events counted in `_LATE`. */
  lateCount?: number;
  loaded?: LoadSummary;
}

/** The parts of a `_SUCCESS` manifest the status shows (the manifest is read once: a closed partition never changes). */
export interface ManifestSummary {
  closedBy: 'complete' | 'deadline';
  recordCount: number;
  accepted: number;
  delivered: number;
  duplicatesDropped: number;
  files: number;
  schemaFingerprints: string[];
  /** When `_SUCCESS` was written (the object's creation time), epoch ms. */
  closedAtMs: number;
}

export interface LoadSummary {
  table: string;
  rows: number;
  lateRows: number;
  loadedAt: string;
}

export interface TypeSettingsView {
  name: string;
  owner: string;
  priority: Priority;
  partitioning: Partitioning;
  storage: StorageTarget[];
  /** Hours after the period end within which it must be delivered (registry monitoring record, else by priority). */
  sloHours: number;
}

export interface CloseTiming {
  /** The ETL's `closeGraceMs`. */
  graceMs: number;
  /** The ETL's close deadline for this type's priority. */
  deadlineMs: number;
}

/** The JSON shape of one partition in `GET /v1/partitions` (contract of the status API). */
export interface PartitionStatus {
  eventType: string;
  /** `YYYY-MM-DDTHH` or `YYYY-MM-DD`. */
  period: string;
  start: string;
  end: string;
  state: PartitionState;
  /** Accepted events: the manifest's audit once closed, else the audit counts so far. */
  accepted: number;
  /** Records in staged files not yet closed (duplicates included). */
  staged: number;
  stagedFiles: number;
  /** Records in the closed partition. */
  delivered: number | null;
  /** Accepted events the partition lacks (closed at deadline), else 0. */
  missing: number;
  /** Late events since the close (`_LATE`). */
  late: number;
  /** BigQuery: null for a type not stored there, else whether `_LOADED` is written. */
  loaded: boolean | null;
  loadedRows: number | null;
  closedAt: string | null;
  leased: boolean;
  slo: {
    hours: number;
    /** Period end + SLO. */
    due: string;
    /** Closed: close time − period end, seconds. */
    closeLagSeconds: number | null;
    /** Closed: whether it closed within the SLO; open: whether the SLO is still ahead; ended and unclosed past due: false. */
    met: boolean;
    /** Not closed: seconds until the SLO is missed (negative once missed). */
    remainingSeconds: number | null;
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Derives the partition's status. */
export function partitionStatus(type: TypeSettingsView, period: Period, facts: PartitionFacts, nowMs: number, timing: CloseTiming): PartitionStatus {
  const sloMs = type.sloHours * 3_600_000;
  const dueMs = period.endMs + sloMs;
  const m = facts.manifest;
  let state: PartitionState;
  if (m !== undefined) state = m.closedBy === 'complete' ? 'closed-complete' : 'closed-deadline';
  else if (nowMs < period.endMs) state = 'open';
  else if (facts.stagedRecords === 0 && facts.accepted === 0) state = 'empty';
  else if (facts.stagedRecords === 0 && !facts.leased) state = 'missing';
  else if (nowMs >= period.endMs + Math.max(timing.deadlineMs, timing.graceMs) && !facts.leased) state = 'overdue';
  else state = 'closing';
  const closeLagMs = m === undefined ? null : Math.max(0, m.closedAtMs - period.endMs);
  const inBigQuery = type.storage.includes('bigquery');
  return {
    eventType: type.name,
    period: period.key,
    start: iso(period.startMs),
    end: iso(period.endMs),
    state,
    accepted: m !== undefined ? m.accepted : facts.accepted,
    staged: facts.stagedRecords,
    stagedFiles: facts.stagedFiles,
    delivered: m === undefined ? null : m.recordCount,
    missing: m === undefined ? 0 : Math.max(0, m.accepted - m.delivered),
    late: facts.lateCount ?? 0,
    loaded: inBigQuery ? facts.loaded !== undefined : null,
    loadedRows: facts.loaded === undefined ? null : facts.loaded.rows + facts.loaded.lateRows,
    closedAt: m === undefined ? null : iso(m.closedAtMs),
    leased: facts.leased,
    slo: {
      hours: type.sloHours,
      due: iso(dueMs),
      closeLagSeconds: closeLagMs === null ? null : Math.round(closeLagMs / 1000),
      met: closeLagMs !== null ? closeLagMs <= sloMs : state === 'empty' || nowMs < dueMs,
      remainingSeconds: m !== undefined || state === 'empty' ? null : Math.round((dueMs - nowMs) / 1000),
    },
  };
}
