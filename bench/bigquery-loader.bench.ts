/**
 * The BigQuery loader's overhead per partition (etl/README.md, "BigQuery
 * loading"): what loading a closed hour costs through `BigQueryLoader` (find
 * it, read `_SUCCESS` and `_LOADED`, get/patch the table, insert the job under
 * its deterministic id, poll it, verify the partition's row count, write
 * `_LOADED`) against a baseline measured in the same run: the bare minimum any
 * loader pays, one `jobs.insert` of the same part files into the same kind of
 * partition and `jobs.get` polls until DONE (on the loader's polling
 * schedule), through the same official client.
 *
 * The GCS and BigQuery emulators run in this process, so CPU figures include
 * the emulators' work for both sides; the difference is the loader's.
 * Medians of several runs, each on fresh tables; hours of two sizes, so a
 * per-partition (not per-row) overhead shows as a constant.
 */
import avro from 'avsc';
import { startBigQueryEmulator } from '../emulators/bigquery/index.ts';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { createBigQuery, createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { partObjectName, periodOf, successObjectName, type Period } from '../lib/partitions.ts';
import { BigQueryLoader } from '../etl/bigquery-load.ts';
import { loadConfiguration } from '../etl/bigquery-jobs.ts';
import { tableSchemaOf } from '../etl/bigquery-schema.ts';
import { buildManifest, summarizeRecords } from '../etl/closer.ts';
import { resolveTuning } from '../etl/config.ts';
import type { StagedRecord } from '../etl/envelope.ts';
import { buildDeliveredFile, checksumsOf } from '../etl/files.ts';
import { makeEvents, pageViewSchema } from '../test/support/etl.ts';

const HOUR = 3_600_000;
const PARTITIONS = 8;
const ROWS = [1_000, 20_000];
const RUNS = 5;
const POLL_MS = 20;
const projectId = 'bench-project';

const gcs = await startGcsEmulator();
const bqEmulator = await startBigQueryEmulator({ gcsEndpoint: gcs.url });
const storage = createStorage({ projectId, apiEndpoint: gcs.url });
const bq = createBigQuery({ projectId, apiEndpoint: bqEmulator.url });
const [data] = await storage.createBucket('bq-loader-bench-data');
const payloadType = avro.Type.forSchema(pageViewSchema as avro.Schema);
const fingerprint = schemaFingerprint(pageViewSchema);
const tuning = resolveTuning({ loadJobPollMs: POLL_MS, loadLookbackMs: 30 * 24 * HOUR });
const base = Date.UTC(2026, 10, 2, 0);

/** Writes `PARTITIONS` closed hours of `rows` records each (part file + `_SUCCESS`), as the closer does. */
async function closedHours(eventType: string, rows: number): Promise<Period[]> {
  const periods: Period[] = [];
  for (let h = 0; h < PARTITIONS; h++) {
    const period = periodOf(base + h * HOUR, 'hourly');
    const records: StagedRecord[] = makeEvents(rows, (i) => period.startMs + Math.floor((i * HOUR) / rows), `${eventType}-${h}`).map((e) => ({
      eventId: e.eventId,
      receiveTime: e.receiveTime,
      schemaFingerprint: fingerprint,
      stats: {},
      record: payloadType.toBuffer(e.payload),
    }));
    const name = partObjectName(eventType, period, 0);
    const bytes = buildDeliveredFile(name, eventType, period, fingerprint, pageViewSchema, records);
    await data.file(name).save(bytes, { resumable: false });
    const sums = checksumsOf(bytes);
    const manifest = buildManifest({
      eventType,
      period,
      delivered: summarizeRecords(records),
      files: [{ name, size: sums.size, crc32c: sums.crc32c, md5Hash: sums.md5Hash, recordCount: rows, schemaFingerprint: fingerprint }],
      fingerprints: [fingerprint],
      deliveredSchemas: { [fingerprint]: pageViewSchema },
      accepted: rows,
      duplicatesDropped: 0,
      closedBy: 'complete',
      lateCount: 0,
    });
    await data.file(successObjectName(eventType, period)).save(JSON.stringify(manifest, null, 2), { resumable: false });
    periods.push(period);
  }
  return periods;
}

interface Figures {
  msPerPartition: number;
  cpuMsPerPartition: number;
}

async function measure(f: () => Promise<void>): Promise<Figures> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await f();
  const ms = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { msPerPartition: ms / PARTITIONS, cpuMsPerPartition: (used.user + used.system) / 1000 / PARTITIONS };
}

/** Baseline: one load job per partition into a table that already exists, polled until DONE. */
async function bareJobs(eventType: string, dataset: string, periods: Period[]): Promise<Figures> {
  await bq.dataset(dataset).createTable(eventType, {
    schema: { fields: tableSchemaOf(pageViewSchema) },
    timePartitioning: { type: 'HOUR', field: 'receiveTime' },
  });
  return measure(async () => {
    for (const [i, period] of periods.entries()) {
      const load = loadConfiguration({
        target: { projectId, datasetId: dataset, tableId: eventType },
        period,
        sourceUris: [`gs://${data.name}/${partObjectName(eventType, period, 0)}`],
        writeDisposition: 'WRITE_TRUNCATE',
        allowSchemaUpdates: false,
      });
      const [job] = await bq.createJob({ jobId: `bench_${eventType}_${i}`, configuration: { load } });
      // The loader's polling schedule (first delay doubling up to 8×), so only the loader's own work differs.
      for (let delay = POLL_MS; ; delay = Math.min(delay * 2, POLL_MS * 8)) {
        const [meta] = (await job.getMetadata()) as unknown as [{ status: { state: string; errorResult?: unknown } }];
        if (meta.status.state === 'DONE') {
          if (meta.status.errorResult !== undefined) throw new Error(JSON.stringify(meta.status.errorResult));
          break;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  });
}

/** The loader: one pass finds and loads every closed hour (table created on the first). */
async function loaderPass(eventType: string, dataset: string): Promise<Figures> {
  const loader = new BigQueryLoader({
    eventType,
    granularity: 'hourly',
    retentionDays: 30,
    description: 'bench',
    data,
    target: { client: bq, dataset },
    tuning,
    multipleVersions: () => false,
    now: () => base + PARTITIONS * HOUR + HOUR,
    logger: silentLogger,
  });
  const figures = await measure(async () => {
    if (!(await loader.pass())) throw new Error(`loader pass failed: ${JSON.stringify(loader.stopped)}`);
  });
  if (loader.metrics.partitionsLoaded !== PARTITIONS) throw new Error(`loaded ${loader.metrics.partitionsLoaded} of ${PARTITIONS} partitions`);
  return figures;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  console.log(`${PARTITIONS} closed hours per run, ${RUNS} runs each, medians; emulators in process (CPU includes theirs)`);
  console.log('rows/hour | bare job ms/partition | loader ms/partition | overhead ms | ratio | bare CPU ms | loader CPU ms | overhead CPU ms');
  let n = 0;
  for (const rows of ROWS) {
    const bare: Figures[] = [];
    const ours: Figures[] = [];
    for (let run = 0; run < RUNS; run++) {
      const a = `bench_bare_${n}`;
      const b = `bench_loader_${n}`;
      n++;
      const [periodsA] = [await closedHours(a, rows), await closedHours(b, rows)];
      await bq.createDataset(`ds_${a}`);
      // Alternate which goes first, so neither always runs on a warmer process.
      if (run % 2 === 0) {
        bare.push(await bareJobs(a, `ds_${a}`, periodsA));
        ours.push(await loaderPass(b, `ds_${b}`));
      } else {
        ours.push(await loaderPass(b, `ds_${b}`));
        bare.push(await bareJobs(a, `ds_${a}`, periodsA));
      }
    }
    const bm = median(bare.map((f) => f.msPerPartition));
    const lm = median(ours.map((f) => f.msPerPartition));
    const bc = median(bare.map((f) => f.cpuMsPerPartition));
    const lc = median(ours.map((f) => f.cpuMsPerPartition));
    console.log(
      [rows, bm.toFixed(1), lm.toFixed(1), (lm - bm).toFixed(1), (lm / bm).toFixed(2), bc.toFixed(1), lc.toFixed(1), (lc - bc).toFixed(1)].join(' | '),
    );
  }
} finally {
  await bqEmulator.close();
  await gcs.close();
}
