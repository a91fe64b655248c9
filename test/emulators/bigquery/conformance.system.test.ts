/**
 * Conformance of the BigQuery emulator with what the official
 * `@google-cloud/bigquery` client does, over real HTTP on loopback. Source
 * files are Avro containers written with avsc's encoder into the test GCS
 * emulator.
 */
import { BigQuery, type Job, type JobMetadata, type Table } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBigQuery, createStorage } from '../../../lib/gcp/clients.ts';
import { uniqueName } from '../../support/names.ts';
import { avroContainer, putObject } from '../../support/bigquery-avro-fixtures.ts';
import { startBigQueryEmulator, type BigQueryEmulator } from '../../../emulators/bigquery/index.ts';

const projectId = inject('projectId');
const gcsUrl = inject('gcsUrl');

/** A BigQuery error's HTTP code and `errors[].reason`s. */
function shapeOf(err: unknown): { code: unknown; reasons: unknown[] } {
  const e = err as { code?: unknown; errors?: { reason?: unknown }[] };
  return { code: e.code, reasons: (e.errors ?? []).map((x) => x.reason) };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeDefined();
  return err;
}

/** Polls jobs.get until DONE (bounded); returns the states seen and the final metadata. */
async function waitDone(job: Job): Promise<{ states: string[]; metadata: JobMetadata }> {
  const states: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const [metadata] = await job.getMetadata();
    const state = String(metadata.status?.state);
    if (states[states.length - 1] !== state) states.push(state);
    if (state === 'DONE') return { states, metadata };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`job ${job.id ?? ''} did not finish`);
}

const eventSchema = {
  type: 'record',
  name: 'Event',
  namespace: 'test',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'name', type: ['null', 'string'], default: null, doc: 'who' },
  ],
};
const hour = (h: number, plusMicros = 0): number => Date.UTC(2024, 0, 1, h) * 1000 + plusMicros;

describe('BigQuery emulator with the official client', () => {
  let emulator: BigQueryEmulator;
  let bq: BigQuery;
  let storage: Storage;
  let bucket: string;
  const datasets: string[] = [];

  /** A fresh dataset for one test. */
  async function dataset(test: string): Promise<string> {
    const id = uniqueName('bq', test).replace(/-/g, '_');
    await bq.createDataset(id);
    datasets.push(id);
    return id;
  }

  async function upload(name: string, schema: object, records: unknown[]): Promise<string> {
    await putObject(storage, bucket, name, await avroContainer(schema, records));
    return name;
  }

  async function load(table: Table, names: string[], options: Record<string, unknown>): Promise<JobMetadata> {
    const [job] = await table.createLoadJob(
      names.map((n) => storage.bucket(bucket).file(n)),
      { sourceFormat: 'AVRO', useAvroLogicalTypes: true, ...options },
    );
    return (await waitDone(job)).metadata;
  }

  async function rawRows(table: Table, options: Record<string, unknown> = {}): Promise<unknown[]> {
    const [rows] = await table.getRows({ skipParsing: true, ...options } as never);
    return rows as unknown[];
  }

  async function hourlyTable(ds: string, name: string, extra: Record<string, unknown> = {}): Promise<Table> {
    const [table] = await bq.dataset(ds).createTable(name, {
      schema: { fields: [{ name: 'id', type: 'INTEGER', mode: 'REQUIRED' }, { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' }, { name: 'name', type: 'STRING' }] },
      timePartitioning: { type: 'HOUR', field: 'ts' },
      ...extra,
    });
    return table;
  }

  beforeAll(async () => {
    emulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl });
    bq = createBigQuery({ projectId, apiEndpoint: emulator.url });
    storage = createStorage({ projectId, apiEndpoint: gcsUrl });
    bucket = uniqueName('bq-conformance');
    await storage.createBucket(bucket);
  });

  afterAll(async () => {
    for (const ds of datasets) await bq.dataset(ds).delete({ force: true }).catch(() => undefined);
    const [files] = await storage.bucket(bucket).getFiles();
    for (const f of files) await f.delete({ ignoreNotFound: true });
    await storage.bucket(bucket).delete();
    await emulator.close();
  });

  describe('datasets', () => {
    it('creates, gets and deletes; a duplicate is 409 duplicate, a missing one 404 notFound', async () => {
      const id = uniqueName('bq', 'ds').replace(/-/g, '_');
      const [ds] = await bq.createDataset(id, { location: 'EU', description: 'd' } as never);
      const [meta] = await ds.getMetadata();
      expect(meta.datasetReference).toEqual({ projectId, datasetId: id });
      expect(meta.location).toBe('EU');
      expect(shapeOf(await failure(bq.createDataset(id)))).toEqual({ code: 409, reasons: ['duplicate'] });
      await ds.delete();
      expect(shapeOf(await failure(ds.getMetadata()))).toEqual({ code: 404, reasons: ['notFound'] });
      expect((await ds.exists())[0]).toBe(false);
    });

    it('refuses to delete a dataset that holds tables unless forced (400 resourceInUse)', async () => {
      const id = await dataset('inuse');
      await bq.dataset(id).createTable('t', { schema: 'a:STRING' });
      expect(shapeOf(await failure(bq.dataset(id).delete()))).toEqual({ code: 400, reasons: ['resourceInUse'] });
      await bq.dataset(id).delete({ force: true });
      expect((await bq.dataset(id).exists())[0]).toBe(false);
    });

    it('serves a client that found it through BIGQUERY_EMULATOR_HOST (routes without /bigquery/v2)', async () => {
      const saved = process.env.BIGQUERY_EMULATOR_HOST;
      process.env.BIGQUERY_EMULATOR_HOST = emulator.url;
      let client: BigQuery;
      try {
        client = new BigQuery({ projectId }); // the client reads the variable when it is built
      } finally {
        if (saved === undefined) delete process.env.BIGQUERY_EMULATOR_HOST;
        else process.env.BIGQUERY_EMULATOR_HOST = saved;
      }
      const id = await dataset('envhost');
      const [meta] = await client.dataset(id).getMetadata();
      expect(meta.datasetReference).toEqual({ projectId, datasetId: id });
    });

    it('refuses an invalid dataset id (400 invalid)', async () => {
      expect(shapeOf(await failure(bq.createDataset('no-dashes-allowed')))).toEqual({ code: 400, reasons: ['invalid'] });
    });
  });

  describe('tables', () => {
    it('keeps partitioning, requirePartitionFilter, expiration and clustering as created', async () => {
      const ds = await dataset('tables');
      const [table] = await bq.dataset(ds).createTable('events', {
        schema: { fields: [{ name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' }, { name: 'user', type: 'STRING' }, { name: 'n', type: 'INT64' }] },
        timePartitioning: { type: 'HOUR', field: 'ts', expirationMs: '604800000' },
        requirePartitionFilter: true,
        clustering: { fields: ['user'] },
        description: 'events',
      });
      const [meta] = await table.getMetadata();
      expect(meta.timePartitioning).toEqual({ type: 'HOUR', field: 'ts', expirationMs: '604800000' });
      expect(meta.requirePartitionFilter).toBe(true);
      expect(meta.clustering).toEqual({ fields: ['user'] });
      expect(meta.schema.fields[2]).toEqual({ name: 'n', type: 'INTEGER', mode: 'NULLABLE' });
      expect(meta.numRows).toBe('0');
      expect(shapeOf(await failure(bq.dataset(ds).createTable('events', { schema: 'a:STRING' })))).toEqual({ code: 409, reasons: ['duplicate'] });
      expect(shapeOf(await failure(bq.dataset(ds).table('nope').getMetadata()))).toEqual({ code: 404, reasons: ['notFound'] });
      await table.delete();
      expect((await table.exists())[0]).toBe(false);
    });

    it('refuses partitioning on a column that is not a time column, and an unknown type (400 invalid)', async () => {
      const ds = await dataset('badtables');
      const bad1 = bq.dataset(ds).createTable('t1', { schema: 'a:STRING', timePartitioning: { type: 'DAY', field: 'a' } });
      expect(shapeOf(await failure(bad1))).toEqual({ code: 400, reasons: ['invalid'] });
      const bad2 = bq.dataset(ds).createTable('t2', { schema: { fields: [{ name: 'a', type: 'VARCHAR' }] } });
      expect(shapeOf(await failure(bad2))).toEqual({ code: 400, reasons: ['invalid'] });
    });

    it('patch adds NULLABLE fields and relaxes REQUIRED; any other schema change is 400 invalid', async () => {
      const ds = await dataset('patch');
      const [table] = await bq.dataset(ds).createTable('t', { schema: { fields: [{ name: 'a', type: 'STRING', mode: 'REQUIRED' }, { name: 'b', type: 'INTEGER' }] } });
      const fields: { name: string; type: string; mode: string; fields?: object[] }[] = [
        { name: 'a', type: 'STRING', mode: 'NULLABLE' },
        { name: 'b', type: 'INTEGER', mode: 'NULLABLE' },
        { name: 'c', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'x', type: 'BOOL' }] },
      ];
      await table.setMetadata({ schema: { fields } });
      const [meta] = await table.getMetadata();
      expect(meta.schema.fields).toEqual([
        { name: 'a', type: 'STRING', mode: 'NULLABLE' },
        { name: 'b', type: 'INTEGER', mode: 'NULLABLE' },
        { name: 'c', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'x', type: 'BOOLEAN', mode: 'NULLABLE' }] },
      ]);
      const [a, b, c] = fields as [(typeof fields)[0], (typeof fields)[0], (typeof fields)[0]];
      const refused = [
        [...fields, { name: 'd', type: 'STRING', mode: 'REQUIRED' }], // required addition
        [{ ...a, type: 'BYTES' }, b, c], // type change
        [a, c], // removal
        [{ ...a, mode: 'REQUIRED' }, b, c], // tightening
      ];
      for (const schemaFields of refused) {
        const err = await failure(table.setMetadata({ schema: { fields: schemaFields } }));
        expect(shapeOf(err)).toEqual({ code: 400, reasons: ['invalid'] });
        expect((err as Error).message).toMatch(/Provided Schema does not match Table/);
      }
      expect((await table.getMetadata())[0].schema.fields).toHaveLength(3);
    });
  });

  describe('load jobs from Avro', () => {
    const rich = {
      type: 'record',
      name: 'Rich',
      fields: [
        { name: 'big', type: 'long' },
        { name: 'small', type: 'int' },
        { name: 'ratio', type: 'float' },
        { name: 'flag', type: 'boolean' },
        { name: 'opt', type: ['null', 'string'], default: null, doc: 'optional text' },
        { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } },
        { name: 'raw', type: 'bytes' },
        { name: 'digest', type: { type: 'fixed', name: 'Digest', size: 4 } },
        { name: 'tags', type: { type: 'array', items: 'string' } },
        { name: 'attrs', type: { type: 'map', values: ['null', 'long'] } },
        { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'double' }, { name: 'k', type: 'Kind' }] } },
        { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
        { name: 'tsMillis', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'day', type: { type: 'int', logicalType: 'date' } },
        { name: 'at', type: { type: 'long', logicalType: 'time-micros' } },
        { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 } },
      ],
    };
    const richRecord = {
      big: 2n ** 62n + 1n,
      small: -7,
      ratio: 0.5,
      flag: true,
      opt: null,
      kind: 'B',
      raw: Buffer.from([0, 255, 1]),
      digest: Buffer.from('abcd'),
      tags: ['x', 'y'],
      attrs: { a: 1, b: null },
      inner: { x: 1e-7, k: 'A' },
      ts: hour(12, 123456),
      tsMillis: Date.UTC(2024, 0, 1, 12),
      day: 19723,
      at: 3_723_000_001,
      amount: Buffer.from([0xfb, 0x2e]), // -1234 → -12.34
    };

    it("maps Avro types as BigQuery documents and answers tabledata.list in BigQuery's JSON row format", async () => {
      const ds = await dataset('mapping');
      const file = await upload(uniqueName('rich') + '.avro', rich, [richRecord]);
      const table = bq.dataset(ds).table('rich');
      const done = await load(table, [file], { jobId: uniqueName('job', 'rich') });
      expect(done.status?.errorResult).toBeUndefined();
      expect(done.statistics?.load?.outputRows).toBe('1');
      const [meta] = await table.getMetadata();
      expect(meta.schema.fields).toEqual([
        { name: 'big', type: 'INTEGER', mode: 'REQUIRED' },
        { name: 'small', type: 'INTEGER', mode: 'REQUIRED' },
        { name: 'ratio', type: 'FLOAT', mode: 'REQUIRED' },
        { name: 'flag', type: 'BOOLEAN', mode: 'REQUIRED' },
        { name: 'opt', type: 'STRING', mode: 'NULLABLE', description: 'optional text' },
        { name: 'kind', type: 'STRING', mode: 'REQUIRED' },
        { name: 'raw', type: 'BYTES', mode: 'REQUIRED' },
        { name: 'digest', type: 'BYTES', mode: 'REQUIRED' },
        { name: 'tags', type: 'STRING', mode: 'REPEATED' },
        { name: 'attrs', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }, { name: 'value', type: 'INTEGER', mode: 'NULLABLE' }] },
        { name: 'inner', type: 'RECORD', mode: 'REQUIRED', fields: [{ name: 'x', type: 'FLOAT', mode: 'REQUIRED' }, { name: 'k', type: 'STRING', mode: 'REQUIRED' }] },
        { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' },
        { name: 'tsMillis', type: 'TIMESTAMP', mode: 'REQUIRED' },
        { name: 'day', type: 'DATE', mode: 'REQUIRED' },
        { name: 'at', type: 'TIME', mode: 'REQUIRED' },
        { name: 'amount', type: 'NUMERIC', mode: 'REQUIRED' },
      ]);
      expect(await rawRows(table)).toEqual([
        {
          f: [
            { v: '4611686018427387905' },
            { v: '-7' },
            { v: '0.5' },
            { v: 'true' },
            { v: null },
            { v: 'B' },
            { v: 'AP8B' },
            { v: 'YWJjZA==' },
            { v: [{ v: 'x' }, { v: 'y' }] },
            { v: [{ v: { f: [{ v: 'a' }, { v: '1' }] } }, { v: { f: [{ v: 'b' }, { v: null }] } }] },
            { v: { f: [{ v: '1.0E-7' }, { v: 'A' }] } },
            { v: String(hour(12, 123456)) },
            { v: String(Date.UTC(2024, 0, 1, 12) * 1000) },
            { v: '2024-01-01' },
            { v: '01:02:03.000001' },
            { v: '-12.34' },
          ],
        },
      ]);
      // Without formatOptions.useInt64Timestamp, TIMESTAMP is floating-point seconds.
      const [page] = await table.getRows({ skipParsing: true, 'formatOptions.useInt64Timestamp': false, selectedFields: 'ts' } as never);
      expect(page).toEqual([{ f: [{ v: '1.704110400123456E9' }] }]);
      // The client parses the rows with the table schema.
      const [parsed] = await table.getRows({ wrapIntegers: true, selectedFields: 'big,opt,raw,day' });
      expect(parsed[0].big.value).toBe('4611686018427387905');
      expect(parsed[0].opt).toBeNull();
      expect(parsed[0].raw).toEqual(Buffer.from([0, 255, 1]));
      expect(parsed[0].day.value).toBe('2024-01-01');
    });

    it('keeps logical types as their Avro type without useAvroLogicalTypes', async () => {
      const ds = await dataset('nological');
      const file = await upload(uniqueName('nolog') + '.avro', rich, [richRecord]);
      const table = bq.dataset(ds).table('plain');
      await load(table, [file], { useAvroLogicalTypes: false });
      const [meta] = await table.getMetadata();
      const types = new Map(meta.schema.fields.map((f: { name: string; type: string }) => [f.name, f.type]));
      expect([types.get('ts'), types.get('tsMillis'), types.get('day'), types.get('at'), types.get('amount')]).toEqual(['INTEGER', 'INTEGER', 'INTEGER', 'INTEGER', 'NUMERIC']);
      const [rows] = await table.getRows({ skipParsing: true, selectedFields: 'tsMillis,day' } as never);
      expect(rows).toEqual([{ f: [{ v: String(Date.UTC(2024, 0, 1, 12)) }, { v: '19723' }] }]);
    });

    it('reads wildcard URIs, and a job goes PENDING → RUNNING → DONE on jobs.get', async () => {
      const slow = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl, jobStepMs: 150 });
      try {
        const client = createBigQuery({ projectId, apiEndpoint: slow.url });
        const ds = uniqueName('bq', 'wild').replace(/-/g, '_');
        await client.createDataset(ds);
        const prefix = uniqueName('wild');
        await upload(`${prefix}/part-1.avro`, eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
        await upload(`${prefix}/part-2.avro`, eventSchema, [{ id: 2, ts: hour(2), name: 'b' }, { id: 3, ts: hour(2), name: null }]);
        await upload(`${prefix}/other.txt.avro`, eventSchema, [{ id: 99, ts: hour(3), name: 'not matched' }]);
        const [job] = await client.createJob({
          jobId: uniqueName('job', 'wild'),
          configuration: { load: { sourceUris: [`gs://${bucket}/${prefix}/part-*.avro`], sourceFormat: 'AVRO', useAvroLogicalTypes: true, destinationTable: { projectId, datasetId: ds, tableId: 'events' } } },
        });
        expect(job.metadata.status.state).toBe('PENDING');
        const { states, metadata } = await waitDone(job);
        expect(states).toEqual(['PENDING', 'RUNNING', 'DONE']);
        expect(metadata.statistics?.load?.inputFiles).toBe('2');
        const [rows] = await client.dataset(ds).table('events').getRows({ skipParsing: true, selectedFields: 'id' } as never);
        expect(rows).toEqual([{ f: [{ v: '1' }] }, { f: [{ v: '2' }] }, { f: [{ v: '3' }] }]);

        // jobs.cancel before the commit: DONE with `stopped`, the table unchanged.
        const [cancelled] = await client.createJob({
          configuration: { load: { sourceUris: [`gs://${bucket}/${prefix}/part-*.avro`], sourceFormat: 'AVRO', destinationTable: { projectId, datasetId: ds, tableId: 'events' } } },
        });
        await cancelled.cancel();
        const stopped = await waitDone(cancelled);
        expect(stopped.metadata.status?.errorResult?.reason).toBe('stopped');
        expect((await client.dataset(ds).table('events').getMetadata())[0].numRows).toBe('3');
      } finally {
        await slow.close();
      }
    });

    it('answers 409 duplicate to a second insert of a job id, and runs the job once', async () => {
      const ds = await dataset('dupjob');
      const file = await upload(uniqueName('dup') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
      const table = bq.dataset(ds).table('events');
      const jobId = uniqueName('job', 'dup');
      await load(table, [file], { jobId, writeDisposition: 'WRITE_APPEND' });
      const err = await failure(table.createLoadJob(storage.bucket(bucket).file(file), { sourceFormat: 'AVRO', jobId, writeDisposition: 'WRITE_APPEND' }));
      expect(shapeOf(err)).toEqual({ code: 409, reasons: ['duplicate'] });
      expect((err as Error).message).toBe(`Already Exists: Job ${projectId}:US.${jobId}`);
      expect((await table.getMetadata())[0].numRows).toBe('1');
    });

    it('fails a job whose source is missing (notFound) or whose destination is missing under CREATE_NEVER (notFound)', async () => {
      const ds = await dataset('missing');
      const table = bq.dataset(ds).table('events');
      const gone = await load(table, ['no-such-object.avro'], {});
      expect(gone.status?.errorResult?.reason).toBe('notFound');
      expect(gone.status?.errorResult?.message).toBe(`Not found: URI gs://${bucket}/no-such-object.avro`);
      const file = await upload(uniqueName('cn') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
      const never = await load(table, [file], { createDisposition: 'CREATE_NEVER' });
      expect(never.status?.errorResult?.reason).toBe('notFound');
      expect((await table.exists())[0]).toBe(false);
      // The client's job.promise() surfaces the job's error with its reason.
      const [job] = await table.createLoadJob(storage.bucket(bucket).file('no-such-object.avro'), { sourceFormat: 'AVRO' });
      expect(shapeOf(await failure(job.promise()))).toMatchObject({ reasons: ['notFound'] });
    });

    it('refuses a media upload with a 400 naming gs:// loads', async () => {
      // The v8 client's table.load(localFile) never settles on an error answer (its upload stream
      // fails inside the client), so this is checked over plain HTTP.
      const res = await fetch(`${emulator.url}/upload/bigquery/v2/projects/${projectId}/jobs?uploadType=multipart`, { method: 'POST', body: 'x' });
      const body = (await res.json()) as { error: { errors: { reason: string; message: string }[] } };
      expect([res.status, body.error.errors[0]!.reason]).toEqual([400, 'invalid']);
      expect(body.error.errors[0]!.message).toMatch(/load from gs:\/\/ URIs/);
    });

    it('fails a job on a file that is not Avro (invalid) and leaves the table as it was', async () => {
      const ds = await dataset('corrupt');
      const table = bq.dataset(ds).table('events');
      const good = await upload(uniqueName('good') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
      await load(table, [good], {});
      const bad = uniqueName('bad') + '.avro';
      await putObject(storage, bucket, bad, Buffer.from('not an avro file'));
      const done = await load(table, [good, bad], { writeDisposition: 'WRITE_TRUNCATE' });
      expect(done.status?.errorResult?.reason).toBe('invalid');
      expect(await rawRows(table, { selectedFields: 'id' })).toEqual([{ f: [{ v: '1' }] }]);
    });

    it('honours writeDisposition WRITE_APPEND, WRITE_TRUNCATE and WRITE_EMPTY', async () => {
      const ds = await dataset('dispositions');
      const table = bq.dataset(ds).table('events');
      const one = await upload(uniqueName('one') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
      const two = await upload(uniqueName('two') + '.avro', eventSchema, [{ id: 2, ts: hour(2), name: 'b' }]);
      await load(table, [one], { writeDisposition: 'WRITE_EMPTY' });
      await load(table, [two], { writeDisposition: 'WRITE_APPEND' });
      expect((await table.getMetadata())[0].numRows).toBe('2');
      const empty = await load(table, [two], { writeDisposition: 'WRITE_EMPTY' });
      expect(empty.status?.errorResult).toMatchObject({ reason: 'duplicate' });
      await load(table, [two], { writeDisposition: 'WRITE_TRUNCATE' });
      expect(await rawRows(table, { selectedFields: 'id' })).toEqual([{ f: [{ v: '2' }] }]);
    });

    it('adds fields and relaxes modes only with schemaUpdateOptions', async () => {
      const ds = await dataset('evolve');
      const [table] = await bq.dataset(ds).createTable('events', {
        schema: { fields: [{ name: 'id', type: 'INTEGER', mode: 'REQUIRED' }, { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' }, { name: 'name', type: 'STRING', mode: 'REQUIRED' }] },
      });
      const v1 = { ...eventSchema, fields: [eventSchema.fields[0], eventSchema.fields[1], { name: 'name', type: 'string' }] };
      await load(table, [await upload(uniqueName('v1') + '.avro', v1, [{ id: 1, ts: hour(1), name: 'a' }])], {});
      const v2 = { ...eventSchema, fields: [...eventSchema.fields, { name: 'extra', type: ['null', 'long'], default: null }] };
      const file = await upload(uniqueName('v2') + '.avro', v2, [{ id: 2, ts: hour(2), name: null, extra: 5 }]);
      const refused = await load(table, [file], { writeDisposition: 'WRITE_APPEND' });
      expect(refused.status?.errorResult?.reason).toBe('invalid');
      expect(refused.status?.errorResult?.message).toMatch(/Provided Schema does not match Table/);
      const onlyAdd = await load(table, [file], { writeDisposition: 'WRITE_APPEND', schemaUpdateOptions: ['ALLOW_FIELD_ADDITION'] });
      expect(onlyAdd.status?.errorResult?.message).toMatch(/Field name has changed mode from REQUIRED to NULLABLE/);
      const ok = await load(table, [file], { writeDisposition: 'WRITE_APPEND', schemaUpdateOptions: ['ALLOW_FIELD_ADDITION', 'ALLOW_FIELD_RELAXATION'] });
      expect(ok.status?.errorResult).toBeUndefined();
      const [meta] = await table.getMetadata();
      expect(meta.schema.fields.map((f: { name: string; mode: string }) => `${f.name}:${f.mode}`)).toEqual(['id:REQUIRED', 'ts:REQUIRED', 'name:NULLABLE', 'extra:NULLABLE']);
      expect(await rawRows(table, { selectedFields: 'id,name,extra' })).toEqual([
        { f: [{ v: '1' }, { v: 'a' }, { v: null }] },
        { f: [{ v: '2' }, { v: null }, { v: '5' }] },
      ]);
      // Options with WRITE_TRUNCATE on a whole table are refused at insert, as BigQuery does.
      const err = await failure(table.createLoadJob(storage.bucket(bucket).file(file), { sourceFormat: 'AVRO', writeDisposition: 'WRITE_TRUNCATE', schemaUpdateOptions: ['ALLOW_FIELD_ADDITION'] }));
      expect(shapeOf(err)).toEqual({ code: 400, reasons: ['invalid'] });
    });
  });

  describe('partitions', () => {
    it('loads into a decorated hour, reports numRows/numBytes per partition, and refuses rows of another hour', async () => {
      const ds = await dataset('decorator');
      const table = await hourlyTable(ds, 'events');
      const h12 = await upload(uniqueName('h12') + '.avro', eventSchema, [{ id: 1, ts: hour(12), name: 'ab' }, { id: 2, ts: hour(12, 3_599_999_999), name: null }]);
      const h13 = await upload(uniqueName('h13') + '.avro', eventSchema, [{ id: 3, ts: hour(13), name: 'c' }]);
      await load(bq.dataset(ds).table('events$2024010112'), [h12], { writeDisposition: 'WRITE_TRUNCATE' });
      await load(table, [h13], {});
      const [p12] = await bq.dataset(ds).table('events$2024010112').getMetadata();
      // 2 INTEGER + 2 TIMESTAMP (8 bytes each) + 'ab' (2 + 2) + NULL (0)
      expect([p12.numRows, p12.numBytes]).toEqual(['2', String(4 * 8 + 4)]);
      const [whole] = await table.getMetadata();
      expect([whole.numRows, whole.numBytes]).toEqual(['3', String(6 * 8 + 4 + 3)]);
      const [p14] = await bq.dataset(ds).table('events$2024010114').getMetadata();
      expect(p14.numRows).toBe('0');

      const wrong = await load(bq.dataset(ds).table('events$2024010112'), [h13], { writeDisposition: 'WRITE_APPEND' });
      expect(wrong.status?.errorResult).toEqual({ reason: 'invalid', message: 'Some rows belong to different partitions rather than destination partition 2024010112' });
      expect(await rawRows(bq.dataset(ds).table('events$2024010112'), { selectedFields: 'id' })).toEqual([{ f: [{ v: '1' }] }, { f: [{ v: '2' }] }]);

      const badDecorator = await failure(bq.dataset(ds).table('events$20240101').getMetadata());
      expect(shapeOf(badDecorator)).toEqual({ code: 400, reasons: ['invalid'] });
    });

    it('WRITE_TRUNCATE on a decorator replaces that partition only', async () => {
      const ds = await dataset('replace');
      const table = await hourlyTable(ds, 'events');
      await load(table, [await upload(uniqueName('both') + '.avro', eventSchema, [{ id: 1, ts: hour(12), name: 'old' }, { id: 2, ts: hour(13), name: 'other' }])], {});
      await load(bq.dataset(ds).table('events$2024010112'), [await upload(uniqueName('new') + '.avro', eventSchema, [{ id: 10, ts: hour(12), name: 'new' }, { id: 11, ts: hour(12), name: 'new' }])], {
        writeDisposition: 'WRITE_TRUNCATE',
      });
      expect(await rawRows(table, { selectedFields: 'id' })).toEqual([{ f: [{ v: '10' }] }, { f: [{ v: '11' }] }, { f: [{ v: '2' }] }]);
      const again = await load(bq.dataset(ds).table('events$2024010112'), [await upload(uniqueName('more') + '.avro', eventSchema, [{ id: 12, ts: hour(12), name: 'x' }])], {
        writeDisposition: 'WRITE_EMPTY',
      });
      expect(again.status?.errorResult?.reason).toBe('duplicate');
    });

    it('readers see the old partition or the new one, never a mix, and a failed replace changes nothing', async () => {
      const ds = await dataset('atomic');
      const table = await hourlyTable(ds, 'events');
      const oldRows = Array.from({ length: 50 }, (_, i) => ({ id: i, ts: hour(12, i), name: 'old' }));
      await load(bq.dataset(ds).table('events$2024010112'), [await upload(uniqueName('old') + '.avro', eventSchema, oldRows)], { writeDisposition: 'WRITE_TRUNCATE' });
      const prefix = uniqueName('atomic-new');
      const parts = [];
      for (let p = 0; p < 4; p++) {
        const rows = Array.from({ length: 30 }, (_, i) => ({ id: 1000 + p * 30 + i, ts: hour(12, i), name: 'new' }));
        parts.push(await upload(`${prefix}/part-${p}.avro`, eventSchema, rows));
      }
      // Slow every download of the new parts so the job spends a while between its first read and its commit.
      const slowReads = await fetch(`${gcsUrl}/_emulator/faults`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ path: `${prefix}.*alt=media`, latencyMs: 100 }),
      }).then(async (r) => ((await r.json()) as { id: string }).id);
      try {
        const [job] = await bq.dataset(ds).table('events$2024010112').createLoadJob(
          parts.map((n) => storage.bucket(bucket).file(n)),
          { sourceFormat: 'AVRO', useAvroLogicalTypes: true, writeDisposition: 'WRITE_TRUNCATE' },
        );
        const seen = new Set<string>();
        for (let i = 0; i < 2000; i++) {
          const rows = (await rawRows(table, { selectedFields: 'name' })) as { f: { v: string }[] }[];
          const names = new Set(rows.map((r) => r.f[0]!.v));
          expect(names.size, 'a read mixed old and new rows').toBe(1);
          const kind = `${[...names][0]}:${rows.length}`;
          seen.add(kind);
          const [meta] = await job.getMetadata();
          if (meta.status.state === 'DONE') break;
        }
        const after = (await rawRows(table, { selectedFields: 'name' })) as { f: { v: string }[] }[];
        seen.add(`${after[0]!.f[0]!.v}:${after.length}`);
        expect(seen.has('old:50')).toBe(true);
        expect(seen.has('new:120')).toBe(true);
        expect([...seen].every((k) => k === 'old:50' || k === 'new:120')).toBe(true);
      } finally {
        await fetch(`${gcsUrl}/_emulator/faults/${slowReads}`, { method: 'DELETE' });
      }
      // One row outside the hour fails the whole replace; the partition keeps its rows.
      const stray = await upload(`${prefix}/stray.avro`, eventSchema, [{ id: 5000, ts: hour(12), name: 'stray' }, { id: 5001, ts: hour(14), name: 'stray' }]);
      const failed = await load(bq.dataset(ds).table('events$2024010112'), [stray], { writeDisposition: 'WRITE_TRUNCATE' });
      expect(failed.status?.errorResult?.reason).toBe('invalid');
      expect((await bq.dataset(ds).table('events$2024010112').getMetadata())[0].numRows).toBe('120');
    });

    it('drops partitions older than timePartitioning.expirationMs', async () => {
      const ds = await dataset('expiry');
      const [table] = await bq.dataset(ds).createTable('events', {
        schema: { fields: [{ name: 'id', type: 'INTEGER' }, { name: 'ts', type: 'TIMESTAMP' }, { name: 'name', type: 'STRING' }] },
        timePartitioning: { type: 'DAY', field: 'ts', expirationMs: String(7 * 86_400_000) },
      });
      const now = Date.now() * 1000;
      await load(table, [await upload(uniqueName('exp') + '.avro', eventSchema, [{ id: 1, ts: hour(0), name: 'old' }, { id: 2, ts: now, name: 'recent' }])], {});
      expect(await rawRows(table, { selectedFields: 'id' })).toEqual([{ f: [{ v: '2' }] }]);
    });
  });

  describe('reading back', () => {
    it('pages tabledata.list with maxResults and pageToken, and keeps selectedFields', async () => {
      const ds = await dataset('paging');
      const table = bq.dataset(ds).table('events');
      const rows = Array.from({ length: 7 }, (_, i) => ({ id: i, ts: hour(1), name: `n${i}` }));
      await load(table, [await upload(uniqueName('page') + '.avro', eventSchema, rows)], {});
      const ids: string[] = [];
      let query: Record<string, unknown> | null | undefined = { maxResults: 3, autoPaginate: false, skipParsing: true, selectedFields: 'name,id' };
      let pages = 0;
      while (query) {
        const [page, next] = (await table.getRows(query as never)) as unknown as [{ f: { v: string }[] }[], Record<string, unknown> | null];
        pages++;
        for (const r of page) {
          expect(r.f).toHaveLength(2); // table order: id, name
          ids.push(r.f[0]!.v);
        }
        query = next;
        expect(pages).toBeLessThan(10);
      }
      expect(pages).toBe(3);
      expect(ids).toEqual(['0', '1', '2', '3', '4', '5', '6']);
      const [all] = await table.getRows();
      expect(all).toHaveLength(7);
    });

    it('caps a page at about 10 MiB of rows and continues with a pageToken', async () => {
      const ds = await dataset('bigpage');
      const table = bq.dataset(ds).table('events');
      const big = 'x'.repeat(1024 * 1024);
      await load(table, [await upload(uniqueName('big') + '.avro', eventSchema, Array.from({ length: 12 }, (_, i) => ({ id: i, ts: hour(1), name: big })))], {});
      const [first, next] = (await table.getRows({ autoPaginate: false, skipParsing: true } as never)) as unknown as [unknown[], { pageToken?: string } | null];
      expect(first.length).toBeGreaterThan(0);
      expect(first.length).toBeLessThan(12);
      expect(next?.pageToken).toBeDefined();
      const [all] = await table.getRows({ selectedFields: 'id' });
      expect(all.map((r: { id: number }) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    });

    it('answers SELECT COUNT(*) and SELECT * with a WHERE on the partition column, and enforces requirePartitionFilter', async () => {
      const ds = await dataset('query');
      const table = await hourlyTable(ds, 'events', { requirePartitionFilter: true });
      await load(table, [await upload(uniqueName('q') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }, { id: 2, ts: hour(2), name: 'b' }, { id: 3, ts: hour(2, 5), name: 'c' }])], {});
      const [count] = await bq.query({ query: `SELECT COUNT(*) AS n FROM \`${projectId}.${ds}.events\` WHERE ts >= TIMESTAMP '2024-01-01 02:00:00' AND ts < TIMESTAMP '2024-01-01T03:00:00Z'` });
      expect(count).toEqual([{ n: 2 }]);
      const [rows] = await bq.query({ query: `SELECT * FROM ${ds}.events WHERE ts = @t`, params: { t: bq.timestamp(new Date(Date.UTC(2024, 0, 1, 1))) } });
      expect(rows.map((r: { id: number }) => r.id)).toEqual([1]);
      const err = await failure(bq.query(`SELECT COUNT(*) FROM ${ds}.events`));
      expect(shapeOf(err)).toEqual({ code: 400, reasons: ['invalidQuery'] });
      expect((err as Error).message).toMatch(/without a filter over column\(s\) 'ts'/);
      const unsupported = await failure(bq.query(`SELECT id FROM ${ds}.events WHERE ts > TIMESTAMP '2024-01-01'`));
      expect(shapeOf(unsupported)).toEqual({ code: 400, reasons: ['invalidQuery'] });

      // An ingestion-time table: rows go to the decorated hour, found through _PARTITIONTIME.
      const [ingest] = await bq.dataset(ds).createTable('ingested', { schema: 'id:INTEGER,ts:TIMESTAMP,name:STRING', timePartitioning: { type: 'HOUR' } });
      await load(bq.dataset(ds).table('ingested$2024010105'), [await upload(uniqueName('ing') + '.avro', eventSchema, [{ id: 1, ts: hour(9), name: 'a' }, { id: 2, ts: hour(9), name: 'b' }])], {});
      const [byPartition] = await bq.query(`SELECT COUNT(*) AS n FROM ${ds}.ingested WHERE _PARTITIONTIME = TIMESTAMP '2024-01-01 05:00:00'`);
      const [elsewhere] = await bq.query(`SELECT COUNT(*) AS n FROM ${ds}.ingested WHERE _PARTITIONTIME = TIMESTAMP '2024-01-01 09:00:00'`);
      expect([byPartition, elsewhere]).toEqual([[{ n: 2 }], [{ n: 0 }]]);
      expect((await ingest.getMetadata())[0].numRows).toBe('2');
    });
  });

  describe('faults', () => {
    it('answers injected 503s with a BigQuery error body; the client retries them', async () => {
      const ds = await dataset('faults');
      emulator.faults.add({ methods: ['POST'], path: '/jobs(\\?|$)', times: 2, status: 503 });
      const file = await upload(uniqueName('f') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
      const jobId = uniqueName('job', 'retried');
      const done = await load(bq.dataset(ds).table('events'), [file], { jobId });
      expect(done.status?.errorResult).toBeUndefined();
      expect(done.jobReference?.jobId).toBe(jobId);
      expect(emulator.faults.list()).toEqual([]); // both fired

      const ruleId = emulator.faults.add({ methods: ['GET'], path: `/datasets/${ds}(\\?|$)`, times: 10, status: 503 });
      // One retry only, to keep the test short (the default is 3, with growing back-off).
      const impatient = new BigQuery({ projectId, apiEndpoint: emulator.url, maxRetries: 1 });
      const err = await failure(impatient.dataset(ds).getMetadata());
      expect(shapeOf(err)).toEqual({ code: 503, reasons: ['backendError'] });
      expect(emulator.faults.list().find((r) => r.id === ruleId)?.fired).toBe(2); // first try + 1 retry
      emulator.faults.clear();
      const raw = await fetch(`${emulator.url}/_emulator/faults`, { method: 'POST', body: JSON.stringify({ path: '/queries', times: 1, status: 500 }) });
      expect(raw.status).toBe(200);
      const res = await fetch(`${emulator.url}/bigquery/v2/projects/${projectId}/queries`, { method: 'POST', body: '{}' });
      expect([res.status, ((await res.json()) as { error: { errors: { reason: string }[] } }).error.errors[0]!.reason]).toEqual([500, 'backendError']);
    });

    it('a jobs.insert whose answer is lost still created the job: its retry is 409 duplicate', async () => {
      const ds = await dataset('cut');
      const file = await upload(uniqueName('cut') + '.avro', eventSchema, [{ id: 1, ts: hour(1), name: 'a' }]);
      const table = bq.dataset(ds).table('events');
      const jobId = uniqueName('job', 'cut');
      emulator.faults.add({ methods: ['POST'], path: '/jobs(\\?|$)', times: 1, cut: 'response' });
      const err = await failure(table.createLoadJob(storage.bucket(bucket).file(file), { sourceFormat: 'AVRO', jobId }));
      expect(shapeOf(err)).toEqual({ code: 409, reasons: ['duplicate'] });
      const { metadata } = await waitDone(bq.job(jobId));
      expect(metadata.status?.errorResult).toBeUndefined();
      expect((await table.getMetadata())[0].numRows).toBe('1');
    });
  });
});
