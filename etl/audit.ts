/**
 * The accepted side of the completeness audit: the sum, over event-service
 * instances (and the 24 hours of a daily period), of the `AuditCount` objects
 * in the staging bucket.
 */
import type { Bucket } from '@google-cloud/storage';
import { AUDIT_PREFIX, type AuditCount } from '../lib/events/contract.ts';
import { auditHoursOf, type Period } from '../lib/partitions.ts';
import { download, listObjects } from './storage-io.ts';

/** Prefix covering every audit object of the period (hour `YYYY-MM-DDTHH/` or day `YYYY-MM-DD`). */
export function auditPeriodPrefix(eventType: string, period: Period): string {
  return `${AUDIT_PREFIX}${eventType}/${period.granularity === 'hourly' ? `${period.key}/` : period.key}`;
}

/** Prefix of every audit object of the type. */
export const auditTypePrefix = (eventType: string): string => `${AUDIT_PREFIX}${eventType}/`;

/** The hour key (`YYYY-MM-DDTHH`) of an audit object name under the type, if it is one. */
export function hourOfAuditName(eventType: string, name: string): string | undefined {
  const rest = name.startsWith(`${AUDIT_PREFIX}${eventType}/`) ? name.slice(AUDIT_PREFIX.length + eventType.length + 1) : '';
  const hour = rest.split('/')[0] ?? '';
  return /^\d{4}-\d{2}-\d{2}T\d{2}$/.test(hour) ? hour : undefined;
}

export async function sumAccepted(staging: Bucket, eventType: string, period: Period): Promise<number> {
  const hours = new Set(auditHoursOf(period));
  const objects = await listObjects(staging, auditPeriodPrefix(eventType, period));
  let sum = 0;
  for (const o of objects) {
    const hour = hourOfAuditName(eventType, o.name);
    if (hour === undefined || !hours.has(hour)) continue;
    const bytes = await download(staging, o.name);
    if (bytes === undefined) continue;
    const count = JSON.parse(bytes.toString('utf8')) as Partial<AuditCount>;
    if (typeof count.accepted === 'number' && Number.isFinite(count.accepted)) sum += count.accepted;
  }
  return sum;
}
