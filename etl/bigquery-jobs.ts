/**
 * The pure part of loading partitions into BigQuery: partition decorators,
 * deterministic job ids, the load job's configuration, and which BigQuery
 * errors are worth retrying.
 *
 * Job ids: `edp_load_<type>_<YYYYMMDDHH>_<manifest sha256, 32 hex>_<attempt>`
 * for a partition (WRITE_TRUNCATE), `edp_late_<type>_<YYYYMMDDHH>_<sha256 of
 * the late file's name and crc32c, 32 hex>_<attempt>` for a late file
 * (WRITE_APPEND). The same closed partition always gets the same ids, so a
 * retry, a crashed worker's successor or a second worker inserts a job id
 * BigQuery already has (409 duplicate) and waits for that job instead of
 * loading again. `attempt` moves on only when the previous attempt's job
 * finished *failed* with a retryable error: a failed load job writes nothing.
 */
import { createHash } from 'node:crypto';
import type { Period } from '../lib/partitions.ts';

/** `YYYYMMDDHH` (hourly) or `YYYYMMDD` (daily): the partition decorator of a period. */
export function partitionDecorator(period: Period): string {
  const digits = period.key.replace(/[-T]/g, '');
  return period.granularity === 'hourly' ? digits.slice(0, 10) : digits.slice(0, 8);
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The job id of attempt `attempt` of loading a closed partition (its manifest's SHA-256). */
export function partitionJobId(eventType: string, period: Period, manifestSha256: string, attempt: number): string {
  return `edp_load_${eventType}_${partitionDecorator(period)}_${manifestSha256.slice(0, 32)}_${attempt}`;
}

/** The job id of attempt `attempt` of appending one late file (named object, with its crc32c). */
export function lateJobId(eventType: string, period: Period, objectName: string, crc32c: string, attempt: number): string {
  return `edp_late_${eventType}_${partitionDecorator(period)}_${sha256Hex(`${objectName}\u0000${crc32c}`).slice(0, 32)}_${attempt}`;
}

export interface LoadTarget {
  projectId: string;
  datasetId: string;
  tableId: string;
}

/** `configuration.load` of a job loading `sourceUris` (Avro) into one partition. */
export function loadConfiguration(p: {
  target: LoadTarget;
  period: Period;
  sourceUris: string[];
  writeDisposition: 'WRITE_TRUNCATE' | 'WRITE_APPEND';
  /** Several writer versions: let the job add (and relax) columns. */
  allowSchemaUpdates: boolean;
}): Record<string, unknown> {
  return {
    sourceUris: p.sourceUris,
    sourceFormat: 'AVRO',
    useAvroLogicalTypes: true,
    destinationTable: { projectId: p.target.projectId, datasetId: p.target.datasetId, tableId: `${p.target.tableId}$${partitionDecorator(p.period)}` },
    writeDisposition: p.writeDisposition,
    // The loader creates the table (partitioning, descriptions); a load never should.
    createDisposition: 'CREATE_NEVER',
    ...(p.allowSchemaUpdates ? { schemaUpdateOptions: ['ALLOW_FIELD_ADDITION', 'ALLOW_FIELD_RELAXATION'] } : {}),
  };
}

/** A BigQuery `ErrorProto`. */
export interface BigQueryErrorProto {
  reason?: string;
  message?: string;
  location?: string;
}

/** Reasons BigQuery documents as transient: retry later (with backoff). */
const RETRYABLE_REASONS = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'quotaExceeded',
  'jobBackendError',
  'jobInternalError',
  'jobRateLimitExceeded',
  'tableUnavailable',
  'timeout',
  // The table or dataset went away between our check and the job: the next pass re-creates it.
  'notFound',
]);

/** Whether a failed job's `status.errorResult` is worth another attempt (under a new attempt id). */
export function isRetryableJobError(error: BigQueryErrorProto | undefined): boolean {
  return error?.reason !== undefined && RETRYABLE_REASONS.has(error.reason);
}

export type RequestErrorKind = 'duplicate' | 'notFound' | 'retryable' | 'permanent';

/** What an error thrown by the BigQuery client (an API call failing) means for the loader. */
export function classifyRequestError(err: unknown): RequestErrorKind {
  const e = err as { code?: unknown; errors?: BigQueryErrorProto[] } | undefined;
  const code = typeof e?.code === 'number' ? e.code : undefined;
  const reasons = (Array.isArray(e?.errors) ? e.errors : []).map((x) => x.reason);
  if (code === 409 || reasons.includes('duplicate')) return 'duplicate';
  if (code === 404) return 'notFound';
  // No HTTP status: the connection failed (refused, reset, timed out).
  if (code === undefined) return 'retryable';
  if (code >= 500 || code === 429 || code === 408) return 'retryable';
  if (reasons.some((r) => r !== undefined && RETRYABLE_REASONS.has(r) && r !== 'notFound')) return 'retryable';
  return 'permanent';
}
