/**
 * The monitoring definition of an event type, derived from its settings only
 * (pure, so the Terraform export renders the same alerts the composer records).
 *
 * SLO by priority: a partition of a `high` type is delivered (closed with its
 * manifest) within 3 h of the end of its hour, `normal` within 24 h, `low`
 * within 72 h. Alerts fire before the SLO is missed; `low` priority alerts
 * notify only in working hours (Mon-Fri 09:00-18:00 UTC), the others at any time.
 */
import type { EventTypeSettings, Priority } from '../lib/registry/types.ts';
import { resourceNames } from '../lib/names.ts';

export interface AlertDefinition {
  /** Stable id, e.g. `page_view-backlog-age`. */
  name: string;
  /** What is measured (Cloud Monitoring metric type). */
  metric: string;
  /** The Pub/Sub subscription / topic the metric is filtered on, if any. */
  resource: string;
  comparison: 'GT';
  threshold: number;
  /** For how long the condition must hold before the alert fires, seconds. */
  durationSeconds: number;
  /** `always`, or only Mon-Fri 09:00-18:00 UTC. */
  notify: 'always' | 'working-hours';
  severity: 'critical' | 'warning';
  description: string;
}

export interface MonitoringDefinition {
  eventType: string;
  priority: Priority;
  /** Partition delivered within this many hours after its end. */
  sloHours: number;
  alerts: AlertDefinition[];
}

/** Hours within which a closed partition must be delivered, by priority. */
export const sloHoursByPriority: Readonly<Record<Priority, number>> = { high: 3, normal: 24, low: 72 };

export const WORKING_HOURS = { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], startHourUtc: 9, endHourUtc: 18 } as const;

/** The monitoring of one event type: SLO and alert thresholds by priority. */
export function monitoringFor(settings: Pick<EventTypeSettings, 'name' | 'priority'>): MonitoringDefinition {
  const { name, priority } = settings;
  const sloHours = sloHoursByPriority[priority];
  const sloSeconds = sloHours * 3600;
  const notify = priority === 'low' ? 'working-hours' : 'always';
  const severity = priority === 'high' ? 'critical' : 'warning';
  const subscription = resourceNames.etlSubscription(name);
  return {
    eventType: name,
    priority,
    sloHours,
    alerts: [
      {
        name: `${name}-backlog-age`,
        metric: 'pubsub.googleapis.com/subscription/oldest_unacked_message_age',
        resource: subscription,
        comparison: 'GT',
        // Half the SLO: time left to fix the ETL before partitions close late.
        threshold: sloSeconds / 2,
        durationSeconds: 300,
        notify,
        severity,
        description: `Oldest undelivered ${name} event is older than half its ${sloHours} h SLO`,
      },
      {
        name: `${name}-dead-letters`,
        metric: 'pubsub.googleapis.com/subscription/num_undelivered_messages',
        resource: resourceNames.deadLetterSubscription(name),
        comparison: 'GT',
        threshold: 0,
        durationSeconds: 60,
        notify,
        severity: 'warning',
        description: `${name} events were dead-lettered by the ETL`,
      },
      {
        name: `${name}-partition-late`,
        metric: 'custom.googleapis.com/etl/partition_close_lag_seconds',
        resource: resourceNames.storagePrefix(name),
        comparison: 'GT',
        threshold: sloSeconds,
        durationSeconds: 0,
        notify,
        severity,
        description: `A ${name} partition was not closed within its ${sloHours} h SLO`,
      },
    ],
  };
}
