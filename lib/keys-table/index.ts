/**
 * A consumer's BigQuery keys table and the sync that keeps it in step with
 * padlock, so `AEAD.DECRYPT_BYTES(k.keyset, e.value, …)` can join it to an
 * events table (docs/encryption.md, "Decrypting in BigQuery").
 *
 * The table holds one row per tracked user and category: `user_id STRING`,
 * `category STRING`, `keyset BYTES` (a serialized Tink keyset of the
 * consumer's derived key, from padlock's `POST /v1/keys/keysets`). A sync
 * rewrites it whole from padlock's current answer for the users it already
 * holds plus any users to add: a shredded user (or category) has no keyset in
 * the answer, so the rewrite drops their rows. The rewrite is one load job
 * with WRITE_TRUNCATE (atomic: readers see the old table or the new one). The
 * load reads an Avro file staged in GCS; that file is key material and is
 * deleted as soon as the job is done, whatever its outcome.
 *
 * Run one sync at a time per table: two overlapping syncs each rewrite the
 * table from what they read, so users added by one may be dropped by the
 * other until the next sync adds them again (a shredded user is never brought
 * back: padlock has no keyset for them).
 */
import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { avroType } from '../avro/long.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { PadlockClient } from '../padlock-client/index.ts';
import { userIdProblem } from '../user-id.ts';

/** The keys table's columns (what `tables.insert` and load jobs take). */
export const KEYS_TABLE_SCHEMA = [
  { name: 'user_id', type: 'STRING', mode: 'REQUIRED', description: 'Data subject (the events\' userId).' },
  { name: 'category', type: 'STRING', mode: 'REQUIRED', description: 'Data category of the key (contact, location, …).' },
  { name: 'keyset', type: 'BYTES', mode: 'REQUIRED', description: 'Serialized Tink keyset of the derived key: key material.' },
] as const;

/** The Avro record a sync stages; BigQuery maps it onto KEYS_TABLE_SCHEMA. */
const ROW_SCHEMA = {
  type: 'record',
  name: 'KeysetRow',
  fields: [
    { name: 'user_id', type: 'string' },
    { name: 'category', type: 'string' },
    { name: 'keyset', type: 'bytes' },
  ],
};
const rowType = avroType(ROW_SCHEMA);

export interface KeysTableRow {
  user_id: string;
  category: string;
  keyset: Buffer;
}

export interface KeysTableTarget {
  bigquery: BigQuery;
  dataset: string;
  table: string;
  /** Location of the dataset and jobs; absent: BigQuery's default. */
  location?: string | undefined;
}

export interface KeysTableSyncOptions {
  target: KeysTableTarget;
  /** The consumer's padlock client (its service must be entitled to `context`). */
  padlock: Pick<PadlockClient, 'getKeysets'>;
  /** Where the load file is staged (deleted once the job is done). */
  storage: Storage;
  stagingBucket: string;
  /** Categories to keep keysets of; default every personal category. */
  categories?: readonly string[];
  /** Key context (the ETL's, e.g. `events`); default the service's first. */
  context?: string;
  /** Users to start tracking, besides those the table holds (e.g. new subjects of the events table). */
  addUsers?: readonly string[];
  /** First poll interval of the load job (doubling to 8×). Default 200 ms. */
  jobPollMs?: number;
  /** Bound on waiting for the load job. Default 10 minutes. */
  jobTimeoutMs?: number;
  logger?: Logger;
}

export interface KeysTableSyncResult {
  /** Users asked of padlock (the table's users plus those added). */
  users: number;
  /** Rows written (found keysets). */
  rows: number;
  /** Users the table held before that it holds no row of now (shredded, or every category opted out). */
  removedUsers: number;
  jobId: string;
}

/**
 * Rewrites the keys table from padlock's current keysets of its users (plus
 * `addUsers`). Creates the dataset and table if absent. A failure leaves the
 * table as it was (the load is atomic); run it again.
 */
export async function syncKeysTable(opts: KeysTableSyncOptions): Promise<KeysTableSyncResult> {
  const { target } = opts;
  (opts.addUsers ?? []).forEach((userId, i) => {
    const problem = userIdProblem(userId);
    if (problem !== undefined) throw new AppError('BAD_REQUEST', { message: `addUsers[${i}]: ${problem}`, details: { field: `addUsers[${i}]` } });
  });
  const before = await keysTableUsers(target);
  const users = [...new Set([...before, ...(opts.addUsers ?? [])])].sort();
  const answer = users.length === 0 ? [] : await opts.padlock.getKeysets(users, { ...(opts.categories === undefined ? {} : { categories: opts.categories }), ...(opts.context === undefined ? {} : { context: opts.context }) });
  const rows: KeysTableRow[] = [];
  for (const user of answer) {
    if (user.status !== 'found') continue;
    for (const [category, k] of [...user.categories].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (k.status === 'found') rows.push({ user_id: user.userId, category, keyset: k.keyset });
    }
  }
  const after = new Set(rows.map((r) => r.user_id));
  const removedUsers = [...before].filter((u) => !after.has(u)).length;

  await ensureDataset(target);
  const jobId = `keys_table_sync_${randomUUID().replace(/-/g, '')}`;
  const file = opts.storage.bucket(opts.stagingBucket).file(`keys-table/${target.dataset}.${target.table}/${jobId}.avro`);
  await file.save(await avroFile(rows), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 }, contentType: 'application/avro' });
  try {
    await runLoad(target, jobId, `gs://${opts.stagingBucket}/${file.name}`, opts.jobPollMs ?? 200, opts.jobTimeoutMs ?? 600_000);
  } finally {
    await file.delete({ ignoreNotFound: true }).catch((err: unknown) => opts.logger?.error('staged keys file not deleted: delete it by hand', { object: file.name, err }));
  }
  opts.logger?.info('keys table synced', { dataset: target.dataset, table: target.table, users: users.length, rows: rows.length, removedUsers, jobId });
  return { users: users.length, rows: rows.length, removedUsers, jobId };
}

/** Distinct `user_id`s of the keys table (empty if it does not exist yet), read with `tabledata.list`. */
export async function keysTableUsers(target: KeysTableTarget): Promise<Set<string>> {
  const rows = await keysTableRows(target, 'user_id');
  return new Set(rows.map((r) => r.user_id));
}

/** Every row of the keys table (none if it does not exist yet), through `tabledata.list`. */
export async function readKeysTable(target: KeysTableTarget): Promise<KeysTableRow[]> {
  return (await keysTableRows(target)).map((r) => ({ user_id: r.user_id, category: r.category ?? '', keyset: Buffer.from(r.keyset ?? '', 'base64') }));
}

async function keysTableRows(target: KeysTableTarget, selectedFields?: string): Promise<{ user_id: string; category?: string; keyset?: string }[]> {
  const table = dataset(target).table(target.table);
  try {
    const [rows] = await table.getRows({ autoPaginate: true, ...(selectedFields === undefined ? {} : { selectedFields }) });
    return rows as { user_id: string; category?: string; keyset?: string }[];
  } catch (err) {
    if (httpCode(err) === 404) return [];
    throw failure('tabledata.list', err);
  }
}

/**
 * User ids of an events table, for `addUsers`: the values of a STRING column
 * (`payload.userId`), read with `tabledata.list` of its top-level column. Reads
 * the whole table (or the partition of a decorated name, `events$2026113016`):
 * use a partition to pick up an hour's new subjects.
 */
export async function subjectsOf(target: Omit<KeysTableTarget, 'table'> & { table: string }, column: string): Promise<string[]> {
  const path = column.split('.');
  if (path.some((p) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p))) {
    throw new AppError('BAD_REQUEST', { message: `column: expected a dotted column path like payload.userId, got ${JSON.stringify(column.slice(0, 100))}` });
  }
  let rows: unknown[];
  try {
    [rows] = await dataset(target).table(target.table).getRows({ autoPaginate: true, selectedFields: path[0]! });
  } catch (err) {
    throw failure('tabledata.list', err);
  }
  const out = new Set<string>();
  for (const row of rows) {
    let v: unknown = row;
    for (const p of path) v = typeof v === 'object' && v !== null && Object.hasOwn(v, p) ? (v as Record<string, unknown>)[p] : undefined;
    if (typeof v === 'string' && userIdProblem(v) === undefined) out.add(v);
  }
  return [...out].sort();
}

function dataset(target: Omit<KeysTableTarget, 'table'>) {
  return target.bigquery.dataset(target.dataset, target.location === undefined ? {} : { location: target.location });
}

async function ensureDataset(target: KeysTableTarget): Promise<void> {
  try {
    await dataset(target).create(target.location === undefined ? {} : { location: target.location });
  } catch (err) {
    if (httpCode(err) !== 409) throw failure('datasets.insert', err);
  }
}

/** Inserts the WRITE_TRUNCATE load and waits for it; a failed job is an AppError. */
async function runLoad(target: KeysTableTarget, jobId: string, sourceUri: string, pollMs: number, timeoutMs: number): Promise<void> {
  const location = target.location === undefined ? {} : { location: target.location };
  const configuration = {
    load: {
      sourceUris: [sourceUri],
      sourceFormat: 'AVRO',
      destinationTable: { projectId: target.bigquery.projectId, datasetId: target.dataset, tableId: target.table },
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_IF_NEEDED',
      schema: { fields: KEYS_TABLE_SCHEMA.map((f) => ({ ...f })) },
    },
  };
  try {
    await target.bigquery.createJob({ jobId, ...location, configuration });
  } catch (err) {
    throw failure('jobs.insert', err);
  }
  const job = target.bigquery.job(jobId, location);
  const end = Date.now() + timeoutMs;
  let delay = pollMs;
  for (;;) {
    let meta: { status?: { state?: string; errorResult?: { reason?: string; message?: string } } };
    try {
      [meta] = (await job.getMetadata()) as unknown as [typeof meta];
    } catch (err) {
      throw failure('jobs.get', err);
    }
    if (meta.status?.state === 'DONE') {
      const e = meta.status.errorResult;
      if (e === undefined || e === null) return;
      const transient = e.reason === 'backendError' || e.reason === 'internalError' || e.reason === 'rateLimitExceeded';
      throw new AppError(transient ? 'BIGQUERY_UNAVAILABLE' : 'BIGQUERY_LOAD_REJECTED', { message: `keys table load ${jobId} failed: ${e.reason ?? 'error'}: ${e.message ?? ''}` });
    }
    if (Date.now() >= end) throw new AppError('BIGQUERY_UNAVAILABLE', { message: `keys table load ${jobId} still ${meta.status?.state ?? 'unknown'} after ${timeoutMs} ms` });
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, pollMs * 8);
  }
}

/** The rows as an Avro object container file (a header alone when there are none: the load then empties the table). */
async function avroFile(rows: readonly KeysTableRow[]): Promise<Buffer> {
  const encoder = new avro.streams.BlockEncoder(rowType, { codec: 'deflate', writeHeader: 'always' });
  const chunks: Buffer[] = [];
  encoder.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    encoder.on('end', resolve);
    encoder.on('error', reject);
  });
  for (const r of rows) encoder.write(r);
  encoder.end();
  await done;
  return Buffer.concat(chunks);
}

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A failed BigQuery call: retryable unless BigQuery said the request itself is wrong (4xx other than 429). */
function failure(call: string, err: unknown): AppError {
  const code = httpCode(err);
  const permanent = code !== undefined && code >= 400 && code < 500 && code !== 429;
  return new AppError(permanent ? 'BIGQUERY_LOAD_REJECTED' : 'BIGQUERY_UNAVAILABLE', {
    message: `${call} failed (${code ?? 'network'}): ${err instanceof Error ? err.message : String(err)}`,
    cause: err,
  });
}
