/** Every provisioning tunable of the composer, in one place. */
export const provisioningDefaults = {
  /** ETL subscription ack deadline: the ETL acks only once a record is durable in storage. */
  ackDeadlineSeconds: 60,
  /**
   * Unacked messages kept 7 days (Pub/Sub allows up to 31): an ETL outage of a week loses
   * nothing. Longer costs storage of the whole backlog; the dead-letter subscription keeps 31.
   */
  messageRetentionSeconds: 7 * 24 * 3600,
  /**
   * Deliveries before a message goes to the dead-letter topic: Pub/Sub's maximum. The ETL
   * nacks on purpose while the registry or padlock is down, and crash redeliveries count
   * too; with the retry backoff below (10 s doubling to 600 s) 100 attempts outlast about
   * 15 hours of outage, where 5 attempts dead-lettered healthy events after about 2 minutes.
   * Records that can never be processed are dead-lettered by the ETL itself, at once.
   */
  maxDeliveryAttempts: 100,
  /**
   * Dead letters are kept for inspection and replay as long as Pub/Sub allows, as
   * terraform/modules/event-type keeps them. The Pub/Sub emulator caps subscriptions at
   * 7 days: composer/index.ts uses that against an emulator endpoint.
   */
  deadLetterRetentionSeconds: 31 * 24 * 3600,
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

/**
 * Who owns the per-type Pub/Sub resources (topic, schema, ETL subscription,
 * dead-letter topic and subscription); a platform setting the composer and
 * Terraform must agree on (COMPOSER_PROVISIONING, Terraform's `provisioning`).
 * - `composer`: the composer creates, updates and deletes them (local default:
 *   `npm start` has no Terraform);
 * - `terraform`: terraform/modules/event-type does; the composer validates,
 *   records and exports (with import blocks for what already exists) and
 *   changes no Pub/Sub resource.
 */
export type ProvisioningMode = 'composer' | 'terraform';
export const provisioningModes: readonly ProvisioningMode[] = ['composer', 'terraform'];
export const DEFAULT_PROVISIONING_MODE: ProvisioningMode = 'composer';
