/**
 * What closing one hour costs as the hour grows: the closer reads every staged
 * file of the period into memory, dedups and sorts by event id, then writes the
 * parts (etl/README.md, "Close"). This prints time and peak memory growth
 * (RSS and V8 heap, sampled every 20 ms) for hours of increasing size, so the
 * largest hour a worker's memory can close is a measured figure, not a guess.
 *
 * The GCS emulator runs in this process in directory mode, so the staged bytes
 * live on disk, not in the heap being measured. Each hour is staged as files of
 * 10,000 records (~110 bytes each, the page-view shape), 2% of them redelivered
 * duplicates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import avro from 'avsc';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../lib/gcs-emulator/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { periodOf } from '../lib/partitions.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { PartitionCloser } from '../etl/closer.ts';
import { resolveTuning } from '../etl/config.ts';
import type { TypeContext } from '../etl/context.ts';
import { idSetHash, type StagedRecord } from '../etl/envelope.ts';
import { buildStagedFile } from '../etl/files.ts';
import { LateWriter } from '../etl/late.ts';
import { stagedObjectName } from '../etl/layout.ts';
import { newMetrics } from '../etl/metrics.ts';
import { SchemaResolver } from '../etl/schemas.ts';
import { createIfAbsent } from '../etl/storage-io.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, writeAudit } from '../etl/test-support.ts';
import { identityTransform } from '../etl/transform.ts';

const SIZES = [50_000, 100_000, 200_000];
const PER_FILE = 10_000;
const HOUR = 3_600_000;
const projectId = 'bench-project';

const gc = (globalThis as { gc?: () => void }).gc;
const MiB = (n: number): string => (n / 2 ** 20).toFixed(0);

const dir = mkdtempSync(path.join(tmpdir(), 'etl-close-bench-'));
const gcs = await startGcsEmulator({ dir });
const storage = createStorage({ projectId, apiEndpoint: gcs.url });
const type = avro.Type.forSchema(pageViewSchema as avro.Schema);
const fingerprint = schemaFingerprint(pageViewSchema);

try {
  console.log(`hour of N records staged in files of ${PER_FILE}, 2% duplicates; closer peak growth over the idle process (after gc)`);
  for (const [i, size] of SIZES.entries()) {
    const eventType = `close_bench_${i}`;
    const period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');
    const [staging] = await storage.createBucket(`close-bench-staging-${i}`);
    const [data] = await storage.createBucket(`close-bench-data-${i}`);
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(eventType, [pageViewSchema]), 0);

    const events = makeEvents(size, (n) => period.startMs + Math.floor((n * HOUR) / size), `e${i}`);
    for (let from = 0; from < size; from += PER_FILE) {
      // Each file repeats the first 2% of the previous one: redeliveries the close drops.
      const slice = events.slice(Math.max(0, from - PER_FILE / 50), from + PER_FILE);
      const records: StagedRecord[] = slice.map((e) => ({ eventId: e.eventId, receiveTime: e.receiveTime, schemaFingerprint: fingerprint, stats: {}, record: type.toBuffer(e.payload) }));
      const name = stagedObjectName(eventType, period, idSetHash(records.map((r) => r.eventId)));
      await createIfAbsent(staging, name, buildStagedFile(name, eventType, period, records));
    }
    await writeAudit(storage, staging.name, eventType, events);

    const ctx: TypeContext = {
      eventType,
      granularity: 'hourly',
      priority: 'normal',
      staging,
      data,
      schemas: new SchemaResolver(eventType, registry, identityTransform, 0),
      tuning: resolveTuning({}),
      now: () => period.endMs + HOUR,
      logger: silentLogger,
      instanceId: 'close-bench',
      metrics: newMetrics(),
    };
    gc?.();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakHeap = base.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 20);
    const started = performance.now();
    const manifest = await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    if (manifest?.recordCount !== size) throw new Error(`closed ${manifest?.recordCount} records, expected ${size}`);
    const heapGrowth = peakHeap - base.heapUsed;
    console.log(
      `${String(size).padStart(7)} records: closed in ${seconds.toFixed(1)} s (${(size / seconds).toFixed(0)} records/s); ` +
        `peak growth RSS +${MiB(peakRss - base.rss)} MiB, heap +${MiB(heapGrowth)} MiB (${(heapGrowth / size).toFixed(0)} bytes/record)`,
    );
    await staging.deleteFiles({ force: true }).catch(() => undefined);
    await data.deleteFiles({ force: true }).catch(() => undefined);
  }
} finally {
  await gcs.close();
  rmSync(dir, { recursive: true, force: true });
}
