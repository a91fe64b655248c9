/**
 * The registry's data model and store interface, shared by the composer
 * (which writes it), the event service and the ETL (which read it).
 * Stores: `MemoryRegistryStore` (tests), the composer's embedded file store
 * (local default) and its production store.
 */
export type Priority = 'high' | 'normal' | 'low';
export type StorageTarget = 'gcs' | 'bigquery';
export type Partitioning = 'hourly' | 'daily';
export type CompatibilityMode =
  | 'BACKWARD'
  | 'BACKWARD_TRANSITIVE'
  | 'FORWARD'
  | 'FORWARD_TRANSITIVE'
  | 'FULL'
  | 'FULL_TRANSITIVE'
  | 'NONE';

/** An Avro schema as JSON, annotations (`semanticType`) included. */
export type AvroSchemaJson = Record<string, unknown>;

/** Most shards a period may have (spec `shardsPerPeriod`): shard part names carry 3 digits. */
export const MAX_SHARDS_PER_PERIOD = 256;

/** The settings of an event-type spec (DESIGN.md §3), schema apart. */
export interface EventTypeSettings {
  name: string;
  owner: string;
  description: string;
  priority: Priority;
  storage: StorageTarget[];
  partitioning: Partitioning;
  retentionDays: number;
  compatibility: CompatibilityMode;
  /**
   * Shards per period (default 1): the ETL stages each record into shard
   * `hash(eventId) mod N` and closes the shards of one period in parallel
   * (etl/shards.ts). Absent in records written before the field existed.
   */
  shardsPerPeriod?: number;
  /** The events per second the owners expect (peak hour average): sizes the worker group (composer/capacity). */
  expectedEventsPerSecond?: number;
}

export interface SchemaVersion {
  /** 1, 2, 3… in order of registration. */
  version: number;
  /** CRC-64-AVRO of the canonical form, 16 hex digits (lib/avro/fingerprint.ts). */
  fingerprint: string;
  /** The schema as registered, annotations included. */
  schema: AvroSchemaJson;
  createdAt: string;
}

export type EventTypeStatus = 'active' | 'deprecated' | 'deleted';

export interface ProvisioningState {
  /** What the reconciler last achieved: `pending` until every resource exists. */
  state: 'pending' | 'provisioned' | 'failed' | 'draining' | 'removed';
  /** Resource → whether it exists as specified. */
  resources: Record<string, boolean>;
  updatedAt: string;
  error?: string;
  /** The ETL worker group registered for the type (locally, this record is the registration). */
  workerGroup?: WorkerGroupRegistration;
  /** The monitoring definition last provisioned (composer/monitoring.ts `monitoringFor`). */
  monitoring?: MonitoringRecord;
  /** While draining: when the ETL subscription was first seen with no backlog. */
  drainedSince?: string;
  /** False when the Pub/Sub endpoint refused schemas, so the topic has none attached. */
  topicSchemaAttached?: boolean;
}

/** What the ETL needs to run a type's worker group. */
export interface WorkerGroupRegistration {
  /** `resourceNames.workerGroup(type)`. */
  name: string;
  /** Subscription short name (`resourceNames.etlSubscription(type)`). */
  subscription: string;
  /** Dead-letter topic short name. */
  deadLetterTopic: string;
  ackDeadlineSeconds: number;
  maxDeliveryAttempts: number;
  registeredAt: string;
}

/** The monitoring of a type as stored in the registry. */
export interface MonitoringRecord {
  sloHours: number;
  alerts: { name: string; metric: string; threshold: number; notify: 'always' | 'working-hours' }[];
}

export interface EventTypeRecord {
  settings: EventTypeSettings;
  /** Oldest first; the last is the current schema the event service encodes with. */
  versions: SchemaVersion[];
  status: EventTypeStatus;
  provisioning: ProvisioningState;
  /** Incremented by every write; writes are conditional on it (no lost update). */
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/** Read side, all that the event service and the ETL need. */
export interface RegistryReader {
  getEventType(name: string): Promise<EventTypeRecord | undefined>;
  listEventTypes(): Promise<EventTypeRecord[]>;
}

export interface RegistryStore extends RegistryReader {
  /**
   * Writes `record` if the stored revision is `expectedRevision` (0: must not
   * exist yet) and returns it with `revision = expectedRevision + 1`.
   * Throws AppError CONCURRENT_UPDATE (or EVENT_TYPE_EXISTS for 0) otherwise.
   */
  putEventType(record: EventTypeRecord, expectedRevision: number): Promise<EventTypeRecord>;
  close?(): Promise<void>;
}

/** The current (newest) schema version of a type. */
export function currentVersion(record: EventTypeRecord): SchemaVersion {
  const v = record.versions[record.versions.length - 1];
  if (v === undefined) throw new Error(`event type ${record.settings.name} has no schema version`);
  return v;
}

/** The version whose fingerprint is `fingerprint`, if registered. */
export function versionByFingerprint(record: EventTypeRecord, fingerprint: string): SchemaVersion | undefined {
  return record.versions.find((v) => v.fingerprint === fingerprint);
}
