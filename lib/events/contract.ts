/**
 * The contract between the event service and the ETL.
 *
 * **Pub/Sub message** (one per accepted event, on `resourceNames.topic(type)`):
 * `data` is the Avro binary encoding of the event's payload with the type's
 * current schema; `attributes` are below. `receiveTime` (UTC) picks the partition.
 *
 * `instanceId` names the event-service process that accepted the event (a
 * stable random id per process, logged at its start). A publisher that follows
 * this contract without it is a *direct producer*: the ETL delivers its events
 * and counts them separately, outside the completeness audit.
 *
 * **Audit counts** (for the manifest's completeness audit): each event-service
 * instance keeps, per event type and UTC hour, how many events it reported
 * accepted, and writes the running total as one small JSON object per
 * (type, hour, instance) in the staging bucket at `auditObjectName(...)`,
 * overwriting it as the count grows. Once the hour is over and none of its
 * publishes is in flight (or at a graceful shutdown), the instance writes the
 * count `final`, folds it into the hour's summary object
 * (`auditSummaryObjectName`, one per type and hour) and deletes its own object.
 * The ETL reads both and compares each instance's count with what it delivered
 * for that instance (etl/completeness.ts).
 */
export const messageAttributes = {
  eventType: 'eventType',
  schemaFingerprint: 'schemaFingerprint',
  eventId: 'eventId',
  /** ISO-8601 UTC with milliseconds, e.g. `2026-11-23T09:41:07.123Z`. */
  receiveTime: 'receiveTime',
  /** The accepting event-service instance; absent from a direct producer's messages. */
  instanceId: 'instanceId',
} as const;

/** What an `instanceId` attribute may be (the event service's ids: INSTANCE_ID prefix, pid, randomness). */
export function isInstanceId(value: string): boolean {
  return /^[A-Za-z0-9._-]{1,128}$/.test(value);
}

export interface EventMessageAttributes {
  eventType: string;
  schemaFingerprint: string;
  eventId: string;
  receiveTime: string;
  instanceId?: string;
}

/** `YYYY-MM-DDTHH` of a time, UTC: the audit's (and hourly partitions') hour key. */
export function hourKey(time: Date): string {
  return time.toISOString().slice(0, 13);
}

export interface AuditCount {
  eventType: string;
  /** `YYYY-MM-DDTHH`, UTC. */
  hour: string;
  instanceId: string;
  /** Events this instance reported accepted for this type and hour (monotonic). */
  accepted: number;
  /**
   * Events Pub/Sub confirmed after this instance had answered their client
   * with a timeout (so not in `accepted`): they are delivered too. Absent = 0.
   */
  unreported?: number;
  /**
   * True once the count can no longer grow: written by a graceful shutdown, or
   * by a live instance once the hour ended plus its flush interval with no
   * publish of the hour in flight. Absent = false.
   */
  final?: boolean;
  /** When the instance wrote this count (its clock, ISO UTC): the ETL's liveness signal. */
  updatedAt: string;
}

/** The compacted audit of one type and hour: the final counts folded in by their instances. */
export interface AuditSummary {
  eventType: string;
  hour: string;
  /** One entry per instance, sorted by instance id. */
  instances: AuditCount[];
}

export const AUDIT_PREFIX = 'audit/';

/** `audit/<type>/<hour>/<instance>.json` in the staging bucket. */
export function auditObjectName(eventType: string, hour: string, instanceId: string): string {
  return `${AUDIT_PREFIX}${eventType}/${hour}/${instanceId}.json`;
}

/** `audit/<type>/<hour>/summary` (no `.json`, so no instance's object can have its name). */
export function auditSummaryObjectName(eventType: string, hour: string): string {
  return `${AUDIT_PREFIX}${eventType}/${hour}/summary`;
}

/** Prefix listing every instance's audit object for one type and hour. */
export function auditHourPrefix(eventType: string, hour: string): string {
  return `${AUDIT_PREFIX}${eventType}/${hour}/`;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** An audit count read from storage, or undefined if it is not one (a foreign or truncated object is skipped, never trusted). */
export function parseAuditCount(json: unknown): AuditCount | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const c = json as Record<string, unknown>;
  if (typeof c.eventType !== 'string' || typeof c.hour !== 'string' || typeof c.instanceId !== 'string' || !isCount(c.accepted)) return undefined;
  if (typeof c.updatedAt !== 'string' || Number.isNaN(Date.parse(c.updatedAt))) return undefined;
  if (c.unreported !== undefined && !isCount(c.unreported)) return undefined;
  const count: AuditCount = { eventType: c.eventType, hour: c.hour, instanceId: c.instanceId, accepted: c.accepted, updatedAt: c.updatedAt };
  if (isCount(c.unreported) && c.unreported > 0) count.unreported = c.unreported;
  if (c.final === true) count.final = true;
  return count;
}

/** An audit summary read from storage (its unreadable entries dropped), or undefined if it is not one. */
export function parseAuditSummary(json: unknown): AuditSummary | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const s = json as Record<string, unknown>;
  if (typeof s.eventType !== 'string' || typeof s.hour !== 'string' || !Array.isArray(s.instances)) return undefined;
  const instances = s.instances.map(parseAuditCount).filter((c): c is AuditCount => c !== undefined);
  return { eventType: s.eventType, hour: s.hour, instances };
}

/**
 * The later of two counts of one instance: a final one over any other, then
 * the larger count (counts only grow), then the later write. Commutative and
 * idempotent, so summaries and objects can be folded in any order, any number
 * of times.
 */
export function laterAuditCount(a: AuditCount, b: AuditCount): AuditCount {
  const rank = (c: AuditCount): [number, number, number, string] => [c.final === true ? 1 : 0, c.accepted, c.unreported ?? 0, c.updatedAt];
  const [x, y] = [rank(a), rank(b)];
  for (let i = 0; i < x.length; i++) if (x[i]! !== y[i]!) return x[i]! > y[i]! ? a : b;
  return a;
}

/** `summary` with `count` folded into its instance's entry. */
export function foldAuditCount(summary: AuditSummary | undefined, count: AuditCount): AuditSummary {
  const byInstance = new Map<string, AuditCount>();
  for (const c of summary?.instances ?? []) byInstance.set(c.instanceId, c);
  const before = byInstance.get(count.instanceId);
  byInstance.set(count.instanceId, before === undefined ? count : laterAuditCount(before, count));
  const instances = [...byInstance.values()].sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
  return { eventType: count.eventType, hour: count.hour, instances };
}
