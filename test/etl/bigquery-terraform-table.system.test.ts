/**
 * The BigQuery loader as deployed on GCP: without `createTables` (no
 * BIGQUERY_ENDPOINT) it never creates the dataset or a table, which it has no
 * right to do there; it waits (retryable) for the table, and loads into the
 * table exactly as terraform/modules/event-type creates it (columns and
 * partitioning read from the HCL), adding the payload columns itself.
 * Against the BigQuery and GCS emulators, through the official clients.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBigQueryEmulator, type BigQueryEmulator } from '../../emulators/bigquery/index.ts';
import type { BigQueryField } from '../../etl/bigquery-schema.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, waitUntil, writeAudit } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { createBigQuery, createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { silentLogger } from '../../lib/logger.ts';
import { loadMarkerObjectName, periodOf, successObjectName } from '../../lib/partitions.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { uniqueName } from '../support/names.ts';
import { evaluateTemplate, loadAll } from '../support/terraform-hcl.ts';

const HOUR = 3_600_000;
const fastTuning = {
  flushAgeMs: 300,
  closeCheckIntervalMs: 300,
  closeGraceMs: 500,
  closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
  registryPollMs: 500,
  backoffInitialMs: 50,
  backoffMaxMs: 1000,
  schemaRefreshMinMs: 100,
  loadCheckIntervalMs: 300,
  loadJobPollMs: 50,
};

/** The table google_bigquery_table.events creates for an hourly type: its columns and partitioning, from the HCL. */
async function terraformTable(): Promise<{ fields: BigQueryField[]; partitionField: string }> {
  const locals = (await loadAll()).eventType.locals;
  const partitionField = String(locals.receive_time_column);
  const scope = (ref: string): string => {
    if (ref === 'local.receive_time_column') return partitionField;
    throw new Error(`envelope column refers to ${ref}`);
  };
  const fields = (locals.envelope_columns as BigQueryField[]).map((c) => ({ ...c, name: evaluateTemplate(c.name, scope) }));
  return { fields, partitionField };
}

describe('BigQuery loader without createTables (GCP): the table is Terraform\'s', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator;
  let bqEmulator: BigQueryEmulator;
  let storage: ReturnType<typeof createStorage>;
  let bq: BigQuery;
  const staging = uniqueName('bqtf', 'staging');
  const data = uniqueName('bqtf', 'data');
  let workers: EtlWorkers | undefined;

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    bqEmulator = await startBigQueryEmulator({ gcsEndpoint: gcs.url });
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    bq = createBigQuery({ projectId, apiEndpoint: bqEmulator.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
  });
  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
    await bqEmulator?.close();
    await gcs?.close();
  });

  it('waits for a missing table without creating the dataset or the table, then loads into the table Terraform made', async () => {
    const dataset = uniqueName('bqtf', 'ds').replace(/-/g, '_');
    const type = uniqueName('bqtf', 'bq').replace(/-/g, '_');
    const registry = new MemoryRegistryStore();
    const r = eventTypeRecord(type, [pageViewSchema]);
    await registry.putEventType({ ...r, settings: { ...r.settings, storage: ['bigquery'] } }, 0);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const period = periodOf(base, 'hourly');
    const events = makeEvents(200, (i) => base + i * 1000, `${type}-e`);
    const { topic } = await provisionType(pubsub, type);
    await publishEvents(topic, type, pageViewSchema, events);
    await writeAudit(storage, staging, type, events);

    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      tuning: fastTuning,
      logger: silentLogger,
      // Loader passes driven by the test.
      bigQuery: { client: bq, dataset, loadEnabled: false, createTables: false },
    });
    const closed = await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000, 300);
    expect(closed, 'the hour closed in GCS').toBe(true);

    // No table yet: a retryable failure, and nothing created (datasets.insert would be a 403 in GCP).
    const loader = workers.loader(type)!;
    expect(await loader.pass()).toBe(false);
    expect(await loader.pass()).toBe(false);
    expect(workers.loaderStats()[type]).toMatchObject({ retryableFailures: 2, loadingStopped: 0, partitionsLoaded: 0 });
    expect(loader.stopped).toBeUndefined();
    expect((await bq.dataset(dataset).exists())[0]).toBe(false);

    // Terraform applies: the platform's dataset, the event-type module's table.
    const { fields, partitionField } = await terraformTable();
    await bq.createDataset(dataset);
    await bq.dataset(dataset).createTable(type, { schema: { fields }, timePartitioning: { type: 'HOUR', field: partitionField }, requirePartitionFilter: true });

    expect(await loader.pass()).toBe(true);
    expect((await storage.bucket(data).file(loadMarkerObjectName(type, period)).exists())[0]).toBe(true);
    expect(workers.loaderStats()[type]).toMatchObject({ partitionsLoaded: 1, rowsLoaded: events.length, loadingStopped: 0 });
    const [rows] = await bq.dataset(dataset).table(type).getRows({ autoPaginate: true });
    const ids = (rows as { eventId: string; payload: { url: string } }[]).map((row) => row.eventId).sort();
    expect(ids).toEqual(events.map((e) => e.eventId).sort());
    expect((rows as { payload: { url: string } }[]).every((row) => typeof row.payload.url === 'string')).toBe(true);
    // The loader added the payload to Terraform's envelope and left partitioning and envelope alone.
    const [meta] = await bq.dataset(dataset).table(type).getMetadata();
    expect(meta.timePartitioning).toMatchObject({ type: 'HOUR', field: 'receiveTime' });
    expect((meta.schema.fields as BigQueryField[]).map((f) => f.name)).toEqual(['eventId', 'receiveTime', 'payload']);
    expect((meta.schema.fields as BigQueryField[]).slice(0, 2)).toEqual(fields);
  }, 120_000);
});
