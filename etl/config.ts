/**
 * Every tunable of the ETL workers in one commented place, and `loadConfig`
 * for `etl/main.ts` (environment → validated config, errors naming the variable).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | GCP_PROJECT | local-project | project of the Pub/Sub and storage resources |
 * | PUBSUB_EMULATOR_HOST | — | `host:port`; absent: Google Pub/Sub |
 * | GCS_ENDPOINT | — | storage base URL; absent: Google Cloud Storage |
 * | STAGING_BUCKET, DATA_BUCKET | (required) | staged files + audit counts; closed partitions |
 * | EVENT_TYPES | — (every active type, GCS or BigQuery) | `a,b`: types this deployment hosts |
 * | REGISTRY_STORE | file | `file` (the composer's embedded store, local) or `firestore` (production) |
 * | REGISTRY_DIR | .data/registry | folder of the file store (`<name>.json` records) |
 * | FIRESTORE_EMULATOR_HOST | — | Firestore emulator; absent: Google Firestore |
 * | REGISTRY_COLLECTION | eventTypes | Firestore collection of the registry |
 * | PADLOCK_URL | — | padlock base URL, or its deployment groups' URLs comma-separated (primary first, failover in order): enables field encryption |
 * | PADLOCK_ID_TOKEN | false | send an identity token for each padlock URL (padlock on Cloud Run with IAM) |
 * | PADLOCK_SERVICE | etl | service name the ETL authenticates as |
 * | PADLOCK_SECRET | — (required with PADLOCK_URL) | the service's secret |
 * | PADLOCK_CONTEXT | events | key context personal fields are encrypted under |
 * | BIGQUERY_DATASET | events | dataset of the event tables (Terraform's `bigquery.dataset_id`); types stored in BigQuery are loaded into `<dataset>.<type>` |
 * | BIGQUERY_ENDPOINT | — | BigQuery API base URL (the emulator); absent: Google BigQuery. With it the loader creates the dataset and missing tables; without it Terraform owns them (a missing table is waited for) |
 * | BIGQUERY_LOCATION | — | location of the dataset and load jobs; absent: BigQuery's default |
 * | INSTANCE_ID | etl-<pid> | worker id (logs, dead-letter attributes, leases) |
 * | LOG_LEVEL | INFO | DEBUG, INFO, WARNING, ERROR |
 * | ETL_METRICS_PORT | off | port of `GET /metrics` (Prometheus text format, lib/metrics.ts; 0: a free one); off by default so several workers fit on one machine, 9464 in a worker group (terraform/modules/worker-group) |
 * | ETL_* | see `defaultTuning` | flow control, flush, close, lease, poll, BigQuery load tunables |
 *
 * Without PADLOCK_URL a type whose schema has personal fields is refused
 * (`startEtlWorkers`), never delivered in clear.
 */
import { z } from 'zod';
import { booleanVar, hostPortVar, parseEnv, positiveIntVar, urlListVar, urlVar, type Env } from '../lib/config.ts';
import { DEFAULT_KEY_CONTEXT } from '../lib/privacy/delivered-schema.ts';
import type { Priority } from '../lib/registry/types.ts';
import { DEFAULT_REGISTRY_DIR, registryEnvShape, registryLocationFromEnv, type RegistryLocation } from '../lib/registry/open.ts';
import { eventTypeNamePattern } from '../lib/names.ts';
import { AppError } from '../lib/errors.ts';

export interface EtlTuning {
  /** Flow control: messages leased but not yet acked, per type pipeline. Bounds memory. */
  maxMessagesInFlight: number;
  /** Flow control: bytes of message data leased but not yet acked, per pipeline. */
  maxBytesInFlight: number;
  /** Parallel streaming-pull streams per subscriber. */
  maxStreams: number;
  /** Flush a period's buffer into a staged file at this many records… */
  flushRecords: number;
  /** …or this many bytes of staged envelopes… */
  flushBytes: number;
  /** …or when its oldest record has waited this long. */
  flushAgeMs: number;
  /** Staged-file uploads in flight per pipeline. */
  flushConcurrency: number;
  /** Records handed to the transform at once (encryption fetches keys per batch). */
  transformBatchSize: number;
  /** Exponential backoff of storage/transform/dead-letter failures: first delay… */
  backoffInitialMs: number;
  /** …and cap (each delay is jittered down to half). */
  backoffMaxMs: number;
  /** Decode attempts (with a registry refresh between) before a record is dead-lettered. */
  decodeAttempts: number;
  /** Minimum time between two registry refreshes caused by unknown fingerprints. */
  schemaRefreshMinMs: number;
  /** How often a pipeline looks for periods to close. */
  closeCheckIntervalMs: number;
  /** A period may close as complete only this long after it ended (stragglers in flight). */
  closeGraceMs: number;
  /** SLO deadline after the period's end, per priority: closed then even if incomplete. */
  closeDeadlineMs: Record<Priority, number>;
  /**
   * The liveness bound: an event-service instance that never wrote a final
   * audit count and wrote none for longer than this is taken as gone
   * (etl/completeness.ts), once the period's staged files were unchanged
   * that long too. Must exceed the event service's audit heartbeat
   * (AUDIT_HEARTBEAT_MS, 30 s) plus a write's retries, and the ETL
   * subscription's ack deadline (60 s).
   */
  auditLivenessMs: number;
  /** A closer's lease; an expired lease (crashed closer) is taken over. */
  leaseMs: number;
  /** Records per final part file (files split beyond). */
  partMaxRecords: number;
  /**
   * Staged files (or runs) one merge holds open while closing, each through one
   * block of memory (~64 KB read + one decompressed block); more are merged in
   * rounds through intermediate runs in the staging bucket.
   */
  closeMergeFanIn: number;
  /**
   * Staged bytes of a period (or shard) from which its close merges in a worker
   * thread of lower CPU priority (etl/close-thread.ts) rather than on the event
   * loop that drains; 0: always. Below it (staged files are deflated: ≈ 400,000
   * page views, ≈ 3 s of merging) the drain's stall is short, and a thread
   * costs 80–125 MB of RSS while it runs (etl/README.md, Benchmark).
   */
  closeThreadMinBytes: number;
  /** Audit objects older than this (past the period end) are not considered for closing. */
  auditLookbackMs: number;
  /** How often the worker host re-reads the registry for new/removed types. */
  registryPollMs: number;
  /** Upper bound for a graceful close to finish in-flight uploads. */
  shutdownTimeoutMs: number;
  /** BigQuery types: how often the loader looks for closed partitions to load. */
  loadCheckIntervalMs: number;
  /** …within this window before now (by period start); older closed partitions are not looked for. */
  loadLookbackMs: number;
  /** First delay between polls of a running load job (doubles up to 8×). */
  loadJobPollMs: number;
  /** A load job still running after this ends the pass; the next pass waits for the same job. */
  loadJobTimeoutMs: number;
  /** Job ids tried per load whose jobs failed with a transient reason, before the load counts as failed for good. */
  loadJobAttempts: number;
}

const HOUR = 3_600_000;

export const defaultTuning: EtlTuning = {
  // Peak RSS is bounded by the V8 heap cap (etl/README.md, Benchmark), not by these: live memory
  // stays ≈70 MB. Each streaming pull delivers at its own pace (≈ 1,600 events/s on the emulator):
  // 2 streams capped a worker at ≈ 3,200 events/s with CPU to spare; 8 reach 1.08 of an ack-only
  // client with the library's defaults at 264 MB peak RSS (`npm run bench etl.bench`), and the
  // whole test suite passes with them. One stream (maxStreams 1) stalled the chaos test's SIGKILL
  // recovery.
  maxMessagesInFlight: 4000,
  maxBytesInFlight: 64 * 1024 * 1024,
  maxStreams: 8,
  flushRecords: 1500,
  flushBytes: 4 * 1024 * 1024,
  flushAgeMs: 2000,
  flushConcurrency: 3,
  transformBatchSize: 500,
  backoffInitialMs: 200,
  backoffMaxMs: 30_000,
  decodeAttempts: 3,
  schemaRefreshMinMs: 1000,
  closeCheckIntervalMs: 15_000,
  closeGraceMs: 5 * 60_000,
  closeDeadlineMs: { high: 3 * HOUR, normal: 24 * HOUR, low: 72 * HOUR },
  auditLivenessMs: 2 * 60_000,
  leaseMs: 5 * 60_000,
  partMaxRecords: 200_000,
  closeMergeFanIn: 512,
  closeThreadMinBytes: 4 * 1024 * 1024,
  auditLookbackMs: 7 * 24 * HOUR,
  registryPollMs: 30_000,
  shutdownTimeoutMs: 20_000,
  loadCheckIntervalMs: 60_000,
  loadLookbackMs: 7 * 24 * HOUR,
  loadJobPollMs: 500,
  loadJobTimeoutMs: 30 * 60_000,
  loadJobAttempts: 5,
};

/** Merges overrides into the defaults and checks the relations between tunables. */
export function resolveTuning(overrides: Partial<EtlTuning> = {}): EtlTuning {
  const t: EtlTuning = { ...defaultTuning, ...overrides, closeDeadlineMs: { ...defaultTuning.closeDeadlineMs, ...overrides.closeDeadlineMs } };
  // A buffer that can never reach its size threshold only flushes by age: keep the pull ahead of it.
  if (t.closeMergeFanIn < 2) {
    throw new AppError('CONFIG_INVALID', { message: 'Invalid configuration: ETL_CLOSE_MERGE_FAN_IN must be at least 2' });
  }
  if (t.flushRecords > t.maxMessagesInFlight) {
    throw new AppError('CONFIG_INVALID', { message: 'Invalid configuration: ETL_FLUSH_RECORDS must not exceed ETL_MAX_MESSAGES' });
  }
  return t;
}

export { DEFAULT_REGISTRY_DIR };

/** The composer's file store locally; its Firestore store (`FirestoreRegistryStore`) in production. */
export type EtlRegistryConfig = RegistryLocation;

export interface EtlPadlockConfig {
  /** Each deployment group's base URL, primary first. */
  urls: string[];
  /** Send identity tokens (Cloud Run IAM) along with the service credentials. */
  idToken: boolean;
  service: string;
  secret: string;
  keyContext: string;
}

/** Where types stored in BigQuery are loaded. */
export interface EtlBigQueryConfig {
  dataset: string;
  endpoint: string | undefined;
  location: string | undefined;
  /** The loader creates the dataset and missing tables: only against the emulator (in GCP Terraform creates them). */
  createTables: boolean;
}

/** What `etl/main.ts` runs with. */
export interface EtlMainConfig {
  projectId: string;
  pubsubEmulatorHost: string | undefined;
  storageEndpoint: string | undefined;
  stagingBucket: string;
  dataBucket: string;
  /** Types this deployment hosts; undefined: every active type (GCS, BigQuery or both). */
  eventTypes: string[] | undefined;
  /** Where the registry is read: the composer's store (re-read every poll). */
  registry: EtlRegistryConfig;
  /** Field encryption through padlock; absent: no transform (types with personal fields are refused). */
  padlock: EtlPadlockConfig | undefined;
  bigQuery: EtlBigQueryConfig;
  instanceId: string;
  logLevel: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
  /** Port of the Prometheus metrics endpoint; undefined: not served. */
  metricsPort: number | undefined;
  tuning: EtlTuning;
  /** Shifts the workers' clock, ms (CLOCK_OFFSET_MS): system tests and drills only, with the event service's the same; 0 in production. */
  clockOffsetMs: number;
}

const bucketVar = z.string().trim().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a bucket name');
const msVar = z.string().trim().regex(/^\d+$/, 'expected milliseconds (an integer)').transform(Number);
const bytesVar = z.string().trim().regex(/^\d{1,15}$/, 'expected bytes (an integer)').transform(Number);

/** Validates the environment; throws CONFIG_INVALID naming each bad variable. */
export function loadConfig(env: Env = process.env): EtlMainConfig {
  const e = parseEnv(
    {
      GCP_PROJECT: z.string().trim().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a GCP project id').default('local-project'),
      PUBSUB_EMULATOR_HOST: hostPortVar.optional(),
      GCS_ENDPOINT: urlVar.optional(),
      STAGING_BUCKET: bucketVar,
      DATA_BUCKET: bucketVar,
      EVENT_TYPES: z
        .string()
        .trim()
        .refine((s) => s === '' || s.split(',').every((t) => eventTypeNamePattern.test(t.trim())), 'expected comma-separated event type names')
        .optional(),
      ...registryEnvShape,
      PADLOCK_URL: urlListVar.optional(),
      PADLOCK_ID_TOKEN: booleanVar.default(false),
      PADLOCK_SERVICE: z.string().trim().regex(/^[a-z][a-z0-9._-]{0,62}$/, 'expected a service name').default('etl'),
      PADLOCK_SECRET: z.string().min(1, 'expected the service secret').optional(),
      PADLOCK_CONTEXT: z.string().trim().min(1).default(DEFAULT_KEY_CONTEXT),
      BIGQUERY_DATASET: z.string().trim().regex(/^[A-Za-z0-9_]{1,1024}$/, 'expected a BigQuery dataset id (letters, digits, underscores)').default('events'),
      BIGQUERY_ENDPOINT: urlVar.optional(),
      BIGQUERY_LOCATION: z.string().trim().regex(/^[A-Za-z0-9-]{2,40}$/, 'expected a BigQuery location such as EU or europe-west1').optional(),
      INSTANCE_ID: z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected an instance id').optional(),
      LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).default('INFO'),
      ETL_METRICS_PORT: z
        .string()
        .trim()
        .regex(/^(off|\d{1,5})$/, 'expected a port (0-65535) or off')
        .refine((s) => s === 'off' || Number(s) <= 65535, 'expected a port (0-65535) or off')
        .default('off'),
      ETL_MAX_MESSAGES: positiveIntVar.optional(),
      ETL_MAX_BYTES: positiveIntVar.optional(),
      ETL_FLUSH_RECORDS: positiveIntVar.optional(),
      ETL_FLUSH_BYTES: positiveIntVar.optional(),
      ETL_FLUSH_AGE_MS: positiveIntVar.optional(),
      ETL_CLOSE_CHECK_MS: positiveIntVar.optional(),
      ETL_CLOSE_GRACE_MS: msVar.optional(),
      ETL_AUDIT_LIVENESS_MS: positiveIntVar.optional(),
      CLOCK_OFFSET_MS: z.string().trim().regex(/^-?\d{1,12}$/, 'expected milliseconds (an integer)').transform(Number).optional(),
      ETL_DEADLINE_HIGH_MS: positiveIntVar.optional(),
      ETL_DEADLINE_NORMAL_MS: positiveIntVar.optional(),
      ETL_DEADLINE_LOW_MS: positiveIntVar.optional(),
      ETL_LEASE_MS: positiveIntVar.optional(),
      ETL_CLOSE_MERGE_FAN_IN: positiveIntVar.optional(),
      ETL_CLOSE_THREAD_MIN_BYTES: bytesVar.optional(),
      ETL_REGISTRY_POLL_MS: positiveIntVar.optional(),
      ETL_LOAD_CHECK_MS: positiveIntVar.optional(),
      ETL_LOAD_LOOKBACK_MS: positiveIntVar.optional(),
      ETL_LOAD_JOB_POLL_MS: positiveIntVar.optional(),
    },
    env,
  );
  const o: Partial<EtlTuning> = {};
  if (e.ETL_MAX_MESSAGES !== undefined) o.maxMessagesInFlight = e.ETL_MAX_MESSAGES;
  if (e.ETL_MAX_BYTES !== undefined) o.maxBytesInFlight = e.ETL_MAX_BYTES;
  if (e.ETL_FLUSH_RECORDS !== undefined) o.flushRecords = e.ETL_FLUSH_RECORDS;
  if (e.ETL_FLUSH_BYTES !== undefined) o.flushBytes = e.ETL_FLUSH_BYTES;
  if (e.ETL_FLUSH_AGE_MS !== undefined) o.flushAgeMs = e.ETL_FLUSH_AGE_MS;
  if (e.ETL_CLOSE_CHECK_MS !== undefined) o.closeCheckIntervalMs = e.ETL_CLOSE_CHECK_MS;
  if (e.ETL_CLOSE_GRACE_MS !== undefined) o.closeGraceMs = e.ETL_CLOSE_GRACE_MS;
  if (e.ETL_AUDIT_LIVENESS_MS !== undefined) o.auditLivenessMs = e.ETL_AUDIT_LIVENESS_MS;
  if (e.ETL_LEASE_MS !== undefined) o.leaseMs = e.ETL_LEASE_MS;
  if (e.ETL_CLOSE_MERGE_FAN_IN !== undefined) o.closeMergeFanIn = e.ETL_CLOSE_MERGE_FAN_IN;
  if (e.ETL_CLOSE_THREAD_MIN_BYTES !== undefined) o.closeThreadMinBytes = e.ETL_CLOSE_THREAD_MIN_BYTES;
  if (e.ETL_REGISTRY_POLL_MS !== undefined) o.registryPollMs = e.ETL_REGISTRY_POLL_MS;
  if (e.ETL_LOAD_CHECK_MS !== undefined) o.loadCheckIntervalMs = e.ETL_LOAD_CHECK_MS;
  if (e.ETL_LOAD_LOOKBACK_MS !== undefined) o.loadLookbackMs = e.ETL_LOAD_LOOKBACK_MS;
  if (e.ETL_LOAD_JOB_POLL_MS !== undefined) o.loadJobPollMs = e.ETL_LOAD_JOB_POLL_MS;
  o.closeDeadlineMs = {
    high: e.ETL_DEADLINE_HIGH_MS ?? defaultTuning.closeDeadlineMs.high,
    normal: e.ETL_DEADLINE_NORMAL_MS ?? defaultTuning.closeDeadlineMs.normal,
    low: e.ETL_DEADLINE_LOW_MS ?? defaultTuning.closeDeadlineMs.low,
  };
  if (e.PADLOCK_URL !== undefined && e.PADLOCK_SECRET === undefined) {
    throw new AppError('CONFIG_INVALID', { message: 'Invalid configuration: PADLOCK_SECRET: required when PADLOCK_URL is set' });
  }
  const types = e.EVENT_TYPES === undefined || e.EVENT_TYPES === '' ? undefined : e.EVENT_TYPES.split(',').map((t) => t.trim());
  return {
    projectId: e.GCP_PROJECT,
    pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST,
    storageEndpoint: e.GCS_ENDPOINT,
    stagingBucket: e.STAGING_BUCKET,
    dataBucket: e.DATA_BUCKET,
    eventTypes: types,
    registry: registryLocationFromEnv(e),
    padlock:
      e.PADLOCK_URL === undefined || e.PADLOCK_SECRET === undefined
        ? undefined
        : { urls: e.PADLOCK_URL, idToken: e.PADLOCK_ID_TOKEN, service: e.PADLOCK_SERVICE, secret: e.PADLOCK_SECRET, keyContext: e.PADLOCK_CONTEXT },
    bigQuery: { dataset: e.BIGQUERY_DATASET, endpoint: e.BIGQUERY_ENDPOINT, location: e.BIGQUERY_LOCATION, createTables: e.BIGQUERY_ENDPOINT !== undefined },
    instanceId: e.INSTANCE_ID ?? `etl-${process.pid}`,
    logLevel: e.LOG_LEVEL,
    metricsPort: e.ETL_METRICS_PORT === 'off' ? undefined : Number(e.ETL_METRICS_PORT),
    tuning: resolveTuning(o),
    clockOffsetMs: e.CLOCK_OFFSET_MS ?? 0,
  };
}
