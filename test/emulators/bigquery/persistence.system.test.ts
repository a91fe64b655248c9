/**
 * Directory persistence and the standalone process: what a BigQuery emulator
 * started on a folder keeps across a restart (datasets, tables, partitions,
 * jobs and their ids), jobs left unfinished resumed once, and
 * `npm run emulator:bigquery` printing its endpoint and exiting cleanly.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBigQuery, createStorage } from '../../../lib/gcp/clients.ts';
import { uniqueName } from '../../support/names.ts';
import { avroContainer, putObject } from '../../support/bigquery-avro-fixtures.ts';
import { startBigQueryEmulator } from '../../../emulators/bigquery/index.ts';

const projectId = inject('projectId');
const gcsUrl = inject('gcsUrl');
const schema = {
  type: 'record',
  name: 'Event',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
  ],
};
const at = (h: number): number => Date.UTC(2024, 0, 1, h) * 1000;

describe('BigQuery emulator persistence', () => {
  let storage: Storage;
  let bucket: string;
  let dir: string;

  beforeAll(async () => {
    storage = createStorage({ projectId, apiEndpoint: gcsUrl });
    bucket = uniqueName('bq-persist');
    await storage.createBucket(bucket);
    dir = await mkdtemp(path.join(tmpdir(), 'bq-emulator-'));
  });

  afterAll(async () => {
    const [files] = await storage.bucket(bucket).getFiles();
    for (const f of files) await f.delete({ ignoreNotFound: true });
    await storage.bucket(bucket).delete();
    await rm(dir, { recursive: true, force: true });
  });

  async function waitDone(bq: ReturnType<typeof createBigQuery>, jobId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 1000; i++) {
      const [meta] = await bq.job(jobId).getMetadata();
      if (meta.status.state === 'DONE') return meta as Record<string, unknown>;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('job did not finish');
  }

  it('keeps datasets, tables, partitions and job ids across a restart', async () => {
    const file = uniqueName('p') + '.avro';
    await putObject(storage, bucket, file, await avroContainer(schema, [{ id: 1, ts: at(5) }, { id: 2, ts: at(6) }]));
    const sub = path.join(dir, 'restart');
    let emulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl, dir: sub });
    let bq = createBigQuery({ projectId, apiEndpoint: emulator.url });
    await bq.createDataset('kept');
    await bq.dataset('kept').createTable('events', { schema: 'id:INTEGER,ts:TIMESTAMP', timePartitioning: { type: 'HOUR', field: 'ts' }, requirePartitionFilter: true });
    await bq.dataset('kept').createTable('dropped', { schema: 'a:STRING' });
    await bq.createJob({ jobId: 'load-1', configuration: { load: { sourceUris: [`gs://${bucket}/${file}`], sourceFormat: 'AVRO', useAvroLogicalTypes: true, destinationTable: { projectId, datasetId: 'kept', tableId: 'events' } } } });
    await waitDone(bq, 'load-1');
    await bq.dataset('kept').table('dropped').delete();
    await bq.dataset('kept').table('events$2024010106').delete(); // one partition
    await emulator.close();

    emulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl, dir: sub });
    bq = createBigQuery({ projectId, apiEndpoint: emulator.url });
    try {
      const [meta] = await bq.dataset('kept').table('events').getMetadata();
      expect([meta.numRows, meta.requirePartitionFilter, meta.timePartitioning]).toEqual(['1', true, { type: 'HOUR', field: 'ts' }]);
      const [rows] = await bq.dataset('kept').table('events').getRows({ skipParsing: true } as never);
      expect(rows).toEqual([{ f: [{ v: '1' }, { v: String(at(5)) }] }]);
      expect((await bq.dataset('kept').table('dropped').exists())[0]).toBe(false);
      const job = await waitDone(bq, 'load-1');
      expect((job.statistics as { load: { outputRows: string } }).load.outputRows).toBe('2');
      const dup = await bq.createJob({ jobId: 'load-1', configuration: { load: { sourceUris: [`gs://${bucket}/${file}`], sourceFormat: 'AVRO', destinationTable: { projectId, datasetId: 'kept', tableId: 'events' } } } }).then(
        () => undefined,
        (e: unknown) => e as { code: number; errors: { reason: string }[] },
      );
      expect([dup?.code, dup?.errors[0]?.reason]).toEqual([409, 'duplicate']);
    } finally {
      await emulator.close();
    }
  });

  it('runs a job that was still PENDING when the emulator stopped once, after the restart', async () => {
    const file = uniqueName('pending') + '.avro';
    await putObject(storage, bucket, file, await avroContainer(schema, [{ id: 7, ts: at(1) }]));
    const sub = path.join(dir, 'pending');
    let emulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl, dir: sub, jobStepMs: 600_000 }); // longer than the test timeout: close() must not wait for it
    let bq = createBigQuery({ projectId, apiEndpoint: emulator.url });
    await bq.createDataset('ds');
    await bq.createJob({ jobId: 'stuck', configuration: { load: { sourceUris: [`gs://${bucket}/${file}`], sourceFormat: 'AVRO', destinationTable: { projectId, datasetId: 'ds', tableId: 't' }, writeDisposition: 'WRITE_APPEND' } } });
    expect((await bq.job('stuck').getMetadata())[0].status.state).toBe('PENDING');
    await emulator.close();

    emulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl, dir: sub });
    bq = createBigQuery({ projectId, apiEndpoint: emulator.url });
    try {
      const job = await waitDone(bq, 'stuck');
      expect((job.status as { errorResult?: unknown }).errorResult).toBeUndefined();
      expect((await bq.dataset('ds').table('t').getMetadata())[0].numRows).toBe('1');
    } finally {
      await emulator.close();
    }
    // A second restart finds it DONE and committed: it is not run again.
    emulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcsUrl, dir: sub });
    bq = createBigQuery({ projectId, apiEndpoint: emulator.url });
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect((await bq.dataset('ds').table('t').getMetadata())[0].numRows).toBe('1');
    } finally {
      await emulator.close();
    }
  });
});

describe('npm run emulator:bigquery', () => {
  const main = path.join(import.meta.dirname, '../../../emulators/bigquery/main.ts');

  it('prints its endpoint once it accepts requests and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, '--port', '0', '--gcs-endpoint', gcsUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const lines = createInterface({ input: child.stdout });
      const first = await new Promise<string>((resolve, reject) => {
        lines.once('line', resolve);
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      const m = /^bigquery: (http:\/\/127\.0\.0\.1:\d+)$/.exec(first);
      expect(m).not.toBeNull();
      const bq = createBigQuery({ projectId, apiEndpoint: m![1]! });
      await bq.createDataset('standalone');
      expect((await bq.dataset('standalone').exists())[0]).toBe(true);
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('exits 1 naming the setting when --gcs-endpoint is missing or not a URL', async () => {
    for (const args of [['--port', '0'], ['--port', '0', '--gcs-endpoint', 'nope'], ['--bogus', 'x']]) {
      const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BIGQUERY_EMULATOR_GCS_ENDPOINT: '' } });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code).toBe(1);
      expect(stderr).toMatch(args[0] === '--bogus' ? /unknown flag --bogus/ : /BIGQUERY_EMULATOR_GCS_ENDPOINT/);
    }
  });
});
