/**
 * Every setting of the partition status service in one commented place, and
 * `loadConfig` for `main.ts` (environment → validated config, errors naming
 * the variable).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | STATUS_HOST | 0.0.0.0 | interface to listen on |
 * | PORT / STATUS_PORT | 8092 | port (`PORT` is what Cloud Run sets; `STATUS_PORT` wins) |
 * | GCP_PROJECT | local-project | project of the buckets and subscriptions |
 * | GCS_ENDPOINT | — | storage base URL; absent: Google Cloud Storage |
 * | STAGING_BUCKET, DATA_BUCKET | (required) | the ETL's buckets (staged files, leases, audit counts; partitions) |
 * | PUBSUB_EMULATOR_HOST | — | `host:port`; absent: Google Pub/Sub (dead-letter counts) |
 * | REGISTRY_STORE, REGISTRY_DIR, FIRESTORE_EMULATOR_HOST, REGISTRY_COLLECTION | as the ETL | the registry |
 * | ETL_CLOSE_GRACE_MS, ETL_DEADLINE_HIGH_MS, ETL_DEADLINE_NORMAL_MS, ETL_DEADLINE_LOW_MS | the ETL's defaults | the ETL's close timing, set alike for both (an unclosed partition past its deadline shows `overdue`) |
 * | STATUS_REFRESH_MS | 15000 | one listing pass every this often (requests are answered from the cache) |
 * | STATUS_WINDOW_HOURS | 72 | hours back the status covers |
 * | STATUS_DEAD_LETTERS | true | count dead letters (peek at each type's dead-letter subscription) |
 * | STATUS_DEAD_LETTER_MS | 60000 | how often dead letters are counted |
 * | STATUS_DEAD_LETTER_MAX | 1000 | dead letters looked at per type and count (more show as `1000+`) |
 * | LOG_LEVEL | INFO | DEBUG, INFO, WARNING, ERROR |
 */
import { z } from 'zod';
import { booleanVar, hostPortVar, parseEnv, portVar, positiveIntVar, urlVar, type Env } from '../../lib/config.ts';
import type { Priority } from '../../lib/registry/types.ts';
import { registryEnvShape, registryLocationFromEnv, type RegistryLocation } from '../../lib/registry/open.ts';

const HOUR = 3_600_000;

export interface StatusTuning {
  /** Time between two listing passes. */
  refreshMs: number;
  /** Hours back from now the status covers (the grid's rows go back this far). */
  windowHours: number;
  /** The ETL's `closeGraceMs`. */
  closeGraceMs: number;
  /** The ETL's close deadline per priority (its SLO deadlines). */
  closeDeadlineMs: Record<Priority, number>;
  /** Listing requests in flight during a pass. */
  listConcurrency: number;
  /** Count dead letters at all. */
  deadLetters: boolean;
  deadLetterIntervalMs: number;
  /** Dead letters looked at per type and count (bounds the work; more show as `<max>+`). */
  deadLetterMax: number;
}

/** Defaults, the ETL's close timing included (etl/config.ts `defaultTuning`). */
export const defaultStatusTuning: StatusTuning = {
  refreshMs: 15_000,
  windowHours: 72,
  closeGraceMs: 5 * 60_000,
  closeDeadlineMs: { high: 3 * HOUR, normal: 24 * HOUR, low: 72 * HOUR },
  listConcurrency: 8,
  deadLetters: true,
  deadLetterIntervalMs: 60_000,
  deadLetterMax: 1000,
};

export interface StatusConfig {
  host: string;
  port: number;
  projectId: string;
  storageEndpoint: string | undefined;
  pubsubEmulatorHost: string | undefined;
  stagingBucket: string;
  dataBucket: string;
  registry: RegistryLocation;
  logLevel: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
  tuning: StatusTuning;
}

const bucketVar = z.string().trim().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a bucket name');
const msVar = z.string().trim().regex(/^\d+$/, 'expected milliseconds (an integer)').transform(Number);

/** Validates the environment; throws CONFIG_INVALID naming each bad variable. */
export function loadConfig(env: Env = process.env): StatusConfig {
  const e = parseEnv(
    {
      STATUS_HOST: z.string().trim().min(1).default('0.0.0.0'),
      PORT: portVar.optional(),
      STATUS_PORT: portVar.optional(),
      GCP_PROJECT: z.string().trim().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a GCP project id').default('local-project'),
      GCS_ENDPOINT: urlVar.optional(),
      PUBSUB_EMULATOR_HOST: hostPortVar.optional(),
      STAGING_BUCKET: bucketVar,
      DATA_BUCKET: bucketVar,
      ...registryEnvShape,
      ETL_CLOSE_GRACE_MS: msVar.optional(),
      ETL_DEADLINE_HIGH_MS: positiveIntVar.optional(),
      ETL_DEADLINE_NORMAL_MS: positiveIntVar.optional(),
      ETL_DEADLINE_LOW_MS: positiveIntVar.optional(),
      STATUS_REFRESH_MS: positiveIntVar.optional(),
      STATUS_WINDOW_HOURS: positiveIntVar.refine((n) => n <= 24 * 31, 'expected at most 744 hours').optional(),
      STATUS_DEAD_LETTERS: booleanVar.default(true),
      STATUS_DEAD_LETTER_MS: positiveIntVar.optional(),
      STATUS_DEAD_LETTER_MAX: positiveIntVar.refine((n) => n <= 100_000, 'expected at most 100000').optional(),
      LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).default('INFO'),
    },
    env,
  );
  const d = defaultStatusTuning;
  return {
    host: e.STATUS_HOST,
    port: e.STATUS_PORT ?? e.PORT ?? 8092,
    projectId: e.GCP_PROJECT,
    storageEndpoint: e.GCS_ENDPOINT,
    pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST,
    stagingBucket: e.STAGING_BUCKET,
    dataBucket: e.DATA_BUCKET,
    registry: registryLocationFromEnv(e),
    logLevel: e.LOG_LEVEL,
    tuning: {
      ...d,
      refreshMs: e.STATUS_REFRESH_MS ?? d.refreshMs,
      windowHours: e.STATUS_WINDOW_HOURS ?? d.windowHours,
      closeGraceMs: e.ETL_CLOSE_GRACE_MS ?? d.closeGraceMs,
      closeDeadlineMs: {
        high: e.ETL_DEADLINE_HIGH_MS ?? d.closeDeadlineMs.high,
        normal: e.ETL_DEADLINE_NORMAL_MS ?? d.closeDeadlineMs.normal,
        low: e.ETL_DEADLINE_LOW_MS ?? d.closeDeadlineMs.low,
      },
      deadLetters: e.STATUS_DEAD_LETTERS,
      deadLetterIntervalMs: e.STATUS_DEAD_LETTER_MS ?? d.deadLetterIntervalMs,
      deadLetterMax: e.STATUS_DEAD_LETTER_MAX ?? d.deadLetterMax,
    },
  };
}
