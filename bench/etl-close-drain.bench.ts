/**
 * Does draining go on while a large hour closes? One worker process (heap cap
 * `BENCH_DRAIN_HEAP_MB`, default 160 as etl/README.md prescribes) drains a
 * backlog of purchases through the production pipeline (bench/etl-harness.ts:
 * only Pub/Sub replaced) once alone and once while the same process closes a
 * staged hour of `BENCH_DRAIN_CLOSE_SIZE` records (default 1,000,000, the
 * page-view shape in files of 10,000) with the production closer. Each round
 * stages a fresh hour; the order of the two drains alternates between rounds.
 * Prints, per round and as median (min–max) over `BENCH_DRAIN_ROUNDS` (3):
 * drain events/s alone and during the close, their ratio (target ≥ 0.7), the
 * process's CPU µs per drained event (during the close it includes the
 * close's CPU), and the close's records/s. A drain that outlasted the close
 * is flagged: its ratio then flatters the close.
 *
 * The GCS emulator runs in a child process of its own (`BENCH_GCS=child`
 * unless set), so the CPU figures are the worker's.
 * `BENCH_DRAIN_EVENTS` (40,000) is the backlog drained per measurement.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createStorage } from '../lib/gcp/clients.ts';
import { silentLogger } from '../lib/logger.ts';
import { periodOf } from '../lib/partitions.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { PartitionCloser } from '../etl/closer.ts';
import { resolveTuning } from '../etl/config.ts';
import type { TypeContext } from '../etl/context.ts';
import { LateWriter } from '../etl/late.ts';
import { newMetrics } from '../etl/metrics.ts';
import { SchemaResolver } from '../etl/schemas.ts';
import { eventTypeRecord, pageViewSchema } from '../test/support/etl.ts';
import { identityTransform } from '../etl/transform.ts';
import { stageHour } from './close-staging.ts';
import { cpuMicrosPerEvent, fmt, gc, perSecond, purchaseMessages, purchaseSchemaPlain, showSpread, startEtlHarness, startStagingEmulator, type RunFigures } from './etl-harness.ts';

const HOUR = 3_600_000;
const period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');

const int = (text: string | undefined, fallback: number): number => {
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
};
const rounds = int(process.env.BENCH_DRAIN_ROUNDS, 3);
const closeSize = int(process.env.BENCH_DRAIN_CLOSE_SIZE, 1_000_000);
const drainEvents = int(process.env.BENCH_DRAIN_EVENTS, 40_000);
const heapMb = int(process.env.BENCH_DRAIN_HEAP_MB, 160);

interface Round {
  alone: RunFigures;
  during: RunFigures;
  /** The close was still running when the drain during it finished. */
  overlapped: boolean;
  closeRecordsPerSecond: number;
  /** The worker process's peak resident memory so far (the close thread's included). */
  peakRssMb: number;
}

if (process.env.BENCH_DRAIN_CHILD === '1') {
  const { round, close } = await startWorker();
  for (let r = 0; r < rounds; r++) process.stdout.write(`${JSON.stringify(await round(r))}\n`);
  await close(); // the emulator's process too: left running, it would hold this bench's output open
  process.exit(0);
}

/** The worker: one harness (pipeline) and one storage client, reused by every round. */
async function startWorker(): Promise<{ round: (round: number) => Promise<Round>; close: () => Promise<void> }> {
  const gcs = await startStagingEmulator();
  const harness = await startEtlHarness(gcs, purchaseSchemaPlain, identityTransform);
  const messages = purchaseMessages(drainEvents, 1000);
  await harness.run(purchaseMessages(5000, 1000)); // warm-up: JIT, connections
  const storage = createStorage({ projectId: 'bench-project', apiEndpoint: gcs.url });
  const registry = new MemoryRegistryStore();
  const eventType = 'drain_close_bench';
  await registry.putEventType(eventTypeRecord(eventType, [pageViewSchema]), 0);

  const close = async (): Promise<void> => {
    await harness.close();
    await gcs.close();
  };
  const round = async (round: number): Promise<Round> => {
    const [staging] = await storage.createBucket(`drain-close-${round}-staging`);
    const [data] = await storage.createBucket(`drain-close-${round}-data`);
    await stageHour(staging, eventType, period, closeSize, 10_000);
    const ctx: TypeContext = {
      eventType,
      granularity: 'hourly',
      priority: 'normal',
      retentionDays: 30,
      staging,
      data,
      schemas: new SchemaResolver(eventType, registry, identityTransform, 0),
      tuning: resolveTuning({}),
      now: () => period.endMs + HOUR,
      logger: silentLogger,
      instanceId: 'drain-bench',
      metrics: newMetrics(),
    };
    const drainAlone = async (): Promise<RunFigures> => {
      gc();
      return harness.run(messages);
    };
    const drainDuringClose = async (): Promise<{ during: RunFigures; overlapped: boolean; closeRecordsPerSecond: number }> => {
      gc();
      let closed = false;
      const started = performance.now();
      const closing = new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false }).then((m) => {
        closed = true;
        return { manifest: m, seconds: (performance.now() - started) / 1000 };
      });
      const during = await harness.run(messages);
      const overlapped = !closed;
      const { manifest, seconds } = await closing;
      if (manifest?.recordCount !== closeSize) throw new Error(`closed ${manifest?.recordCount} records, expected ${closeSize}`);
      return { during, overlapped, closeRecordsPerSecond: closeSize / seconds };
    };
    let alone: RunFigures;
    let d: Awaited<ReturnType<typeof drainDuringClose>>;
    if (round % 2 === 0) {
      alone = await drainAlone();
      d = await drainDuringClose();
    } else {
      d = await drainDuringClose();
      alone = await drainAlone();
    }
    await staging.deleteFiles({ force: true }).catch(() => undefined);
    await data.deleteFiles({ force: true }).catch(() => undefined);
    return { alone, ...d, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  };
  return { round, close };
}

const self = fileURLToPath(import.meta.url);
const child = spawn(process.execPath, ['--expose-gc', `--max-old-space-size=${heapMb}`, '--import', 'tsx', self], {
  env: { ...process.env, BENCH_DRAIN_CHILD: '1', BENCH_GCS: process.env.BENCH_GCS ?? 'child' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
console.log(
  `drain of ${fmt(drainEvents)} purchases (production pipeline, Pub/Sub faked) alone vs during the close of a ${fmt(closeSize)}-record hour, ` +
    `in one worker process with --max-old-space-size=${heapMb}; GCS emulator in a child process; ${rounds} rounds`,
);
const results: Round[] = [];
let out = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk: string) => {
  out += chunk;
  for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
    const line = out.slice(0, nl);
    out = out.slice(nl + 1);
    const r = JSON.parse(line) as Round;
    results.push(r);
    console.log(
      `round ${results.length}: alone ${fmt(perSecond(r.alone))} events/s (${cpuMicrosPerEvent(r.alone).toFixed(1)} CPU µs/event); ` +
        `during the close ${fmt(perSecond(r.during))} events/s (${cpuMicrosPerEvent(r.during).toFixed(1)} CPU µs/event, the close's included); ` +
        `ratio ${(perSecond(r.during) / perSecond(r.alone)).toFixed(2)}; close ${fmt(r.closeRecordsPerSecond)} records/s; peak RSS ${Math.round(r.peakRssMb)} MB` +
        `${r.overlapped ? '' : ' — the close ended before the drain: ratio flattered'}`,
    );
  }
});
const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
if (code !== 0 || results.length !== rounds) {
  console.error(`drain bench child exited ${code} after ${results.length} of ${rounds} rounds`);
  process.exit(1);
}
const two = (n: number): string => n.toFixed(2);
const one = (n: number): string => n.toFixed(1);
console.log(`median (min–max) of ${rounds}:`);
console.log(`  drain alone:            ${showSpread(results.map((r) => perSecond(r.alone)))} events/s, ${showSpread(results.map((r) => cpuMicrosPerEvent(r.alone)), one)} CPU µs/event`);
console.log(`  drain during the close: ${showSpread(results.map((r) => perSecond(r.during)))} events/s, ${showSpread(results.map((r) => cpuMicrosPerEvent(r.during)), one)} CPU µs/event (the close's CPU included)`);
console.log(`  during / alone:         ${showSpread(results.map((r) => perSecond(r.during) / perSecond(r.alone)), two)} (target ≥ 0.70)`);
console.log(`  close:                  ${showSpread(results.map((r) => r.closeRecordsPerSecond))} records/s while draining; drains outlasted by the close: ${results.filter((r) => r.overlapped).length}/${rounds}`);
