/**
 * The ETL's Prometheus metrics: one name, kind and meaning each, and the alert
 * thresholds set on them. The one source of both for the ETL (etl/metrics-prometheus.ts
 * registers exactly these), the composer's monitoring definitions
 * (composer/monitoring.ts) and, through the composer's Terraform export, the
 * alert policies of terraform/modules/event-type (test/metric-names.test.ts
 * checks all three).
 *
 * In GCP mode the worker group's pods are scraped by Google Cloud Managed
 * Service for Prometheus (a `PodMonitoring` in terraform/modules/worker-group),
 * which stores each metric in Cloud Monitoring as
 * `prometheus.googleapis.com/<name>/<kind>`; its PromQL name, in alert
 * policies, is `<name>` itself. Every series carries the `event_type` label.
 */

/** Label every ETL metric carries. */
export const EVENT_TYPE_LABEL = 'event_type';
/** Label of the partitions-closed metrics: `complete` or `deadline` (the manifest's `closedBy`). */
export const OUTCOME_LABEL = 'outcome';

export type PrometheusKind = 'counter' | 'gauge' | 'histogram';

export interface EtlMetricDefinition {
  name: string;
  kind: PrometheusKind;
  help: string;
  /** Labels besides `event_type`. */
  labels: readonly string[];
  /** Histogram bucket upper bounds (seconds). */
  buckets?: readonly number[];
}

const HOUR = 3600;

/** Every metric the ETL exposes on `/metrics` (besides Node's process metrics). */
export const etlMetrics = {
  eventsPulled: { name: 'etl_events_pulled_total', kind: 'counter', help: 'Messages received from the type\'s subscription (redeliveries included).', labels: [] },
  eventsStaged: { name: 'etl_events_staged_total', kind: 'counter', help: 'Distinct events written to staged files (durable).', labels: [] },
  eventsAcked: { name: 'etl_events_acked_total', kind: 'counter', help: 'Messages acknowledged after their record was durable.', labels: [] },
  eventsDeadLettered: { name: 'etl_events_dead_lettered_total', kind: 'counter', help: 'Messages published to the type\'s dead-letter topic, then acknowledged.', labels: [] },
  stagingLatency: {
    name: 'etl_staging_latency_seconds',
    kind: 'histogram',
    help: 'From an event\'s receive time (the event service accepted it) to its staged file being written.',
    labels: [],
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 300, 900, HOUR, 3 * HOUR, 24 * HOUR],
  },
  closeDuration: {
    name: 'etl_close_duration_seconds',
    kind: 'histogram',
    help: 'Time one close of a partition took (lease to _SUCCESS and staged files removed).',
    labels: [OUTCOME_LABEL],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, HOUR],
  },
  partitionsClosed: { name: 'etl_partitions_closed_total', kind: 'counter', help: 'Partitions this worker closed, by outcome (complete, or at the SLO deadline).', labels: [OUTCOME_LABEL] },
  closedPartitionLag: {
    name: 'etl_closed_partition_lag_seconds',
    kind: 'histogram',
    help: 'Close lag of each partition closed: close time minus the end of its period.',
    labels: [OUTCOME_LABEL],
    buckets: [60, 300, 600, 1800, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 24 * HOUR, 72 * HOUR],
  },
  partitionCloseLag: {
    name: 'etl_partition_close_lag_seconds',
    kind: 'gauge',
    help: 'Close lag the type\'s oldest unclosed partition has now: now minus the end of its period (0 while no unclosed period has ended).',
    labels: [],
  },
  oldestOpenPeriodAge: {
    name: 'etl_oldest_open_period_age_seconds',
    kind: 'gauge',
    help: 'Now minus the start of the type\'s oldest open period (staged files or accepted counts, not closed); 0 when none is open.',
    labels: [],
  },
} as const satisfies Record<string, EtlMetricDefinition>;

export type EtlMetricKey = keyof typeof etlMetrics;

/** The Cloud Monitoring metric type Managed Service for Prometheus stores a metric under. */
export function prometheusMetricType(metric: EtlMetricDefinition): string {
  return `prometheus.googleapis.com/${metric.name}/${metric.kind}`;
}

/**
 * The close-lag alert fires when the oldest unclosed partition's lag passes
 * this fraction of the type's SLO: for a `high` type (3 h SLO) at 2 h, an hour
 * before the partition would be closed at its deadline, incomplete.
 */
export const CLOSE_LAG_ALERT_FRACTION = 2 / 3;

/** The close-lag alert threshold, seconds, for an SLO (or, in tests, a shortened deadline) of `sloSeconds`. */
export function closeLagThresholdSeconds(sloSeconds: number): number {
  return Math.round(sloSeconds * CLOSE_LAG_ALERT_FRACTION);
}

/** How long the close lag must stay above its threshold before the alert fires (two scrapes of the default 60 s interval). */
export const CLOSE_LAG_ALERT_DURATION_SECONDS = 120;

/** The port and path the ETL serves its metrics on in a worker group (ETL_METRICS_PORT; the PodMonitoring scrapes them). */
export const ETL_METRICS_PORT = 9464;
export const METRICS_PATH = '/metrics';
