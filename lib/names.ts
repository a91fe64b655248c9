/**
 * Names of the cloud resources of one event type. One function each, used by
 * the composer (local provisioning), the event service, the ETL and the
 * Terraform export, so every path names the same resources the same way.
 *
 * Event-type names match `eventTypeNamePattern`: they are valid as BigQuery
 * table names and, prefixed, as Pub/Sub topic and subscription names.
 */
export const eventTypeNamePattern = /^[a-z][a-z0-9_]{2,62}$/;

export const resourceNames = {
  /** Pub/Sub topic the event service publishes the type's events to. */
  topic: (eventType: string): string => `events-${eventType}`,
  /** Pub/Sub schema attached to the topic. */
  topicSchema: (eventType: string): string => `events-${eventType}-schema`,
  /** The ETL worker group's subscription on the topic. */
  etlSubscription: (eventType: string): string => `events-${eventType}-etl`,
  /** Dead-letter topic for records the ETL cannot process. */
  deadLetterTopic: (eventType: string): string => `events-${eventType}-dead-letter`,
  /** Subscription on the dead-letter topic, so dead letters are kept and inspectable. */
  deadLetterSubscription: (eventType: string): string => `events-${eventType}-dead-letter-sub`,
  /** BigQuery table (in the platform's dataset). */
  bigQueryTable: (eventType: string): string => eventType,
  /** Object prefix of the type's partitions in the data bucket. */
  storagePrefix: (eventType: string): string => `${eventType}/`,
  /** ETL worker group (Cloud Run service / deployment) name. */
  workerGroup: (eventType: string): string => `etl-${eventType.replace(/_/g, '-')}`,
} as const;

/**
 * Column families of padlock's keychains table (functions/padlock/bigtable-store.ts):
 * `k` holds one wrapped root key per category, `t` the tombstones. Terraform creates
 * them (terraform/modules/platform, one version each); test/repo/terraform.test.ts checks
 * both sides against this.
 */
export const keychainFamilies = { key: 'k', tombstone: 't' } as const;

/** Default bucket names of a platform project (terraform/modules/platform `storage`). */
export const bucketNames = {
  /** Closed partitions and late events. */
  data: (projectId: string): string => `${projectId}-events-data`,
  /** Staged files, leases, the event service's audit counts. */
  staging: (projectId: string): string => `${projectId}-events-staging`,
} as const;

/**
 * Metrics alerts are defined on, by Cloud Monitoring metric type. The ETL's metrics are
 * log-based: Terraform counts the ETL's `partition closed` log entries with
 * `closedBy: "deadline"` (etl/closer.ts), and its ERROR entries `bigquery loading stopped`
 * (etl/bigquery-load.ts), into the user metrics of these names.
 */
export const metricNames = {
  partitionsClosedAtDeadline: 'etl_partitions_closed_at_deadline',
  bigQueryLoadingStopped: 'etl_bigquery_loading_stopped',
} as const;

export const metricTypes = {
  oldestUnackedMessageAge: 'pubsub.googleapis.com/subscription/oldest_unacked_message_age',
  undeliveredMessages: 'pubsub.googleapis.com/subscription/num_undelivered_messages',
  partitionsClosedAtDeadline: `logging.googleapis.com/user/${metricNames.partitionsClosedAtDeadline}`,
  bigQueryLoadingStopped: `logging.googleapis.com/user/${metricNames.bigQueryLoadingStopped}`,
} as const;

/**
 * A Cloud Monitoring metric type's name in PromQL: the first `/` becomes `:`, every other
 * `/` and every `.` becomes `_` (`pubsub.googleapis.com/subscription/x` →
 * `pubsub_googleapis_com:subscription_x`); a metric collected by Managed Service for
 * Prometheus (`prometheus.googleapis.com/<name>/<kind>`) keeps its Prometheus name.
 */
export function promqlMetricName(metricType: string): string {
  const prometheus = /^prometheus\.googleapis\.com\/([a-zA-Z_:][a-zA-Z0-9_:]*)\/(counter|gauge|histogram|summary|unknown)$/.exec(metricType);
  if (prometheus) return prometheus[1]!;
  const slash = metricType.indexOf('/');
  if (slash < 0) throw new Error(`not a metric type: ${metricType}`);
  const domain = metricType.slice(0, slash).replace(/\./g, '_');
  return `${domain}:${metricType.slice(slash + 1).replace(/[/.]/g, '_')}`;
}
