/**
 * Configuration of the event service: every tunable and its default in one
 * place, and `loadConfig(env)` validating the environment once at start.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { hostPortVar, parseEnv, portVar, positiveIntVar, urlVar, type Env } from '../../lib/config.ts';
import type { Severity } from '../../lib/logger.ts';
import { registryEnvShape, registryLocationFromEnv, type RegistryLocation } from '../../lib/registry/open.ts';

export interface EventServiceLimits {
  /** Largest request body; larger answers 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes: number;
  /** Most events in one JSON batch; more answers 413 BATCH_TOO_LARGE. */
  maxBatchEvents: number;
  /** Largest Avro-encoded event; larger is rejected per event with EVENT_TOO_LARGE. */
  maxEventBytes: number;
  /** Bytes one type may have waiting for Pub/Sub confirmation before its events answer OVERLOADED. */
  typeBudgetBytes: number;
  /** Requests processed at once; more answer 429 with Retry-After. */
  maxConcurrentRequests: number;
  /**
   * Bytes of request bodies held at once (each request reserves its
   * Content-Length, or maxBodyBytes when chunked); more answer 429 with Retry-After.
   */
  maxBufferedBodyBytes: number;
}

export interface EventServiceConfig {
  /** Interface to listen on. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  projectId: string;
  /** `host:port` of the Pub/Sub emulator; absent means Google. */
  pubsubEmulatorHost?: string | undefined;
  /** Base URL of a GCS endpoint (the emulator); absent means Google. */
  gcsEndpoint?: string | undefined;
  /** Bucket for audit counts (lib/events/contract.ts). */
  stagingBucket?: string | undefined;
  /** Unique per process lifetime (see audit.ts). */
  instanceId: string;
  limits: EventServiceLimits;
  /** How often the registry is re-read. */
  registryRefreshMs: number;
  /** How often audit counts are written. */
  auditFlushMs: number;
  /** How often a count not yet final is rewritten unchanged: the ETL's liveness signal (audit.ts). */
  auditHeartbeatMs: number;
  /**
   * Shifts this process's clock (receive times, audit hours), ms. For system
   * tests and drills that need an hour to end soon; the ETL takes the same
   * (CLOCK_OFFSET_MS). 0 in production.
   */
  clockOffsetMs: number;
  /** Longest wait for Pub/Sub to confirm a publish before reporting PUBLISH_FAILED. */
  publishTimeoutMs: number;
  /** Pub/Sub client batching per type. */
  batching: { maxMessages: number; maxMilliseconds: number; maxBytes: number };
  /** Seconds in `Retry-After` of 429/503 answers. */
  retryAfterSeconds: number;
  logLevel: Severity;
}

const MiB = 1024 * 1024;

/** Defaults, commented where the number is a choice. */
export const defaultLimits: EventServiceLimits = {
  maxBodyBytes: 5 * MiB,
  maxBatchEvents: 1000,
  // Pub/Sub takes up to 10 MB per message; 1 MiB keeps one event from dominating a batch.
  maxEventBytes: 1 * MiB,
  // 32 MiB per type: a few seconds of a busy type's traffic; ×types is the memory bound.
  typeBudgetBytes: 32 * MiB,
  maxConcurrentRequests: 1024,
  // With the per-type budgets, this bounds the service's memory for events.
  maxBufferedBodyBytes: 256 * MiB,
};

/** A process-unique instance id: host, pid and randomness (see audit.ts for why it must be unique). */
export function newInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40) || 'host';
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A complete config from a partial one (tests, the local platform). */
export function withDefaults(partial: Partial<Omit<EventServiceConfig, 'limits'>> & { projectId: string; limits?: Partial<EventServiceLimits> }): EventServiceConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    instanceId: newInstanceId(),
    registryRefreshMs: 2000,
    auditFlushMs: 1000,
    auditHeartbeatMs: 30_000,
    clockOffsetMs: 0,
    publishTimeoutMs: 30_000,
    // 10 ms batches: confirmation latency stays small; throughput comes from concurrent batches.
    batching: { maxMessages: 1000, maxMilliseconds: 10, maxBytes: 4 * MiB },
    retryAfterSeconds: 1,
    logLevel: 'INFO',
    ...partial,
    limits: { ...defaultLimits, ...partial.limits },
  };
}

export interface MainConfig {
  service: EventServiceConfig;
  /** The registry: the file store (local) or Firestore (production). */
  registry: RegistryLocation;
}

/**
 * Reads the environment: PORT, HOST, GCP_PROJECT, PUBSUB_EMULATOR_HOST,
 * GCS_ENDPOINT, STAGING_BUCKET, the registry (REGISTRY_STORE, REGISTRY_DIR,
 * REGISTRY_COLLECTION, FIRESTORE_EMULATOR_HOST: lib/registry/open.ts), INSTANCE_ID (a prefix: pid and
 * randomness are appended so every process is unique) and the tunables
 * (MAX_BODY_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES, TYPE_BUDGET_BYTES,
 * MAX_CONCURRENT_REQUESTS, MAX_BUFFERED_BODY_BYTES, REGISTRY_REFRESH_MS, AUDIT_FLUSH_MS, AUDIT_HEARTBEAT_MS, CLOCK_OFFSET_MS,
 * PUBLISH_TIMEOUT_MS, RETRY_AFTER_SECONDS, LOG_LEVEL).
 * Throws AppError CONFIG_INVALID naming each bad variable.
 */
export function loadConfig(env: Env = process.env): MainConfig {
  const e = parseEnv(
    {
      PORT: portVar.default(8080),
      HOST: z.string().trim().min(1).default('0.0.0.0'),
      GCP_PROJECT: z.string({ message: 'required' }).trim().min(1, 'required'),
      PUBSUB_EMULATOR_HOST: hostPortVar.optional(),
      GCS_ENDPOINT: urlVar.optional(),
      STAGING_BUCKET: z.string({ message: 'required' }).trim().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a bucket name'),
      ...registryEnvShape,
      INSTANCE_ID: z.string().trim().regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected letters, digits, . _ -').optional(),
      MAX_BODY_BYTES: positiveIntVar.optional(),
      MAX_BATCH_EVENTS: positiveIntVar.optional(),
      MAX_EVENT_BYTES: positiveIntVar.optional(),
      TYPE_BUDGET_BYTES: positiveIntVar.optional(),
      MAX_CONCURRENT_REQUESTS: positiveIntVar.optional(),
      MAX_BUFFERED_BODY_BYTES: positiveIntVar.optional(),
      REGISTRY_REFRESH_MS: positiveIntVar.optional(),
      AUDIT_FLUSH_MS: positiveIntVar.optional(),
      AUDIT_HEARTBEAT_MS: positiveIntVar.optional(),
      CLOCK_OFFSET_MS: z.string().trim().regex(/^-?\d{1,12}$/, 'expected milliseconds (an integer)').transform(Number).optional(),
      PUBLISH_TIMEOUT_MS: positiveIntVar.optional(),
      RETRY_AFTER_SECONDS: positiveIntVar.optional(),
      LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).optional(),
    },
    env,
  );
  const limits: Partial<EventServiceLimits> = {};
  if (e.MAX_BODY_BYTES !== undefined) limits.maxBodyBytes = e.MAX_BODY_BYTES;
  if (e.MAX_BATCH_EVENTS !== undefined) limits.maxBatchEvents = e.MAX_BATCH_EVENTS;
  if (e.MAX_EVENT_BYTES !== undefined) limits.maxEventBytes = e.MAX_EVENT_BYTES;
  if (e.TYPE_BUDGET_BYTES !== undefined) limits.typeBudgetBytes = e.TYPE_BUDGET_BYTES;
  if (e.MAX_CONCURRENT_REQUESTS !== undefined) limits.maxConcurrentRequests = e.MAX_CONCURRENT_REQUESTS;
  if (e.MAX_BUFFERED_BODY_BYTES !== undefined) limits.maxBufferedBodyBytes = e.MAX_BUFFERED_BODY_BYTES;
  const service = withDefaults({
    host: e.HOST,
    port: e.PORT,
    projectId: e.GCP_PROJECT,
    pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST,
    gcsEndpoint: e.GCS_ENDPOINT,
    stagingBucket: e.STAGING_BUCKET,
    limits,
    ...(e.INSTANCE_ID === undefined ? {} : { instanceId: `${e.INSTANCE_ID}-${process.pid}-${randomBytes(4).toString('hex')}` }),
    ...(e.REGISTRY_REFRESH_MS === undefined ? {} : { registryRefreshMs: e.REGISTRY_REFRESH_MS }),
    ...(e.AUDIT_FLUSH_MS === undefined ? {} : { auditFlushMs: e.AUDIT_FLUSH_MS }),
    ...(e.AUDIT_HEARTBEAT_MS === undefined ? {} : { auditHeartbeatMs: e.AUDIT_HEARTBEAT_MS }),
    ...(e.CLOCK_OFFSET_MS === undefined ? {} : { clockOffsetMs: e.CLOCK_OFFSET_MS }),
    ...(e.PUBLISH_TIMEOUT_MS === undefined ? {} : { publishTimeoutMs: e.PUBLISH_TIMEOUT_MS }),
    ...(e.RETRY_AFTER_SECONDS === undefined ? {} : { retryAfterSeconds: e.RETRY_AFTER_SECONDS }),
    ...(e.LOG_LEVEL === undefined ? {} : { logLevel: e.LOG_LEVEL }),
  });
  return { service, registry: registryLocationFromEnv(e) };
}
