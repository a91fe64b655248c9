/** Every provisioning tunable of the composer, in one place. */
export const provisioningDefaults = {
  /** ETL subscription ack deadline: the ETL acks only once a record is durable in storage. */
  ackDeadlineSeconds: 60,
  /** Unacked messages kept 7 days (Pub/Sub's maximum): an ETL outage of a week loses nothing. */
  messageRetentionSeconds: 7 * 24 * 3600,
  /** Deliveries before a message goes to the dead-letter topic. */
  maxDeliveryAttempts: 5,
  /** Redelivery backoff of the ETL subscription. */
  minimumBackoffSeconds: 10,
  maximumBackoffSeconds: 600,
  /**
   * A deprecated type's subscription is removed only after it was seen empty
   * twice at least this far apart, so messages leased by a still-running ETL
   * (invisible to a pull) come back or get acked first. One ack deadline.
   */
  drainGraceSeconds: 60,
  /** Types provisioned in parallel by `apply` of a folder. */
  applyConcurrency: 8,
} as const;

export type ProvisioningOptions = {
  -readonly [K in keyof typeof provisioningDefaults]: number;
};
