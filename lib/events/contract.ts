/**
 * The contract between the event service and the ETL.
 *
 * **Pub/Sub message** (one per accepted event, on `resourceNames.topic(type)`):
 * `data` is the Avro binary encoding of the event's payload with the type's
 * current schema; `attributes` are below. `receiveTime` (UTC) picks the partition.
 *
 * **Audit counts** (for the manifest's completeness audit): each event-service
 * instance keeps, per event type and UTC hour, how many events it reported
 * accepted, and writes the running total as one small JSON object per
 * (type, hour, instance) in the staging bucket at `auditObjectName(...)`,
 * overwriting it as the count grows. The ETL sums all instances' objects for
 * an hour to get the accepted count.
 */
export const messageAttributes = {
  eventType: 'eventType',
  schemaFingerprint: 'schemaFingerprint',
  eventId: 'eventId',
  /** ISO-8601 UTC with milliseconds, e.g. `2026-11-23T09:41:07.123Z`. */
  receiveTime: 'receiveTime',
} as const;

export interface EventMessageAttributes {
  eventType: string;
  schemaFingerprint: string;
  eventId: string;
  receiveTime: string;
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
  updatedAt: string;
}

export const AUDIT_PREFIX = 'audit/';

/** `audit/<type>/<hour>/<instance>.json` in the staging bucket. */
export function auditObjectName(eventType: string, hour: string, instanceId: string): string {
  return `${AUDIT_PREFIX}${eventType}/${hour}/${instanceId}.json`;
}

/** Prefix listing every instance's audit object for one type and hour. */
export function auditHourPrefix(eventType: string, hour: string): string {
  return `${AUDIT_PREFIX}${eventType}/${hour}/`;
}
