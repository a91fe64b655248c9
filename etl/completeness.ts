/**
 * The completeness rule: when a period may close, judged per accepting
 * event-service instance (lib/events/contract.ts), and what the manifest says
 * of it. Pure: the audit (etl/audit.ts) and the delivered counts (the closing
 * merge, or the staged files' counts as an upper bound) come in as values.
 *
 * An instance is
 * - **final** once it wrote a final count: complete when the distinct ids
 *   delivered for it equal that count (plus events Pub/Sub confirmed after
 *   their client's timeout, `unreported`);
 * - **lost** when it never wrote a final count and its last audit write is
 *   older than the liveness bound (`auditLivenessMs`): complete when at least
 *   its last durable count was delivered (a crash loses at most the counts of
 *   its last flush interval, so the audit under-counts, never over-counts)
 *   and the period's staged files have not changed for the liveness bound
 *   either (the events of that last interval, beyond its count, may still be
 *   on their way);
 *   an instance that delivered events but never wrote an audit count is lost
 *   with a count of 0;
 * - **live** otherwise: its events may still be in flight, so the period
 *   waits for it.
 * A period closes `complete` once it is over plus the grace and every
 * instance is final and complete; `complete-after-instance-loss` (naming the
 * lost instances) when some are lost and complete; at its SLO deadline
 * (`deadline`) regardless. Events of direct producers (no `instanceId`) are
 * delivered and reported, never waited for.
 */
import type { ManifestCompleteness, Period } from '../lib/partitions.ts';

export type CompletenessRule = 'complete' | 'complete-after-instance-loss' | 'deadline';

/** One instance's audit over a period (summed over the 24 hours of a daily one). */
export interface InstanceAudit {
  instanceId: string;
  accepted: number;
  unreported: number;
  /** Every hour of the period that the instance counted has a final count. */
  final: boolean;
  /** Its latest audit write (epoch ms, the instance's clock). */
  lastWriteMs: number;
}

export type InstanceState = 'final' | 'lost' | 'live';

export interface InstanceVerdict {
  instanceId: string;
  /** Accepted, as the audit says. */
  audited: number;
  /** Confirmed after their client's timeout (delivered, not in `audited`). */
  unreported: number;
  final: boolean;
  /** Distinct event ids delivered for this instance. */
  delivered: number;
  state: InstanceState;
  /** Whether this instance lets the period close. */
  satisfied: boolean;
}

export interface Completeness {
  decision: 'wait' | CompletenessRule;
  instances: InstanceVerdict[];
  lostInstances: string[];
  /** Distinct ids delivered from direct producers (no instance). */
  directDelivered: number;
}

/** The key of direct producers' events in per-instance counts. */
export const DIRECT = '';

export function judgeCompleteness(p: {
  nowMs: number;
  period: Period;
  graceMs: number;
  deadlineMs: number;
  livenessMs: number;
  audits: readonly InstanceAudit[];
  /** Distinct ids delivered per instance (`DIRECT` for direct producers). */
  delivered: ReadonlyMap<string, number>;
  /** `delivered` bounds the distinct counts from above (staged files): a final instance needs at least its count. */
  upperBound?: boolean;
  /**
   * How long the period's staged files have been unchanged (ms). A lost
   * instance's last count may miss its last flush interval; those events may
   * still be on their way (a backlog, redeliveries after a worker crash), so a
   * lost instance counts only once the period's staging was quiet for the
   * liveness bound too.
   */
  stagingQuietMs: number;
}): Completeness {
  const audits = new Map<string, InstanceAudit>();
  for (const a of p.audits) audits.set(a.instanceId, a);
  for (const id of p.delivered.keys()) {
    if (id !== DIRECT && !audits.has(id)) audits.set(id, { instanceId: id, accepted: 0, unreported: 0, final: false, lastWriteMs: Number.NEGATIVE_INFINITY });
  }
  const instances: InstanceVerdict[] = [];
  for (const a of [...audits.values()].sort((x, y) => (x.instanceId < y.instanceId ? -1 : x.instanceId > y.instanceId ? 1 : 0))) {
    const delivered = p.delivered.get(a.instanceId) ?? 0;
    const expected = a.accepted + a.unreported;
    const state: InstanceState = a.final ? 'final' : p.nowMs - a.lastWriteMs > p.livenessMs ? 'lost' : 'live';
    const satisfied =
      state === 'final'
        ? p.upperBound === true
          ? delivered >= expected
          : delivered === expected
        : state === 'lost'
          ? delivered >= expected && p.stagingQuietMs > p.livenessMs
          : false;
    instances.push({ instanceId: a.instanceId, audited: a.accepted, unreported: a.unreported, final: a.final, delivered, state, satisfied });
  }
  const lostInstances = instances.filter((i) => i.state === 'lost').map((i) => i.instanceId);
  const directDelivered = p.delivered.get(DIRECT) ?? 0;
  let decision: Completeness['decision'] = 'wait';
  if (p.nowMs >= p.period.endMs + p.graceMs && instances.every((i) => i.satisfied)) {
    decision = lostInstances.length > 0 ? 'complete-after-instance-loss' : 'complete';
  } else if (p.nowMs >= p.period.endMs + p.deadlineMs) {
    decision = 'deadline';
  }
  return { decision, instances, lostInstances, directDelivered };
}

/** Sums per-instance counts (of staged files, or of shards of one period). */
export function addInstanceCounts(into: Map<string, number>, counts: ReadonlyMap<string, number>): Map<string, number> {
  for (const [id, n] of counts) into.set(id, (into.get(id) ?? 0) + n);
  return into;
}

/** Distinct event ids per instance in a set of records (`DIRECT` for those without one). */
export function distinctPerInstance(records: Iterable<{ eventId: string; instanceId?: string }>): Map<string, number> {
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  for (const r of records) {
    const instance = r.instanceId ?? DIRECT;
    const key = `${instance}\u0000${r.eventId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    counts.set(instance, (counts.get(instance) ?? 0) + 1);
  }
  return counts;
}

/** Custom metadata of a staged object: its distinct ids per instance, JSON (absent when too large for object metadata). */
export const STAGED_INSTANCES_KEY = 'edp-instance-counts';

/** GCS allows 8 KiB of custom metadata per object; beyond this the file's record count stands for every instance. */
const MAX_INSTANCE_METADATA = 4096;

export function encodeInstanceCounts(counts: ReadonlyMap<string, number>): string | undefined {
  const text = JSON.stringify(Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  return text.length <= MAX_INSTANCE_METADATA ? text : undefined;
}

/** The per-instance counts of a staged object's metadata; undefined if absent or malformed. */
export function parseInstanceCounts(text: string | undefined): Map<string, number> | undefined {
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const counts = new Map<string, number>();
  for (const [id, n] of Object.entries(json)) {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined;
    counts.set(id, n);
  }
  return counts;
}

/** What the staging of one file counted: its records (duplicates included) and, if known, distinct ids per instance. */
export interface StagedFileCounts {
  records: number;
  byInstance: ReadonlyMap<string, number> | undefined;
}

/**
 * Upper bounds of the distinct ids per instance over staged files: the sum
 * of the files' per-instance counts; a file without them (staged before they
 * were kept, or too many instances for its metadata) counts all its records
 * for every instance named anywhere or in `instanceIds` (the audited ones),
 * and for direct producers.
 */
export function upperBoundsPerInstance(files: readonly StagedFileCounts[], instanceIds: Iterable<string>): Map<string, number> {
  const bounds = new Map<string, number>();
  for (const id of instanceIds) bounds.set(id, 0);
  let unattributed = 0;
  for (const f of files) {
    if (f.byInstance === undefined) unattributed += f.records;
    else addInstanceCounts(bounds, f.byInstance);
  }
  if (unattributed > 0) {
    bounds.set(DIRECT, bounds.get(DIRECT) ?? 0);
    for (const [id, n] of bounds) bounds.set(id, n + unattributed);
  }
  return bounds;
}

/** The manifest's completeness section of a verdict (`decision` must not be `wait`). */
export function manifestCompleteness(c: Completeness, livenessMs: number): ManifestCompleteness {
  if (c.decision === 'wait') throw new Error('a period that waits has no manifest');
  return {
    rule: c.decision,
    lostInstances: c.lostInstances,
    livenessMs,
    instances: c.instances.map((i) => ({
      instanceId: i.instanceId,
      audited: i.audited,
      unreported: i.unreported,
      final: i.final,
      delivered: i.delivered,
      state: i.state,
    })),
    direct: { delivered: c.directDelivered },
  };
}
