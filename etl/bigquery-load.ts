/**
 * Loading one type's closed partitions into BigQuery (DESIGN.md §3, BigQuery
 * delivery). Every pass (and after any crash: a pass is the recovery) finds
 * the closed partitions of the lookback window without a `_LOADED` marker, and
 * for each, oldest first:
 *
 * 1. reads `_SUCCESS` and derives the job ids from its SHA-256;
 * 2. creates the dataset and table if absent (partitioned on `receiveTime`,
 *    HOUR or DAY, columns from the delivered schemas with their docs; only with
 *    `createTables`: in GCP Terraform creates both, and a missing table is a
 *    retryable failure until it exists) and patches the table when a writer
 *    version adds (or no longer fills) columns;
 * 3. runs one load job of the part files into `<table>$YYYYMMDDHH` with
 *    WRITE_TRUNCATE (deterministic id: a 409 duplicate means "that job is ours,
 *    wait for it");
 * 4. verifies the partition's row count against the manifest's record count
 *    and writes `_LOADED` (job id, rows, table, time) next to the manifest;
 * 5. appends each late file not yet in `_LOADED` with its own job
 *    (WRITE_APPEND, deterministic id) and records it there.
 *
 * A retryable failure (5xx, rate limits, connection errors, a job failed with
 * a transient reason) ends the pass and the next one comes after an
 * exponential backoff. A permanent one (the schema cannot be merged, BigQuery
 * rejects the load, the row count is wrong) stops this type's loading until
 * the worker restarts: one ERROR log `bigquery loading stopped` naming the type,
 * period and reason, and the `loadingStopped` metric; other types go on.
 */
import type { BigQuery, TableMetadata } from '@google-cloud/bigquery';
import type { Bucket } from '@google-cloud/storage';
import { AppError, isAppError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { resourceNames } from '../lib/names.ts';
import {
  latePrefix,
  lateCounterObjectName,
  lateCounterSchema,
  loadMarkerObjectName,
  parseLoadMarker,
  parseManifest,
  parsePeriodKey,
  periodFromPartitionPath,
  successObjectName,
  type LoadMarker,
  type Manifest,
  type Period,
} from '../lib/partitions.ts';
import type { Partitioning } from '../lib/registry/types.ts';
import { readContainer } from '../lib/avro/container.ts';
import { Backoff, sleep } from './backoff.ts';
import {
  classifyRequestError,
  isRetryableJobError,
  lateJobId,
  loadConfiguration,
  partitionDecorator,
  partitionJobId,
  sha256Hex,
  type BigQueryErrorProto,
  type LoadTarget,
} from './bigquery-jobs.ts';
import { mergeSchemas, RECEIVE_TIME_COLUMN, sameSchema, tableSchemaOf, type BigQueryField } from './bigquery-schema.ts';
import { createIfAbsent, download, listObjects, replaceIfGeneration, statObject } from './storage-io.ts';

const DAY_MS = 24 * 3_600_000;

/** The loader's tunables (etl/config.ts `EtlTuning` holds their defaults). */
export interface LoaderTuning {
  /** How often a pass looks for closed partitions to load. */
  loadCheckIntervalMs: number;
  /** Closed partitions older than this (by period end) are not looked for. */
  loadLookbackMs: number;
  /** First delay between two polls of a running job (doubles up to 8×). */
  loadJobPollMs: number;
  /** A job still running after this ends the pass (retryable); the next pass waits for the same job. */
  loadJobTimeoutMs: number;
  /** Attempts (job ids) per load whose jobs failed with a transient reason, before it counts as permanent. */
  loadJobAttempts: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

/** Counters of one type's loader (exported through `loaderStats()` and logs). */
export interface LoaderMetrics {
  partitionsLoaded: number;
  rowsLoaded: number;
  lateFilesLoaded: number;
  lateRowsLoaded: number;
  /** Jobs inserted (a 409 duplicate that found an existing job does not count). */
  jobsInserted: number;
  /** Jobs found already there (409 duplicate): a retry, a crashed worker's or another worker's. */
  jobsFoundExisting: number;
  /** Passes ended by a retryable failure. */
  retryableFailures: number;
  /** 1 once a permanent failure stopped this type's loading (alert on it). */
  loadingStopped: number;
}

export function newLoaderMetrics(): LoaderMetrics {
  return { partitionsLoaded: 0, rowsLoaded: 0, lateFilesLoaded: 0, lateRowsLoaded: 0, jobsInserted: 0, jobsFoundExisting: 0, retryableFailures: 0, loadingStopped: 0 };
}

export interface BigQueryTarget {
  client: BigQuery;
  /** Dataset of the event tables (Terraform's `bigquery.dataset_id`, `events` by default). */
  dataset: string;
  /** Location of the dataset and jobs; absent: BigQuery's default. */
  location?: string | undefined;
  /**
   * Create the dataset and a missing table (default true). Off in GCP, where the platform
   * module owns the dataset and the event-type module each table (etl/config.ts): the
   * loader then never calls datasets.insert, which a dataset-level grant cannot allow.
   */
  createTables?: boolean;
}

export interface LoaderOptions {
  eventType: string;
  granularity: Partitioning;
  /** Partition expiration of a table the loader creates. */
  retentionDays: number;
  description: string;
  /** The data bucket (closed partitions, late files, markers). */
  data: Bucket;
  target: BigQueryTarget;
  tuning: LoaderTuning;
  /** Several writer versions registered: loads may add and relax columns. */
  multipleVersions: () => boolean;
  now: () => number;
  logger: Logger;
  metrics?: LoaderMetrics;
}

/** Why loading stopped (a permanent failure). */
export interface LoaderStopped {
  code: string;
  message: string;
  period: string;
  since: string;
}

export class BigQueryLoader {
  readonly metrics: LoaderMetrics;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private stoppedBy: LoaderStopped | undefined;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private readonly table: LoadTarget;

  constructor(private readonly opts: LoaderOptions) {
    this.metrics = opts.metrics ?? newLoaderMetrics();
    this.backoff = new Backoff(opts.tuning.backoffInitialMs, opts.tuning.backoffMaxMs);
    this.table = {
      projectId: opts.target.client.projectId,
      datasetId: opts.target.dataset,
      tableId: resourceNames.bigQueryTable(opts.eventType),
    };
  }

  get eventType(): string {
    return this.opts.eventType;
  }

  /** Why this type's loading stopped, if a permanent failure stopped it. */
  get stopped(): LoaderStopped | undefined {
    return this.stoppedBy;
  }

  start(): void {
    this.schedule(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.stoppedBy !== undefined) return;
    this.timer = setTimeout(() => {
      void this.pass().then((ok) => this.schedule(ok ? this.opts.tuning.loadCheckIntervalMs : this.backoff.next()));
    }, delayMs);
    this.timer.unref();
  }

  /**
   * One pass now (the timer runs it; tests call it): loads every closed
   * partition that needs it. Resolves true if nothing failed, false after a
   * retryable failure (the next pass backs off) or once stopped.
   */
  pass(): Promise<boolean> {
    if (this.running !== undefined) return this.running.then(() => this.stoppedBy === undefined);
    let ok = true;
    this.running = (async () => {
      if (this.stoppedBy !== undefined || this.closed) return;
      try {
        for (const period of await this.periodsToLoad()) {
          if (this.closed) return;
          await this.loadPeriod(period);
        }
        this.backoff.reset();
      } catch (err) {
        ok = false;
        if (this.closed) return;
        if (isAppError(err) && !err.retryable) {
          this.stop(err, (err.details?.period as string | undefined) ?? '');
          return;
        }
        this.metrics.retryableFailures++;
        this.opts.logger.warn('bigquery load failed; will retry', { error: err as Error, failures: this.backoff.failures + 1 });
      }
    })().finally(() => {
      this.running = undefined;
    });
    return this.running.then(() => ok && this.stoppedBy === undefined);
  }

  private stop(err: AppError, period: string): void {
    this.stoppedBy = { code: err.code, message: err.message, period, since: new Date(this.opts.now()).toISOString() };
    this.metrics.loadingStopped = 1;
    this.opts.logger.error('bigquery loading stopped', { code: err.code, reason: err.message, period, table: this.tableName() });
  }

  private tableName(decorated?: Period): string {
    const t = `${this.table.projectId}.${this.table.datasetId}.${this.table.tableId}`;
    return decorated === undefined ? t : `${t}$${partitionDecorator(decorated)}`;
  }

  /** Closed periods of the lookback window that lack `_LOADED`, or have late files `_LOADED` does not list. */
  private async periodsToLoad(): Promise<Period[]> {
    const { eventType, data } = this.opts;
    const now = this.opts.now();
    const closed = new Set<string>();
    const loaded = new Set<string>();
    const withLate = new Set<string>();
    for (let t = now - this.opts.tuning.loadLookbackMs; t < now + DAY_MS; t += DAY_MS) {
      const day = new Date(t).toISOString().slice(0, 10);
      for (const o of await listObjects(data, `${eventType}/dt=${day}/`)) {
        const period = periodFromPartitionPath(eventType, o.name);
        if (period === undefined || period.granularity !== this.opts.granularity) continue;
        if (o.name === successObjectName(eventType, period)) closed.add(period.key);
        else if (o.name === loadMarkerObjectName(eventType, period)) loaded.add(period.key);
      }
      for (const o of await listObjects(data, `${eventType}/late/dt=${day}/`)) {
        if (!o.name.endsWith('.avro')) continue;
        const period = periodFromPartitionPath(eventType, o.name.replace(`${eventType}/late/`, `${eventType}/`));
        if (period !== undefined) withLate.add(period.key);
      }
    }
    const keys = [...closed].filter((k) => !loaded.has(k) || withLate.has(k)).sort();
    return keys.map((k) => parsePeriodKey(k));
  }

  /** Loads one closed partition (if `_LOADED` is absent), then its late files not yet loaded. */
  private async loadPeriod(period: Period): Promise<void> {
    const { eventType, data } = this.opts;
    let marker = (await this.readMarker(period))?.marker;
    if (marker === undefined) {
      const manifestBytes = await download(data, successObjectName(eventType, period));
      if (manifestBytes === undefined) return;
      const manifest = withPeriod(period, () => parseManifest(manifestBytes.toString('utf8')));
      marker = await this.loadPartition(period, manifest, sha256Hex(manifestBytes));
    }
    await this.loadLateFiles(period, marker);
  }

  private async readMarker(period: Period): Promise<{ marker: LoadMarker; generation: string } | undefined> {
    const name = loadMarkerObjectName(this.opts.eventType, period);
    const info = await statObject(this.opts.data, name);
    if (info === undefined) return undefined;
    const bytes = await download(this.opts.data, name);
    if (bytes === undefined) return undefined;
    return { marker: withPeriod(period, () => parseLoadMarker(bytes.toString('utf8'))), generation: info.generation };
  }

  private async loadPartition(period: Period, manifest: Manifest, manifestSha256: string): Promise<LoadMarker> {
    const { eventType, data, logger } = this.opts;
    const started = Date.now();
    await this.ensureTable(
      period,
      manifest.schemaFingerprints.filter((fp) => Object.hasOwn(manifest.deliveredSchemas, fp)).map((fp) => manifest.deliveredSchemas[fp]!),
    );
    let jobId = '';
    if (manifest.files.length > 0) {
      const job = await this.runJob(period, (attempt) => partitionJobId(eventType, period, manifestSha256, attempt), {
        sourceUris: manifest.files.map((f) => `gs://${data.name}/${f.name}`),
        writeDisposition: 'WRITE_TRUNCATE',
      });
      jobId = job.jobId;
      if (job.outputRows !== undefined && job.outputRows !== manifest.recordCount) {
        throw rejected(period, `load job ${jobId} wrote ${job.outputRows} rows, the manifest lists ${manifest.recordCount}`);
      }
    }
    const rows = await this.partitionRows(period);
    if (rows !== manifest.recordCount) {
      // Another worker may have finished this load and appended late files since.
      const raced = await this.readMarker(period);
      if (raced !== undefined) return raced.marker;
      throw rejected(period, `partition ${this.tableName(period)} holds ${rows} rows, the manifest lists ${manifest.recordCount}`);
    }
    const marker: LoadMarker = {
      formatVersion: 1,
      eventType,
      period: period.key,
      table: this.tableName(period),
      jobId,
      rows,
      manifestSha256,
      loadedAt: new Date(this.opts.now()).toISOString(),
      late: [],
      lateRows: 0,
    };
    await createIfAbsent(data, loadMarkerObjectName(eventType, period), Buffer.from(JSON.stringify(marker, null, 2)), { contentType: 'application/json' });
    this.metrics.partitionsLoaded++;
    this.metrics.rowsLoaded += rows;
    logger.info('partition loaded into bigquery', { period: period.key, table: marker.table, jobId, rows, ms: Date.now() - started });
    return marker;
  }

  /** Appends the period's late files that `_LOADED` does not list yet, one job each, oldest name first. */
  private async loadLateFiles(period: Period, loaded: LoadMarker): Promise<void> {
    const { eventType, data, logger } = this.opts;
    const done = new Set(loaded.late.map((l) => l.name));
    const files = (await listObjects(data, latePrefix(eventType, period)))
      .filter((o) => o.name.endsWith('.avro') && !done.has(o.name))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    if (files.length === 0) return;
    // With its generation, for the conditional updates below.
    const current = await this.readMarker(period);
    if (current === undefined) throw new AppError('STORAGE_FAILED', { message: `load marker of ${period.key} disappeared` });
    // Their counts, as the late writer recorded them (the `_LATE` counter).
    const counter = await download(data, lateCounterObjectName(eventType, period));
    const parsed = counter === undefined ? undefined : lateCounterSchema.safeParse(safeJson(counter));
    const counted = new Map<string, number>(parsed?.success === true ? parsed.data.files.map((f) => [f.name, f.recordCount]) : []);
    let state = current;
    for (const file of files) {
      const bytes = await download(data, file.name);
      if (bytes === undefined) continue;
      const contents = withPeriod(period, () => readContainer(bytes));
      const recordCount = contents.blocks.reduce((n, b) => n + b.count, 0);
      const expected = counted.get(file.name);
      if (expected !== undefined && expected !== recordCount) {
        throw rejected(period, `late file ${file.name} holds ${recordCount} records, _LATE says ${expected}`);
      }
      const payload = ((contents.schema as { fields?: { name: string; type: unknown }[] }).fields ?? []).find((f) => f.name === 'payload')?.type;
      if (typeof payload !== 'object' || payload === null) throw rejected(period, `late file ${file.name} has no payload record`);
      await this.ensureTable(period, [payload as Record<string, unknown>]);
      const job = await this.runJob(period, (attempt) => lateJobId(eventType, period, file.name, file.crc32c, attempt), {
        sourceUris: [`gs://${data.name}/${file.name}`],
        writeDisposition: 'WRITE_APPEND',
      });
      if (job.outputRows !== undefined && job.outputRows !== recordCount) {
        throw rejected(period, `late load job ${job.jobId} wrote ${job.outputRows} rows, ${file.name} holds ${recordCount}`);
      }
      state = await this.recordLate(period, state, { name: file.name, jobId: job.jobId, rows: recordCount, loadedAt: new Date(this.opts.now()).toISOString() });
      this.metrics.lateFilesLoaded++;
      this.metrics.lateRowsLoaded += recordCount;
      logger.info('late events loaded into bigquery', { period: period.key, file: file.name, jobId: job.jobId, rows: recordCount });
    }
  }

  /** Adds a loaded late file to `_LOADED` (generation precondition; re-read and retry on a concurrent change). */
  private async recordLate(
    period: Period,
    current: { marker: LoadMarker; generation: string },
    entry: LoadMarker['late'][number],
  ): Promise<{ marker: LoadMarker; generation: string }> {
    let state = current;
    for (let attempt = 0; attempt < 8; attempt++) {
      if (state.marker.late.some((l) => l.name === entry.name)) return state;
      const marker: LoadMarker = { ...state.marker, late: [...state.marker.late, entry], lateRows: state.marker.lateRows + entry.rows };
      const name = loadMarkerObjectName(this.opts.eventType, period);
      const r = await replaceIfGeneration(this.opts.data, name, Buffer.from(JSON.stringify(marker, null, 2)), state.generation, 'application/json');
      const next = await this.readMarker(period);
      if (next === undefined) throw new AppError('STORAGE_FAILED', { message: `load marker of ${period.key} disappeared` });
      if (r === 'replaced') return next;
      state = next;
    }
    throw new AppError('STORAGE_FAILED', { message: `load marker of ${period.key} kept changing` });
  }

  /** Creates the dataset and table if absent; patches the table if these delivered schemas add or relax columns. */
  private async ensureTable(period: Period, deliveredSchemas: Record<string, unknown>[]): Promise<void> {
    // Created by another worker meanwhile: read it and patch it like any existing table.
    if ((await this.ensureTableOnce(period, deliveredSchemas)) === 'raced') await this.ensureTableOnce(period, deliveredSchemas);
  }

  private async ensureTableOnce(period: Period, deliveredSchemas: Record<string, unknown>[]): Promise<'ok' | 'raced'> {
    const { client, dataset: datasetId, location } = this.opts.target;
    const dataset = client.dataset(datasetId, location === undefined ? {} : { location });
    const table = dataset.table(this.table.tableId);
    let current: BigQueryField[] | undefined;
    try {
      const [meta] = (await table.getMetadata()) as unknown as [TableMetadata];
      current = (meta.schema?.fields ?? []) as BigQueryField[];
    } catch (err) {
      if (classifyRequestError(err) !== 'notFound') throw requestFailure(period, 'tables.get', err);
    }
    let fields = current ?? [];
    let added: string[] = [];
    let relaxed: string[] = [];
    for (const schema of deliveredSchemas) {
      const versionFields = withPeriod(period, () => tableSchemaOf(schema));
      if (current === undefined && fields.length === 0) {
        fields = versionFields;
        continue;
      }
      const merge = withPeriod(period, () => mergeSchemas(fields, versionFields));
      fields = merge.fields;
      added = [...added, ...merge.added];
      relaxed = [...relaxed, ...merge.relaxed];
    }
    if (current === undefined) {
      if (this.opts.target.createTables === false) {
        throw new AppError('BIGQUERY_UNAVAILABLE', {
          message: `table ${this.tableName()} does not exist: Terraform's event-type module creates it for a type stored in BigQuery; loading waits for it`,
          details: { period: period.key },
        });
      }
      return this.createTable(period, dataset, fields);
    }
    if (sameSchema(current, fields)) return 'ok';
    try {
      await table.setMetadata({ schema: { fields } });
    } catch (err) {
      throw requestFailure(period, 'tables.patch', err);
    }
    this.opts.logger.info('bigquery table schema updated', { table: this.tableName(), added, relaxed });
    return 'ok';
  }

  private async createTable(period: Period, dataset: ReturnType<BigQuery['dataset']>, fields: BigQueryField[]): Promise<'ok' | 'raced'> {
    const { location } = this.opts.target;
    try {
      await dataset.create(location === undefined ? {} : { location });
      this.opts.logger.info('bigquery dataset created', { dataset: this.table.datasetId });
    } catch (err) {
      const kind = classifyRequestError(err);
      if (kind !== 'duplicate') throw requestFailure(period, 'datasets.insert', err);
    }
    try {
      await dataset.createTable(this.table.tableId, {
        description: this.opts.description,
        schema: { fields },
        timePartitioning: {
          type: this.opts.granularity === 'hourly' ? 'HOUR' : 'DAY',
          field: RECEIVE_TIME_COLUMN,
          expirationMs: String(this.opts.retentionDays * DAY_MS),
        },
        requirePartitionFilter: true,
      });
      this.opts.logger.info('bigquery table created', { table: this.tableName(), partitioning: this.opts.granularity });
      return 'ok';
    } catch (err) {
      if (classifyRequestError(err) === 'duplicate') return 'raced';
      throw requestFailure(period, 'tables.insert', err);
    }
  }

  /** Rows in the table's partition of `period` (0 if it has none). */
  private async partitionRows(period: Period): Promise<number> {
    const { client, dataset, location } = this.opts.target;
    try {
      const [meta] = (await client
        .dataset(dataset, location === undefined ? {} : { location })
        .table(`${this.table.tableId}$${partitionDecorator(period)}`)
        .getMetadata()) as unknown as [TableMetadata];
      return Number(meta.numRows ?? 0);
    } catch (err) {
      if (classifyRequestError(err) === 'notFound') return 0;
      throw requestFailure(period, 'tables.get (partition)', err);
    }
  }

  /**
   * Runs the load under deterministic ids: inserts attempt 0; a 409 means the
   * job exists (ours, from a retry, a crash or another worker): wait for it.
   * A job that failed with a transient reason wrote nothing: the next attempt
   * id runs it again. Returns the id of the job that succeeded.
   */
  private async runJob(
    period: Period,
    idOf: (attempt: number) => string,
    load: { sourceUris: string[]; writeDisposition: 'WRITE_TRUNCATE' | 'WRITE_APPEND' },
  ): Promise<{ jobId: string; outputRows: number | undefined }> {
    const { client, location } = this.opts.target;
    const configuration = { load: loadConfiguration({ target: this.table, period, allowSchemaUpdates: this.opts.multipleVersions(), ...load }) };
    let lastError: BigQueryErrorProto | undefined;
    for (let attempt = 0; attempt < this.opts.tuning.loadJobAttempts; attempt++) {
      const jobId = idOf(attempt);
      try {
        await client.createJob({ jobId, ...(location === undefined ? {} : { location }), configuration });
        this.metrics.jobsInserted++;
      } catch (err) {
        const kind = classifyRequestError(err);
        if (kind === 'duplicate') this.metrics.jobsFoundExisting++;
        // Anything else: the insert may still have happened (lost response, or a job that failed at once); jobs.get says.
        else if (!(await this.jobExists(period, jobId))) {
          throw kind === 'permanent' ? rejected(period, `jobs.insert ${jobId} refused: ${messageOf(err)}`, err) : requestFailure(period, 'jobs.insert', err);
        }
      }
      const done = await this.waitForJob(period, jobId);
      if (done.errorResult === undefined) return { jobId, outputRows: done.outputRows };
      lastError = done.errorResult;
      if (!isRetryableJobError(done.errorResult)) {
        throw rejected(period, `load job ${jobId} failed: ${done.errorResult.reason ?? 'error'}: ${done.errorResult.message ?? ''}`);
      }
      this.opts.logger.warn('bigquery load job failed; next attempt', { period: period.key, jobId, reason: done.errorResult.reason });
    }
    throw rejected(period, `load of ${period.key} failed ${this.opts.tuning.loadJobAttempts} times, last: ${lastError?.reason ?? ''}: ${lastError?.message ?? ''}`);
  }

  private async jobExists(period: Period, jobId: string): Promise<boolean> {
    try {
      await this.job(jobId).getMetadata();
      return true;
    } catch (err) {
      if (classifyRequestError(err) === 'notFound') return false;
      throw requestFailure(period, 'jobs.get', err);
    }
  }

  private job(jobId: string) {
    const { client, location } = this.opts.target;
    return client.job(jobId, location === undefined ? {} : { location });
  }

  /** Polls `jobs.get` until DONE (bounded by `loadJobTimeoutMs`). */
  private async waitForJob(period: Period, jobId: string): Promise<{ errorResult: BigQueryErrorProto | undefined; outputRows: number | undefined }> {
    const { loadJobPollMs, loadJobTimeoutMs } = this.opts.tuning;
    const end = Date.now() + loadJobTimeoutMs;
    let delay = loadJobPollMs;
    for (;;) {
      let meta: { status?: { state?: string; errorResult?: BigQueryErrorProto }; statistics?: { load?: { outputRows?: string | number } } };
      try {
        [meta] = (await this.job(jobId).getMetadata()) as unknown as [typeof meta];
      } catch (err) {
        throw requestFailure(period, 'jobs.get', err);
      }
      if (meta.status?.state === 'DONE') {
        const rows = meta.statistics?.load?.outputRows;
        return { errorResult: meta.status.errorResult ?? undefined, outputRows: rows === undefined ? undefined : Number(rows) };
      }
      if (Date.now() >= end) throw new AppError('BIGQUERY_UNAVAILABLE', { message: `load job ${jobId} still ${meta.status?.state ?? 'unknown'} after ${loadJobTimeoutMs} ms` });
      if (!(await sleep(delay, this.abort.signal))) throw new AppError('BIGQUERY_UNAVAILABLE', { message: 'loader closing' });
      delay = Math.min(delay * 2, loadJobPollMs * 8);
    }
  }
}

function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A permanent failure of `period`'s load. */
function rejected(period: Period, message: string, cause?: unknown): AppError {
  return new AppError('BIGQUERY_LOAD_REJECTED', { message, details: { period: period.key }, cause });
}

/** A failed BigQuery API call: retryable unless BigQuery said the request itself is wrong. */
function requestFailure(period: Period, call: string, err: unknown): AppError {
  const kind = classifyRequestError(err);
  const code = (err as { code?: unknown } | undefined)?.code;
  if (kind === 'permanent') return rejected(period, `${call} refused (${String(code)}): ${messageOf(err)}`, err);
  return new AppError('BIGQUERY_UNAVAILABLE', { message: `${call} failed (${typeof code === 'number' ? code : 'network'})`, details: { period: period.key }, cause: err });
}

/** Runs `f`, tagging a non-retryable AppError it throws with the period (so the stop log names it). */
function withPeriod<T>(period: Period, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (isAppError(err) && !err.retryable && err.details?.period === undefined) {
      throw new AppError(err.code === 'SCHEMA_INCOMPATIBLE' || err.code === 'SCHEMA_INVALID' ? err.code : 'BIGQUERY_LOAD_REJECTED', {
        message: err.message,
        details: { ...err.details, period: period.key },
        cause: err,
      });
    }
    throw err;
  }
}
