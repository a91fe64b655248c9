/**
 * The accepted side of the completeness audit: per event-service instance,
 * its counts over the period's hours (1, or the 24 of a daily period), from
 * the hours' summary objects (final counts compacted by their instances) and
 * the instances' own objects not yet compacted (live instances, and crashed
 * ones). Of two readings of one (hour, instance), the later one counts
 * (`laterAuditCount`). Unreadable objects are skipped: the audit is a lower
 * bound, and a missing count makes the period wait, never close early.
 */
import type { Bucket } from '@google-cloud/storage';
import { AUDIT_PREFIX, auditSummaryObjectName, laterAuditCount, parseAuditCount, parseAuditSummary, type AuditCount } from '../lib/events/contract.ts';
import { auditHoursOf, type Period } from '../lib/partitions.ts';
import type { InstanceAudit } from './completeness.ts';
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

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The latest count per (hour, instance) of the period, from summaries and instances' objects. */
export async function readAuditCounts(staging: Bucket, eventType: string, period: Period): Promise<AuditCount[]> {
  const hours = new Set(auditHoursOf(period));
  const latest = new Map<string, AuditCount>();
  const take = (c: AuditCount | undefined, hour: string): void => {
    if (c === undefined || c.eventType !== eventType || c.hour !== hour) return;
    const key = `${hour}\u0000${c.instanceId}`;
    const before = latest.get(key);
    latest.set(key, before === undefined ? c : laterAuditCount(before, c));
  };
  const summaryHours = new Set<string>();
  for (const o of await listObjects(staging, auditPeriodPrefix(eventType, period))) {
    const hour = hourOfAuditName(eventType, o.name);
    if (hour === undefined || !hours.has(hour)) continue;
    if (o.name === auditSummaryObjectName(eventType, hour)) {
      summaryHours.add(hour);
      continue;
    }
    if (!o.name.endsWith('.json')) continue;
    const bytes = await download(staging, o.name);
    // Gone since the listing: its instance compacted it, and a compaction writes the summary
    // before deleting the object, so the summary read below holds the count.
    if (bytes === undefined) summaryHours.add(hour);
    else take(parseAuditCount(parseJson(bytes)), hour);
  }
  // Summaries are read after the instances' objects, for the same reason.
  for (const hour of summaryHours) {
    const bytes = await download(staging, auditSummaryObjectName(eventType, hour));
    if (bytes !== undefined) for (const c of parseAuditSummary(parseJson(bytes))?.instances ?? []) take(c, hour);
  }
  return [...latest.values()];
}

/** Per instance over the period: counts summed over its hours, final only if every one is. */
export function instanceAudits(counts: readonly AuditCount[]): InstanceAudit[] {
  const byInstance = new Map<string, InstanceAudit>();
  for (const c of counts) {
    const a = byInstance.get(c.instanceId) ?? { instanceId: c.instanceId, accepted: 0, unreported: 0, final: true, lastWriteMs: Number.NEGATIVE_INFINITY };
    a.accepted += c.accepted;
    a.unreported += c.unreported ?? 0;
    a.final &&= c.final === true;
    a.lastWriteMs = Math.max(a.lastWriteMs, Date.parse(c.updatedAt));
    byInstance.set(c.instanceId, a);
  }
  return [...byInstance.values()];
}

export async function readInstanceAudits(staging: Bucket, eventType: string, period: Period): Promise<InstanceAudit[]> {
  return instanceAudits(await readAuditCounts(staging, eventType, period));
}
