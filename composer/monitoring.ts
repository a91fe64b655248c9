/**
 * The monitoring definition of an event type, derived from its settings only.
 * This is the one definition of each alert: the composer records it in the
 * registry, and the Terraform export hands it to terraform/modules/event-type,
 * which renders each alert as a Cloud Monitoring alert policy (metric,
 * threshold, duration, severity, schedule as defined here). Every metric is
 * one the platform emits: Pub/Sub's subscription metrics, the ETL's
 * partitions closed at their SLO deadline (a log-based metric over the ETL's
 * `partition closed` log entry), and for a type stored in BigQuery its loader
 * stopping on a permanent failure (a log-based metric over the ETL's ERROR
 * `bigquery loading stopped`), lib/names.ts `metricTypes`, and the close lag
 * of the type's oldest unclosed partition, a Prometheus gauge the ETL serves
 * (lib/metrics.ts `etlMetrics.partitionCloseLag`, its threshold
 * `closeLagThresholdSeconds`), collected in GCP by Managed Service for Prometheus.
 *
 * SLO by priority: a partition of a `high` type is delivered (closed with its
 * manifest) within 3 h of the end of its hour, `normal` within 24 h, `low`
 * within 72 h. Alerts fire before the SLO is missed; `low` priority alerts
 * notify only in working hours (Mon-Fri 09:00-18:00 UTC), the others at any time.
 */
import type { EventTypeSettings, Priority } from '../lib/registry/types.ts';
import { metricTypes, resourceNames } from '../lib/names.ts';
import { CLOSE_LAG_ALERT_DURATION_SECONDS, closeLagThresholdSeconds, etlMetrics, prometheusMetricType } from '../lib/metrics.ts';

/** Cloud Monitoring alert policy severities. */
export type AlertSeverity = 'CRITICAL' | 'ERROR' | 'WARNING';

/** The alerts a type has (`bigquery_loading_stopped` only if stored in BigQuery); the Terraform module keys its alert policies by these. */
export type AlertKind = 'backlog_age' | 'dead_letters' | 'partition_close_lag' | 'partition_lateness' | 'bigquery_loading_stopped';

export interface AlertDefinition {
  /** Stable id, e.g. `page_view-backlog-age`. */
  name: string;
  kind: AlertKind;
  /** What is measured (Cloud Monitoring metric type). */
  metric: string;
  /** What the metric is filtered on: the Pub/Sub subscription, or the event type (the ETL metrics' `event_type` label). */
  resource: string;
  comparison: 'GT';
  threshold: number;
  /** For how long the condition must hold before the alert fires, seconds. */
  durationSeconds: number;
  /** `always`, or only Mon-Fri 09:00-18:00 UTC. */
  notify: 'always' | 'working-hours';
  severity: AlertSeverity;
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

/** Severity of a type's SLO alerts by priority: high pages, normal and low do not. */
export const severityByPriority: Readonly<Record<Priority, AlertSeverity>> = { high: 'CRITICAL', normal: 'ERROR', low: 'WARNING' };

export const WORKING_HOURS = { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], startHourUtc: 9, endHourUtc: 18 } as const;

/** The monitoring of one event type: SLO and alert thresholds by priority. */
export function monitoringFor(settings: Pick<EventTypeSettings, 'name' | 'priority' | 'storage'>): MonitoringDefinition {
  const { name, priority, storage } = settings;
  const sloHours = sloHoursByPriority[priority];
  const sloSeconds = sloHours * 3600;
  const notify: AlertDefinition['notify'] = priority === 'low' ? 'working-hours' : 'always';
  const severity = severityByPriority[priority];
  return {
    eventType: name,
    priority,
    sloHours,
    alerts: [
      {
        name: `${name}-backlog-age`,
        kind: 'backlog_age',
        metric: metricTypes.oldestUnackedMessageAge,
        resource: resourceNames.etlSubscription(name),
        comparison: 'GT',
        // Half the SLO: time left to fix the ETL before partitions close late.
        threshold: sloSeconds / 2,
        durationSeconds: 300,
        notify,
        severity,
        description: `ETL backlog older than half the ${sloHours} h SLO`,
      },
      {
        name: `${name}-dead-letters`,
        kind: 'dead_letters',
        metric: metricTypes.undeliveredMessages,
        resource: resourceNames.deadLetterSubscription(name),
        comparison: 'GT',
        threshold: 0,
        durationSeconds: 60,
        notify,
        severity: 'WARNING',
        description: 'events dead-lettered by the ETL',
      },
      {
        name: `${name}-close-lag`,
        kind: 'partition_close_lag',
        metric: prometheusMetricType(etlMetrics.partitionCloseLag),
        resource: name,
        comparison: 'GT',
        // Fires while the oldest unclosed partition can still close complete: a third of the
        // SLO before it would be closed at its deadline (high: at 2 h of 3 h).
        threshold: closeLagThresholdSeconds(sloSeconds),
        durationSeconds: CLOSE_LAG_ALERT_DURATION_SECONDS,
        notify,
        severity,
        description: `oldest unclosed partition ${Math.round((closeLagThresholdSeconds(sloSeconds) / 3600) * 10) / 10} h past its end (SLO ${sloHours} h)`,
      },
      {
        name: `${name}-partition-late`,
        kind: 'partition_lateness',
        metric: metricTypes.partitionsClosedAtDeadline,
        resource: name,
        comparison: 'GT',
        // Any partition closed at its deadline (incomplete) within the last hour.
        threshold: 0,
        durationSeconds: 0,
        notify,
        severity,
        description: `partitions closed at the ${sloHours} h SLO deadline`,
      },
      ...(storage.includes('bigquery')
        ? [
            {
              name: `${name}-bigquery-loading-stopped`,
              kind: 'bigquery_loading_stopped' as const,
              metric: metricTypes.bigQueryLoadingStopped,
              resource: name,
              comparison: 'GT' as const,
              // The loader stopped on a permanent failure within the last hour: nothing more
              // reaches BigQuery for this type until someone fixes the cause and restarts it.
              threshold: 0,
              durationSeconds: 0,
              notify,
              severity,
              description: 'BigQuery loading stopped on a permanent failure (the worker group needs a restart once fixed)',
            },
          ]
        : []),
    ],
  };
}
