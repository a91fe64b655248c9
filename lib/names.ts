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
