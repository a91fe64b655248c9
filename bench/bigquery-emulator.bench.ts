/**
 * BigQuery emulator benchmark (`npm run bench bigquery-emulator`): rows
 * loaded per second by a load job from Avro files in the GCS emulator
 * (jobs.insert → DONE, WRITE_TRUNCATE of one hourly partition, through the
 * official client), with CPU µs per row, next to the in-run baseline: avsc's
 * bare decode of the same files (BlockDecoder over exact-long types, no
 * mapping, no storage). Both emulators run in this process, so the CPU figure
 * covers the whole load: serving the files, decoding, mapping, committing.
 * Medians of ROUNDS runs.
 */
import { Readable } from 'node:stream';
import avro from 'avsc';
import { avroType } from '../lib/avro/long.ts';
import { createBigQuery, createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { startBigQueryEmulator } from '../emulators/bigquery/index.ts';
import { avroContainer, putObject } from '../test/support/bigquery-avro-fixtures.ts';

const FILES = 8;
const ROWS_PER_FILE = 25_000;
const ROWS = FILES * ROWS_PER_FILE;
const ROUNDS = 5;
const projectId = 'bench-project';

const schema = {
  type: 'record',
  name: 'Delivered',
  namespace: 'bench',
  fields: [
    { name: 'event_id', type: 'string' },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'seq', type: 'long' },
    { name: 'country', type: ['null', 'string'], default: null },
    { name: 'amount', type: 'double' },
    { name: 'email', type: 'bytes', doc: 'personal, encrypted' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'attrs', type: { type: 'map', values: 'string' } },
    { name: 'device', type: { type: 'record', name: 'Device', fields: [{ name: 'os', type: { type: 'enum', name: 'Os', symbols: ['ANDROID', 'IOS', 'WEB'] } }, { name: 'version', type: 'int' }] } },
  ],
};

function record(i: number): Record<string, unknown> {
  return {
    event_id: `evt-${i.toString(36).padStart(8, '0')}`,
    ts: Date.UTC(2024, 0, 1, 12) * 1000 + i,
    seq: 2n ** 53n + BigInt(i), // beyond 2^53: exact longs on the whole path
    country: i % 5 === 0 ? null : 'DE',
    amount: i / 7,
    email: Buffer.alloc(44, i & 0xff),
    tags: i % 2 === 0 ? ['a', 'b'] : [],
    attrs: { source: 'bench', shard: String(i % 16) },
    device: { os: ['ANDROID', 'IOS', 'WEB'][i % 3], version: i % 100 },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function main(): Promise<void> {
  const gcs = await startGcsEmulator({ port: 0 });
  const bqEmulator = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcs.url });
  const storage = createStorage({ projectId, apiEndpoint: gcs.url });
  const bq = createBigQuery({ projectId, apiEndpoint: bqEmulator.url });
  try {
    await storage.createBucket('bench-bq');
    const files: Buffer[] = [];
    for (let f = 0; f < FILES; f++) {
      const bytes = await avroContainer(schema, Array.from({ length: ROWS_PER_FILE }, (_, i) => record(f * ROWS_PER_FILE + i)));
      files.push(bytes);
      await putObject(storage, 'bench-bq', `part-${f}.avro`, bytes);
    }
    const totalBytes = files.reduce((n, b) => n + b.length, 0);
    await bq.createDataset('bench');
    console.log(`${FILES} files, ${ROWS} rows, ${(totalBytes / 1024 / 1024).toFixed(1)} MiB of deflated Avro; ${ROUNDS} rounds, medians`);

    const decodeRuns: { rowsPerS: number; cpuPerRow: number }[] = [];
    const loadRuns: { rowsPerS: number; cpuPerRow: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Baseline: avsc decodes the same container files, nothing else.
      globalThis.gc?.();
      let t0 = performance.now();
      let c0 = cpuMicros();
      let decoded = 0;
      for (const bytes of files) {
        const decoder = new avro.streams.BlockDecoder({ parseHook: (s) => avroType(s) });
        decoder.on('data', () => decoded++);
        await new Promise<void>((resolve, reject) => {
          decoder.on('end', resolve);
          decoder.on('error', reject);
          Readable.from([bytes]).pipe(decoder);
        });
      }
      if (decoded !== ROWS) throw new Error(`baseline decoded ${decoded} rows, expected ${ROWS}`);
      decodeRuns.push({ rowsPerS: ROWS / ((performance.now() - t0) / 1000), cpuPerRow: (cpuMicros() - c0) / ROWS });

      // The emulator: one load job replacing the hour with every file.
      globalThis.gc?.();
      t0 = performance.now();
      c0 = cpuMicros();
      const [job] = await bq.createJob({
        jobId: `bench-${round}-${Date.now()}`,
        configuration: {
          load: {
            sourceUris: ['gs://bench-bq/part-*.avro'],
            sourceFormat: 'AVRO',
            useAvroLogicalTypes: true,
            writeDisposition: 'WRITE_TRUNCATE',
            timePartitioning: { type: 'HOUR', field: 'ts' }, // used by the first round, which creates the table
            destinationTable: { projectId, datasetId: 'bench', tableId: 'events$2024010112' },
          },
        },
      });
      let meta = job.metadata;
      for (let i = 0; meta.status.state !== 'DONE'; i++) {
        if (i > 100_000) throw new Error('load did not finish');
        await new Promise((r) => setTimeout(r, 2));
        [meta] = await job.getMetadata();
      }
      if (meta.status.errorResult !== undefined) throw new Error(`load failed: ${meta.status.errorResult.message}`);
      if (meta.statistics.load.outputRows !== String(ROWS)) throw new Error(`loaded ${meta.statistics.load.outputRows} rows, expected ${ROWS}`);
      loadRuns.push({ rowsPerS: ROWS / ((performance.now() - t0) / 1000), cpuPerRow: (cpuMicros() - c0) / ROWS });
    }
    const [table] = await bq.dataset('bench').table('events$2024010112').getMetadata();
    if (table.numRows !== String(ROWS)) throw new Error(`partition holds ${table.numRows} rows after WRITE_TRUNCATE, expected ${ROWS}`);

    const d = { rowsPerS: median(decodeRuns.map((r) => r.rowsPerS)), cpu: median(decodeRuns.map((r) => r.cpuPerRow)) };
    const l = { rowsPerS: median(loadRuns.map((r) => r.rowsPerS)), cpu: median(loadRuns.map((r) => r.cpuPerRow)) };
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    console.log(`baseline  avsc bare decode         ${fmt(d.rowsPerS).padStart(10)} rows/s   ${d.cpu.toFixed(2).padStart(6)} CPU µs/row`);
    console.log(`emulator  load job (GCS → table)   ${fmt(l.rowsPerS).padStart(10)} rows/s   ${l.cpu.toFixed(2).padStart(6)} CPU µs/row`);
    console.log(`ratio     load / bare decode       ${(l.rowsPerS / d.rowsPerS).toFixed(2).padStart(10)} ×        ${(l.cpu / d.cpu).toFixed(2).padStart(6)} × CPU`);
  } finally {
    await bqEmulator.close();
    await gcs.close();
  }
}

await main();
