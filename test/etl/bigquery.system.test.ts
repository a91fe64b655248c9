/**
 * BigQuery delivery through the real chain: events published per the message
 * contract (lib/events/contract.ts) → ETL workers (stage, close in GCS) →
 * the loader → the project's BigQuery emulator, read back with the official
 * client's `tabledata.list` (`table.getRows`). For a `bigquery` and a `both`
 * type, every accepted event is in its partition exactly once; the same
 * after 503s from BigQuery, after a SIGKILLed worker process mid-job, for a
 * second schema version (field addition), for late events and for two
 * workers racing on a daily partition. Personal fields land as BYTES that
 * Tink decrypts with the subject's keyset. A type whose table cannot take its
 * rows stops loading (ERROR log, metric) while another type keeps loading.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BigQuery } from '@google-cloud/bigquery';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBigQueryEmulator, type BigQueryEmulator } from '../../emulators/bigquery/index.ts';
import { createBigQuery, createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { createLogger, silentLogger } from '../../lib/logger.ts';
import { loadMarkerObjectName, parseLoadMarker, periodOf, successObjectName, type LoadMarker, type Period } from '../../lib/partitions.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import type { AvroSchemaJson, EventTypeRecord, StorageTarget } from '../../lib/registry/types.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, pageViewSchemaV2, provisionType, publishEvents, waitUntil, writeAudit, type TestEvent } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { partitionJobId, sha256Hex } from '../../etl/bigquery-jobs.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { associatedData, tinkKeyset } from '../../lib/crypto/aead.ts';
import { FakeKeySource } from '../../lib/privacy/test-keys.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const fastTuning = {
  flushAgeMs: 300,
  closeCheckIntervalMs: 300,
  closeGraceMs: 500,
  // Past hours of these tests must close by completeness, not by their (long passed) deadline.
  closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
  registryPollMs: 500,
  backoffInitialMs: 50,
  backoffMaxMs: 1000,
  schemaRefreshMinMs: 100,
  loadCheckIntervalMs: 300,
  loadJobPollMs: 50,
};

interface Row {
  eventId: string;
  receiveTime: { value: string };
  payload: { userId: string; url: string; durationMs: number; referrer?: string | null };
}

function record(name: string, storage: StorageTarget[], schemas: AvroSchemaJson[] = [pageViewSchema]): EventTypeRecord {
  const r = eventTypeRecord(name, schemas);
  return { ...r, settings: { ...r.settings, storage } };
}

const typeName = (suite: string, t: string): string => uniqueName(suite, t).replace(/-/g, '_');

/** Every row of the table, through `tabledata.list` (the official client's getRows, paged). */
async function tableRows(bq: BigQuery, dataset: string, table: string): Promise<Row[]> {
  const [rows] = await bq.dataset(dataset).table(table).getRows({ autoPaginate: true });
  return rows as Row[];
}

/** Event id → times it is in the table; plus any row whose fields differ from what was accepted. */
function compare(rows: Row[], accepted: readonly TestEvent[]): { missing: number; duplicated: number; unexpected: number; mismatched: string[] } {
  const want = new Map(accepted.map((e) => [e.eventId, e]));
  const seen = new Map<string, number>();
  const mismatched: string[] = [];
  for (const r of rows) {
    seen.set(r.eventId, (seen.get(r.eventId) ?? 0) + 1);
    const e = want.get(r.eventId);
    if (e === undefined) continue;
    const p = e.payload as Row['payload'];
    if (
      r.payload.userId !== p.userId ||
      r.payload.url !== p.url ||
      Number(r.payload.durationMs) !== p.durationMs ||
      Date.parse(r.receiveTime.value) !== e.receiveTime ||
      (r.payload.referrer ?? null) !== (p.referrer ?? null)
    ) {
      mismatched.push(r.eventId);
    }
  }
  return {
    missing: accepted.filter((e) => !seen.has(e.eventId)).length,
    duplicated: [...seen.values()].filter((n) => n > 1).length,
    unexpected: [...seen.keys()].filter((id) => !want.has(id)).length,
    mismatched,
  };
}

async function readMarker(storage: ReturnType<typeof createStorage>, bucket: string, type: string, period: Period): Promise<LoadMarker | undefined> {
  const file = storage.bucket(bucket).file(loadMarkerObjectName(type, period));
  if (!(await file.exists())[0]) return undefined;
  return parseLoadMarker((await file.download())[0].toString('utf8'));
}

describe('BigQuery delivery', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator;
  let bqEmulator: BigQueryEmulator;
  let storage: ReturnType<typeof createStorage>;
  let bq: BigQuery;
  const staging = uniqueName('bqload', 'staging');
  const data = uniqueName('bqload', 'data');
  const workers: EtlWorkers[] = [];
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    // Jobs spend a moment in PENDING/RUNNING, as BigQuery's do: the loader must poll, and a kill can land mid-job.
    bqEmulator = await startBigQueryEmulator({ gcsEndpoint: gcs.url, jobStepMs: 200 });
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    bq = createBigQuery({ projectId, apiEndpoint: bqEmulator.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const w of workers) await w.close();
    await pubsub.close();
    await bqEmulator?.close();
    await gcs?.close();
  });

  const start = async (registry: MemoryRegistryStore, dataset: string, logger = silentLogger, loadEnabled = true): Promise<EtlWorkers> => {
    const w = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      tuning: fastTuning,
      logger,
      bigQuery: { client: bq, dataset, loadEnabled },
    });
    workers.push(w);
    return w;
  };

  const loaded = (type: string, periods: Period[], timeoutMs = 90_000): Promise<boolean> =>
    waitUntil(async () => {
      for (const p of periods) if ((await readMarker(storage, data, type, p)) === undefined) return false;
      return true;
    }, timeoutMs, 300);

  it('loads a bigquery and a both type: rows equal what was accepted, exactly once, per hourly partition', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const onlyBq = typeName('bqload', 'bq');
    const both = typeName('bqload', 'both');
    await registry.putEventType(record(onlyBq, ['bigquery']), 0);
    await registry.putEventType(record(both, ['bigquery', 'gcs']), 0);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const periods = [periodOf(base, 'hourly'), periodOf(base + HOUR, 'hourly')];
    const accepted = new Map<string, TestEvent[]>();
    for (const type of [onlyBq, both]) {
      const { topic } = await provisionType(pubsub, type);
      const events = makeEvents(600, (i) => base + (i % 2) * HOUR + i * 1000, `${type}-e`);
      accepted.set(type, events);
      await publishEvents(topic, type, pageViewSchema, events);
      // Producer retries / redeliveries of the same events.
      await publishEvents(topic, type, pageViewSchema, events.slice(0, 40));
      await writeAudit(storage, staging, type, events);
    }
    const w = await start(registry, dataset);
    expect(w.eventTypes()).toEqual([onlyBq, both].sort());
    for (const type of [onlyBq, both]) expect(await loaded(type, periods)).toBe(true);

    for (const type of [onlyBq, both]) {
      const events = accepted.get(type)!;
      // A bigquery-only type closes in GCS too: the manifest is the proof the load was checked against.
      for (const p of periods) {
        expect((await storage.bucket(data).file(successObjectName(type, p)).exists())[0]).toBe(true);
        const marker = (await readMarker(storage, data, type, p))!;
        const inPeriod = events.filter((e) => periodOf(e.receiveTime, 'hourly').key === p.key).length;
        expect(marker).toMatchObject({ eventType: type, period: p.key, rows: inPeriod, table: `${projectId}.${dataset}.${type}$${p.key.replace(/[-T]/g, '')}`, late: [] });
        expect(marker.jobId).toMatch(new RegExp(`^edp_load_${type}_${p.key.replace(/[-T]/g, '')}_[0-9a-f]{32}_0$`));
        // The partition decorator holds that hour's rows only.
        const [partRows] = await bq.dataset(dataset).table(`${type}$${p.key.replace(/[-T]/g, '')}`).getRows({ autoPaginate: true });
        expect(partRows).toHaveLength(inPeriod);
      }
      expect(compare(await tableRows(bq, dataset, type), events)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
      const [meta] = await bq.dataset(dataset).table(type).getMetadata();
      expect(meta.timePartitioning).toMatchObject({ type: 'HOUR', field: 'receiveTime' });
      expect(w.loaderStats()[type]).toMatchObject({ partitionsLoaded: 2, rowsLoaded: 600, loadingStopped: 0 });
    }

    // Another pass (and another worker's) changes nothing: the markers are there, the job ids are the same.
    const before = await tableRows(bq, dataset, onlyBq);
    expect(await w.loader(onlyBq)!.pass()).toBe(true);
    expect(await tableRows(bq, dataset, onlyBq)).toHaveLength(before.length);

    // Late events for a loaded hour are appended with their own job, counted in the marker, exactly once.
    const late = makeEvents(5, (i) => base + 10 + i, `${onlyBq}-late`);
    const topic = pubsub.topic(`events-${onlyBq}`);
    await publishEvents(topic, onlyBq, pageViewSchema, [...late, accepted.get(onlyBq)![0]!]);
    expect(await waitUntil(async () => (await readMarker(storage, data, onlyBq, periods[0]!))?.lateRows === 5, 60_000, 300)).toBe(true);
    const marker = (await readMarker(storage, data, onlyBq, periods[0]!))!;
    expect(marker.late).toHaveLength(1);
    expect(marker.late[0]!.jobId).toMatch(/^edp_late_/);
    expect(compare(await tableRows(bq, dataset, onlyBq), [...accepted.get(onlyBq)!, ...late])).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
    expect(w.loaderStats()[onlyBq]).toMatchObject({ lateFilesLoaded: 1, lateRowsLoaded: 5 });
  }, 180_000);

  it('loads a daily type into its $YYYYMMDD partition once, with two workers racing on it', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const type = typeName('bqload', 'daily');
    const r = record(type, ['bigquery']);
    await registry.putEventType({ ...r, settings: { ...r.settings, partitioning: 'daily' } }, 0);
    const { topic } = await provisionType(pubsub, type);
    const day = Math.floor(Date.now() / (24 * HOUR)) * 24 * HOUR - 2 * 24 * HOUR;
    const events = makeEvents(480, (i) => day + (i % 24) * HOUR + i, 'd');
    await publishEvents(topic, type, pageViewSchema, events);
    await writeAudit(storage, staging, type, events);
    // Two worker hosts of the type; their loaders only run when the test says so, at the same time.
    const w1 = await start(registry, dataset, silentLogger, false);
    const w2 = await start(registry, dataset, silentLogger, false);
    const period = periodOf(day, 'daily');
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000)).toBe(true);
    const [a, b] = await Promise.all([w1.loader(type)!.pass(), w2.loader(type)!.pass()]);
    expect([a, b]).toEqual([true, true]);
    const marker = (await readMarker(storage, data, type, period))!;
    expect(marker).toMatchObject({ rows: 480, table: `${projectId}.${dataset}.${type}$${period.key.replace(/-/g, '')}` });
    const [meta] = await bq.dataset(dataset).table(type).getMetadata();
    expect(meta.timePartitioning).toMatchObject({ type: 'DAY', field: 'receiveTime' });
    expect(compare(await tableRows(bq, dataset, type), events)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
    // One job inserted between them; the other worker inserted the same id (409) or found the marker.
    const s1 = w1.loaderStats()[type]!;
    const s2 = w2.loaderStats()[type]!;
    expect(s1.jobsInserted + s2.jobsInserted).toBe(1);
  }, 180_000);

  it('loads a sharded hour (3 shards closed by two workers): the manifest lists every shard\'s parts, one job loads them, every row once', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const type = typeName('bqload', 'sharded');
    const r = record(type, ['bigquery']);
    await registry.putEventType({ ...r, settings: { ...r.settings, shardsPerPeriod: 3 } }, 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const period = periodOf(base, 'hourly');
    const events = makeEvents(900, (i) => base + i * 1000, 'sh');
    await publishEvents(topic, type, pageViewSchema, events);
    await publishEvents(topic, type, pageViewSchema, events.slice(0, 40));
    await writeAudit(storage, staging, type, events);
    const w1 = await start(registry, dataset);
    await start(registry, dataset);
    expect(await loaded(type, [period])).toBe(true);
    const manifest = JSON.parse((await storage.bucket(data).file(successObjectName(type, period)).download())[0].toString('utf8')) as { shards?: number; files: { name: string }[]; recordCount: number };
    expect(manifest).toMatchObject({ shards: 3, recordCount: 900 });
    expect(new Set(manifest.files.map((f) => /part-(\d{3})-\d{5}\.avro$/.exec(f.name)?.[1]))).toEqual(new Set(['000', '001', '002']));
    expect(await readMarker(storage, data, type, period)).toMatchObject({ rows: 900 });
    expect(compare(await tableRows(bq, dataset, type), events)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
    expect(w1.loaderStats()[type]!.loadingStopped).toBe(0);
  }, 180_000);

  it('loads a second schema version with field addition: new column, old rows null, every row once', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const type = typeName('bqload', 'v2');
    await registry.putEventType(record(type, ['bigquery']), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR;
    const v1 = makeEvents(200, (i) => base + i * 1000, 'v1');
    await publishEvents(topic, type, pageViewSchema, v1, 'es-1');
    await writeAudit(storage, staging, type, v1, 'es-1');
    const w = await start(registry, dataset);
    const h0 = periodOf(base, 'hourly');
    expect(await loaded(type, [h0])).toBe(true);
    const [before] = await bq.dataset(dataset).table(type).getMetadata();
    const payloadColumns = (m: typeof before): string[] =>
      ((m.schema.fields as { name: string; fields?: { name: string }[] }[]).find((f) => f.name === 'payload')!.fields ?? []).map((f) => f.name);
    expect(payloadColumns(before)).toEqual(['userId', 'url', 'durationMs']);

    // Version 2 adds `referrer`; the next hour holds both versions.
    await registry.putEventType(record(type, ['bigquery'], [pageViewSchema, pageViewSchemaV2]), 1);
    await w.refresh();
    const h1 = periodOf(base + HOUR, 'hourly');
    const mixedV1 = makeEvents(100, (i) => base + HOUR + i * 1000, 'm1');
    const mixedV2 = makeEvents(100, (i) => base + HOUR + 500 + i * 1000, 'm2').map((e) => ({ ...e, payload: { ...e.payload, referrer: `r-${e.eventId}` } }));
    await publishEvents(topic, type, pageViewSchema, mixedV1, 'es-2');
    await publishEvents(topic, type, pageViewSchemaV2, mixedV2, 'es-2');
    await writeAudit(storage, staging, type, [...mixedV1, ...mixedV2], 'es-2');
    expect(await loaded(type, [h1])).toBe(true);

    const [after] = await bq.dataset(dataset).table(type).getMetadata();
    expect(payloadColumns(after)).toEqual(['userId', 'url', 'durationMs', 'referrer']);
    const referrer = (after.schema.fields as { name: string; fields: { name: string; mode?: string; type: string }[] }[])
      .find((f) => f.name === 'payload')!
      .fields.find((f) => f.name === 'referrer')!;
    expect(referrer).toMatchObject({ type: 'STRING', mode: 'NULLABLE' });
    const rows = await tableRows(bq, dataset, type);
    expect(compare(rows, [...v1, ...mixedV1, ...mixedV2])).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
    expect(rows.filter((r) => r.eventId.startsWith('v1-')).every((r) => r.payload.referrer === null)).toBe(true);

    // A late event of version 2 for the hour loaded with version 1 only: appended into its partition.
    const late = makeEvents(2, (i) => base + 7 + i, 'late2').map((e) => ({ ...e, payload: { ...e.payload, referrer: 'late' } }));
    await publishEvents(topic, type, pageViewSchemaV2, late);
    expect(await waitUntil(async () => (await readMarker(storage, data, type, h0))?.lateRows === 2, 60_000, 300)).toBe(true);
    const [h0Rows] = await bq.dataset(dataset).table(`${type}$${h0.key.replace(/[-T]/g, '')}`).getRows({ autoPaginate: true });
    expect(compare(h0Rows as Row[], [...v1, ...late])).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
  }, 180_000);

  it('loads exactly once through injected 503s from BigQuery', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const type = typeName('bqload', 'f503');
    await registry.putEventType(record(type, ['bigquery', 'gcs']), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR;
    const events = makeEvents(900, (i) => base + (i % 3) * HOUR + i * 1000, 'f');
    await publishEvents(topic, type, pageViewSchema, events);
    await writeAudit(storage, staging, type, events);
    // A quarter of every BigQuery request (dataset/table calls, jobs.insert, jobs.get) fails with 503, and the
    // first 8 jobs.insert calls do: more than the client's own retries absorb, so the loader backs off too.
    const rules = [
      bqEmulator.faults.add({ methods: ['POST'], path: '/jobs', times: 8, status: 503 }),
      bqEmulator.faults.add({ probability: 0.25, status: 503 }),
    ];
    const w = await start(registry, dataset);
    const periods = [0, 1, 2].map((k) => periodOf(base + k * HOUR, 'hourly'));
    const ok = await loaded(type, periods, 120_000);
    const fired = bqEmulator.faults
      .list()
      .filter((r) => rules.includes(r.id))
      .reduce((n, r) => n + r.fired, 0);
    for (const r of rules) bqEmulator.faults.remove(r);
    expect(ok).toBe(true);
    expect(fired).toBeGreaterThan(0);
    expect(compare(await tableRows(bq, dataset, type), events)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
    const stats = w.loaderStats()[type]!;
    expect(stats).toMatchObject({ partitionsLoaded: 3, loadingStopped: 0 });
    expect(stats.retryableFailures).toBeGreaterThan(0);
  }, 180_000);

  it('runs a load job that failed for a transient reason again under its next attempt id, and the lost answer of a jobs.insert is a 409', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const type = typeName('bqload', 'attempt');
    await registry.putEventType(record(type, ['bigquery']), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 9 * HOUR;
    const events = makeEvents(300, (i) => base + i * 1000, 'at');
    await publishEvents(topic, type, pageViewSchema, events);
    await writeAudit(storage, staging, type, events);
    const period = periodOf(base, 'hourly');
    const w = await start(registry, dataset, silentLogger, false);
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000)).toBe(true);
    // The emulator's job reads the part file from GCS (5 tries): failing them all fails the job with backendError.
    const partRead = gcs.faults.add({ methods: ['GET'], path: `${type}.*part-00000\\.avro\\?alt=media`, times: 5, status: 503 });
    // And the first jobs.insert's answer is lost after BigQuery made the job: the client's retry gets 409.
    const lostAnswer = bqEmulator.faults.add({ methods: ['POST'], path: '/jobs(\\?|$)', times: 1, cut: 'response' });
    const loader = w.loader(type)!;
    for (let pass = 0; pass < 10 && (await readMarker(storage, data, type, period)) === undefined; pass++) await loader.pass();
    gcs.faults.remove(partRead);
    bqEmulator.faults.remove(lostAnswer);
    const marker = (await readMarker(storage, data, type, period))!;
    expect(marker).toBeDefined();
    const manifestSha = sha256Hex((await storage.bucket(data).file(successObjectName(type, period)).download())[0]);
    expect(marker.jobId).toBe(partitionJobId(type, period, manifestSha, 1));
    const [first] = await bq.job(partitionJobId(type, period, manifestSha, 0)).getMetadata();
    expect((first as { status: { state: string; errorResult?: { reason: string } } }).status).toMatchObject({ state: 'DONE', errorResult: { reason: 'backendError' } });
    expect(loader.metrics.jobsFoundExisting).toBeGreaterThanOrEqual(1);
    expect(compare(await tableRows(bq, dataset, type), events)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
  }, 120_000);

  it('loads exactly once when the ETL process is SIGKILLed while its load job runs', async () => {
    const dataset = typeName('bqload', 'ds');
    const type = typeName('bqload', 'kill');
    const dir = mkdtempSync(path.join(tmpdir(), 'etl-bq-kill-'));
    const registryDir = path.join(dir, 'registry');
    await new FileRegistryStore(registryDir).putEventType(record(type, ['bigquery']), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 6 * HOUR;
    const events = makeEvents(2000, (i) => base + (i % 2) * HOUR + i * 1000, 'k');
    await publishEvents(topic, type, pageViewSchema, events);
    await writeAudit(storage, staging, type, events);
    // Slow jobs (2 s in PENDING/RUNNING), so the kill lands while the job runs.
    const slowBq = await startBigQueryEmulator({ gcsEndpoint: gcs.url, jobStepMs: 2000 });
    try {
      const env = {
        ...process.env,
        METADATA_SERVER_DETECTION: 'none',
        GCP_PROJECT: projectId,
        PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
        GCS_ENDPOINT: gcs.url,
        BIGQUERY_ENDPOINT: slowBq.url,
        BIGQUERY_DATASET: dataset,
        STAGING_BUCKET: staging,
        DATA_BUCKET: data,
        EVENT_TYPES: type,
        REGISTRY_STORE: 'file',
        REGISTRY_DIR: registryDir,
        LOG_LEVEL: 'ERROR',
        ETL_FLUSH_AGE_MS: '300',
        ETL_CLOSE_CHECK_MS: '300',
        ETL_CLOSE_GRACE_MS: '500',
        ETL_DEADLINE_NORMAL_MS: String(5 * 24 * HOUR),
        ETL_LOAD_CHECK_MS: '300',
        ETL_LOAD_JOB_POLL_MS: '100',
      };
      const spawnWorker = (n: number): ChildProcess => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'etl/main.ts'], { env: { ...env, INSTANCE_ID: `bq-kill-${n}` }, stdio: ['ignore', 'ignore', 'inherit'] });
        children.add(child);
        child.on('exit', () => children.delete(child));
        return child;
      };
      const slowClient = createBigQuery({ projectId, apiEndpoint: slowBq.url });
      const periods = [periodOf(base, 'hourly'), periodOf(base + HOUR, 'hourly')];
      // The job ids are deterministic: attempt 0 of each closed hour's load, from its manifest.
      const jobIdOf = async (p: Period, attempt: number): Promise<string | undefined> => {
        const file = storage.bucket(data).file(successObjectName(type, p));
        if (!(await file.exists())[0]) return undefined;
        return partitionJobId(type, p, sha256Hex((await file.download())[0]), attempt);
      };
      const jobState = async (jobId: string): Promise<string | undefined> => {
        try {
          const [meta] = await slowClient.job(jobId).getMetadata();
          return (meta as { status?: { state?: string } }).status?.state;
        } catch (err) {
          if ((err as { code?: unknown }).code === 404) return undefined;
          throw err;
        }
      };
      const runningLoad = async (): Promise<string | undefined> => {
        for (const p of periods) {
          const id = await jobIdOf(p, 0);
          if (id === undefined) continue;
          const state = await jobState(id);
          if (state === 'PENDING' || state === 'RUNNING') return id;
        }
        return undefined;
      };
      let killed = 0;
      for (let round = 0; round < 2; round++) {
        const child = spawnWorker(round);
        // Wait for a load job of ours to be in flight, then kill the worker without warning.
        expect(await waitUntil(async () => (await runningLoad()) !== undefined, 90_000, 100)).toBe(true);
        child.kill('SIGKILL');
        await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
        killed++;
        // The orphaned job runs on in BigQuery; the next worker starts after it finished, so what it
        // finds is a done job without a marker (and, for the other hour, a load of its own to kill).
        expect(await waitUntil(async () => (await runningLoad()) === undefined, 60_000, 100)).toBe(true);
      }
      expect(killed).toBe(2);
      spawnWorker(2);
      const ok = await waitUntil(async () => {
        for (const p of periods) if ((await readMarker(storage, data, type, p)) === undefined) return false;
        return true;
      }, 120_000, 300);
      expect(ok).toBe(true);
      expect(compare(await tableRows(slowClient, dataset, type), events)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
      // The successors found the killed workers' jobs (409) and waited for them instead of loading again:
      // each partition's marker names attempt 0, and no attempt 1 exists.
      for (const p of periods) {
        expect((await readMarker(storage, data, type, p))!.jobId).toBe(await jobIdOf(p, 0));
        expect(await jobState((await jobIdOf(p, 0))!)).toBe('DONE');
        expect(await jobState((await jobIdOf(p, 1))!)).toBeUndefined();
      }
    } finally {
      for (const c of children) c.kill('SIGKILL');
      await slowBq.close();
    }
  }, 300_000);

  it('stores personal fields as BYTES that Tink decrypts with the keyset of the subject\'s key', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const type = typeName('bqload', 'pii');
    const signUp: AvroSchemaJson = {
      type: 'record',
      name: 'SignUp',
      fields: [
        { name: 'userId', type: 'string', semanticType: 'userId' },
        { name: 'email', type: 'string', semanticType: 'email', doc: 'Contact address' },
      ],
    };
    await registry.putEventType(record(type, ['bigquery'], [signUp]), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 8 * HOUR;
    const events = Array.from({ length: 20 }, (_, i) => ({ eventId: `pii-${i}`, receiveTime: base + i * 1000, payload: { userId: `user-${i}`, email: `user-${i}@mail.example` } }));
    await publishEvents(topic, type, signUp, events);
    await writeAudit(storage, staging, type, events);
    const keys = new FakeKeySource();
    const w = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      tuning: fastTuning,
      logger: silentLogger,
      transform: createEncryptionTransform({ keys }),
      bigQuery: { client: bq, dataset },
    });
    workers.push(w);
    expect(await loaded(type, [periodOf(base, 'hourly')])).toBe(true);

    const [meta] = await bq.dataset(dataset).table(type).getMetadata();
    const email = (meta.schema.fields as { name: string; fields?: { name: string; type: string; description?: string }[] }[])
      .find((f) => f.name === 'payload')!
      .fields!.find((f) => f.name === 'email')!;
    expect(email).toMatchObject({ type: 'BYTES' });
    expect(email.description).toMatch(/^Contact address \[personal: email, category contact/);

    (globalThis as { self?: unknown }).self ??= globalThis;
    const tink = (await import('tink-crypto')) as unknown as {
      aead: { register(): void; Aead: unknown };
      binaryInsecure: { deserializeKeyset(b: Uint8Array): { getPrimitive(t: unknown): Promise<{ decrypt(ct: Uint8Array, ad: Uint8Array): Promise<Uint8Array> }> } };
    };
    tink.aead.register();
    const rows = (await tableRows(bq, dataset, type)) as unknown as { eventId: string; payload: { userId: string; email: string } }[];
    expect(rows.map((r) => r.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
    for (const row of rows) {
      const ciphertext = Buffer.from(row.payload.email, 'base64');
      expect(ciphertext.includes(Buffer.from('@mail.example'))).toBe(false);
      const [found] = await keys.getKeys([{ userId: row.payload.userId, category: 'contact' }]);
      if (found?.status !== 'found') throw new Error(`no key for ${row.payload.userId}`);
      const aead = await tink.binaryInsecure.deserializeKeyset(new Uint8Array(tinkKeyset(found.key))).getPrimitive(tink.aead.Aead);
      const plaintext = await aead.decrypt(new Uint8Array(ciphertext), new Uint8Array(associatedData(type, 'email')));
      expect(Buffer.from(plaintext).toString('utf8')).toBe(`${row.payload.userId}@mail.example`);
    }
  }, 120_000);

  it('stops a type whose table cannot take its rows (ERROR log, metric), and keeps loading the others', async () => {
    const dataset = typeName('bqload', 'ds');
    const registry = new MemoryRegistryStore();
    const broken = typeName('bqload', 'broken');
    const fine = typeName('bqload', 'fine');
    await registry.putEventType(record(broken, ['bigquery']), 0);
    await registry.putEventType(record(fine, ['bigquery']), 0);
    // Someone made `broken`'s table with `url` as INTEGER: the delivered STRING column cannot go there.
    await bq.createDataset(dataset);
    await bq.dataset(dataset).createTable(broken, {
      schema: {
        fields: [
          { name: 'eventId', type: 'STRING', mode: 'REQUIRED' },
          { name: 'receiveTime', type: 'TIMESTAMP', mode: 'REQUIRED' },
          { name: 'payload', type: 'RECORD', mode: 'REQUIRED', fields: [{ name: 'url', type: 'INTEGER', mode: 'NULLABLE' }] },
        ],
      },
      timePartitioning: { type: 'HOUR', field: 'receiveTime' },
    });
    const base = Math.floor(Date.now() / HOUR) * HOUR - 7 * HOUR;
    const events = new Map<string, TestEvent[]>();
    for (const type of [broken, fine]) {
      const { topic } = await provisionType(pubsub, type);
      const e = makeEvents(100, (i) => base + i * 1000, `${type}-`);
      events.set(type, e);
      await publishEvents(topic, type, pageViewSchema, e);
      await writeAudit(storage, staging, type, e);
    }
    const lines: string[] = [];
    const w = await start(registry, dataset, createLogger({ component: 'etl', sink: (l) => lines.push(l) }));
    const h0 = periodOf(base, 'hourly');
    expect(await loaded(fine, [h0])).toBe(true);
    expect(await waitUntil(() => w.loaderStats()[broken]?.loadingStopped === 1, 60_000)).toBe(true);
    const stopLog = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'bigquery loading stopped');
    expect(stopLog).toMatchObject({ severity: 'ERROR', code: 'SCHEMA_INCOMPATIBLE', period: h0.key });
    expect(JSON.stringify(stopLog)).toContain(broken);
    expect(String(stopLog!.reason)).toMatch(/payload\.url/);
    expect(w.loaderStats()[broken]!.stopped).toMatchObject({ code: 'SCHEMA_INCOMPATIBLE', period: h0.key });
    expect(await readMarker(storage, data, broken, h0)).toBeUndefined();
    expect(compare(await tableRows(bq, dataset, fine), events.get(fine)!)).toEqual({ missing: 0, duplicated: 0, unexpected: 0, mismatched: [] });
    // The stopped type's GCS delivery goes on: its hour is closed there.
    expect((await storage.bucket(data).file(successObjectName(broken, h0)).exists())[0]).toBe(true);
  }, 180_000);
});
