/**
 * What closing one hour costs as the hour grows. The closer merges the sorted
 * staged files (etl/README.md, "Close"), so its memory should stay flat and its
 * throughput constant whatever the hour's size: this prints, per hour size,
 * records/s, CPU µs per record and the closer's peak V8 heap (the main thread's
 * plus the close thread's at the same moments, per 100 ms: etl/close-thread.ts)
 * and RSS, and the
 * throughput of each size relative to the smallest (the baseline of this run).
 *
 * The GCS emulator runs in this process (directory mode: bytes on disk); each
 * close runs in a child process of its own with the worker's heap cap
 * (`BENCH_CLOSE_HEAP_MB`, default 160 as etl/README.md prescribes), so the
 * child's figures are the closer's alone and a close that needed more heap
 * would fail, not just print a larger number. The child's idle heap (its
 * modules: storage client, registry, avsc) is printed beside the peak. Each hour is staged as files of `BENCH_CLOSE_PER_FILE`
 * records (default 10,000; ~110 bytes each, the page-view shape), each file
 * repeating the last 2% of the previous one (redeliveries the close drops).
 *
 * `BENCH_CLOSE_SIZES=200000,1000000,5000000` (default) picks the hours,
 * `BENCH_CLOSE_RUNS=1` the closes per size (the median is printed),
 * `BENCH_CLOSE_FAN_IN` the merge fan-in (default: the tuning's).
 */
import { recordBenchResult } from './results.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStorage } from '../lib/gcp/storage.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { periodOf, type Period } from '../lib/partitions.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { PartitionCloser } from '../etl/closer.ts';
import { HEAP_TICK_MS, trackCloseThreadHeap } from '../etl/close-thread.ts';
import { resolveTuning } from '../etl/config.ts';
import type { TypeContext } from '../etl/context.ts';
import { LateWriter } from '../etl/late.ts';
import { newMetrics } from '../etl/metrics.ts';
import { SchemaResolver } from '../etl/schemas.ts';
import { eventTypeRecord, pageViewSchema } from '../test/support/etl.ts';
import { stageHour } from './close-staging.ts';
import { identityTransform } from '../etl/transform.ts';

const HOUR = 3_600_000;
const projectId = 'bench-project';
const period: Period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');

interface CloseJob {
  url: string;
  eventType: string;
  staging: string;
  data: string;
  size: number;
  fanIn?: number;
}

interface CloseResult {
  records: number;
  seconds: number;
  cpuMicros: number;
  /** Peak of the main thread's heap plus the close thread's at the same moments (`threadHeap`: the thread's own peak; 0 if the hour merged in process). */
  peakHeap: number;
  threadHeap: number;
  peakRss: number;
  baseHeap: number;
  baseRss: number;
}

const intList = (text: string | undefined, fallback: number[]): number[] => {
  const list = (text ?? '').split(',').map((s) => Number(s.trim())).filter((n) => Number.isSafeInteger(n) && n > 0);
  return list.length > 0 ? list : fallback;
};

if (process.env.BENCH_CLOSE_JOB !== undefined) {
  process.stdout.write(`${JSON.stringify(await closeInThisProcess(JSON.parse(process.env.BENCH_CLOSE_JOB) as CloseJob))}\n`);
  process.exit(0);
}

/** The child: one close, measured. */
async function closeInThisProcess(job: CloseJob): Promise<CloseResult> {
  const storage = createStorage({ projectId, apiEndpoint: job.url });
  const registry = new MemoryRegistryStore();
  await registry.putEventType(eventTypeRecord(job.eventType, [pageViewSchema]), 0);
  const ctx: TypeContext = {
    eventType: job.eventType,
    granularity: 'hourly',
    priority: 'normal',
    retentionDays: 30,
    staging: storage.bucket(job.staging),
    data: storage.bucket(job.data),
    schemas: new SchemaResolver(job.eventType, registry, identityTransform, 0),
    tuning: resolveTuning(job.fanIn === undefined ? {} : { closeMergeFanIn: job.fanIn }),
    now: () => period.endMs + HOUR,
    logger: silentLogger,
    instanceId: 'close-bench',
    metrics: newMetrics(),
  };
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  /** This thread's heap, the largest per tick (as a close thread reports its own). */
  const heapByTick = new Map<number, number>();
  const sample = (): void => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    const tick = Math.floor(Date.now() / HEAP_TICK_MS);
    heapByTick.set(tick, Math.max(heapByTick.get(tick) ?? 0, m.heapUsed));
  };
  sample();
  const sampler = setInterval(sample, 20);
  const threads = trackCloseThreadHeap();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const manifest = await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  clearInterval(sampler);
  sample();
  // A large hour merges in a close thread (etl/close-thread.ts): its heap is its own, added to this
  // thread's at the same moments (per tick, each side's largest; this side's last sample carried forward).
  const threadHeap = Math.max(0, ...threads.values());
  let peakHeap = 0;
  let here = base.heapUsed;
  for (const tick of [...new Set([...heapByTick.keys(), ...threads.keys()])].sort((a, b) => a - b)) {
    here = heapByTick.get(tick) ?? here;
    peakHeap = Math.max(peakHeap, here + (threads.get(tick) ?? 0));
  }
  if (manifest?.recordCount !== job.size) throw new Error(`closed ${manifest?.recordCount} records, expected ${job.size}`);
  return { records: manifest.recordCount, seconds, cpuMicros: used.user + used.system, peakHeap, threadHeap, peakRss, baseHeap: base.heapUsed, baseRss: base.rss };
}

function runChild(job: CloseJob, heapMb: number): Promise<CloseResult> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', `--max-old-space-size=${heapMb}`, ...(process.env.BENCH_CLOSE_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CLOSE_CPU_PROF}`]), '--import', 'tsx', self], {
      env: { ...process.env, BENCH_CLOSE_JOB: JSON.stringify(job) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`close of ${job.size} records exited ${code} (heap cap ${heapMb} MB)`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as CloseResult);
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MiB = (n: number): string => (n / 2 ** 20).toFixed(0);

const sizes = intList(process.env.BENCH_CLOSE_SIZES, [200_000, 1_000_000, 5_000_000]);
const perFile = intList(process.env.BENCH_CLOSE_PER_FILE, [10_000])[0]!;
const runs = intList(process.env.BENCH_CLOSE_RUNS, [1])[0]!;
const heapMb = intList(process.env.BENCH_CLOSE_HEAP_MB, [160])[0]!;
const fanIn = process.env.BENCH_CLOSE_FAN_IN === undefined ? undefined : intList(process.env.BENCH_CLOSE_FAN_IN, [])[0];

const dir = mkdtempSync(path.join(tmpdir(), 'etl-close-bench-'));
const gcs = await startGcsEmulator({ dir });
const storage = createStorage({ projectId, apiEndpoint: gcs.url });
try {
  console.log(
    `hour of N records staged in files of ${perFile} (2% redelivered); each close in a child with --max-old-space-size=${heapMb}` +
      `${fanIn === undefined ? '' : `, merge fan-in ${fanIn}`}; median of ${runs} close(s); peaks are the child's whole process`,
  );
  let baseline: number | undefined;
  for (const [i, size] of sizes.entries()) {
    const eventType = `close_bench_${i}`;
    const [staging] = await storage.createBucket(`close-bench-staging-${i}`);
    const [data] = await storage.createBucket(`close-bench-data-${i}`);
    const files = await stageHour(staging, eventType, period, size, perFile);
    const results: CloseResult[] = [];
    for (let r = 0; r < runs; r++) {
      if (r > 0) {
        // Close the same staged hour again from scratch: the first close deleted what it staged.
        await data.deleteFiles({ force: true });
        await staging.deleteFiles({ force: true });
        await stageHour(staging, eventType, period, size, perFile);
      }
      results.push(await runChild({ url: gcs.url, eventType, staging: staging.name, data: data.name, size, fanIn }, heapMb));
    }
    const rate = median(results.map((x) => x.records / x.seconds));
    const cpu = median(results.map((x) => x.cpuMicros / x.records));
    const heap = median(results.map((x) => x.peakHeap));
    const rss = median(results.map((x) => x.peakRss));
    const idleHeap = median(results.map((x) => x.baseHeap));
    const threadHeap = median(results.map((x) => x.threadHeap));
    baseline ??= rate;
    recordBenchResult({
      [`closeCpuUsPerRecord_${size}`]: { value: cpu, unit: 'CPU µs/record', what: `closing an hour of ${size} records (merge, dedup, parts, manifest)` },
      [`closeRecordsPerSecond_${size}`]: { value: rate, unit: 'records/s', what: `closing an hour of ${size} records, one process` },
      [`closePeakHeapMb_${size}`]: { value: heap / 2 ** 20, unit: 'MiB', what: `closer's peak V8 heap, hour of ${size} records, --max-old-space-size=${heapMb}` },
    });
    console.log(
      `${String(size).padStart(8)} records (${files} staged files): ${rate.toFixed(0)} records/s, ${cpu.toFixed(1)} CPU µs/record, ` +
        `peak heap ${MiB(heap)} MiB (idle ${MiB(idleHeap)}${threadHeap > 0 ? `; the close thread's own peak ${MiB(threadHeap)}` : ''}), peak RSS ${MiB(rss)} MiB; throughput ${(rate / baseline).toFixed(2)}× the ${sizes[0]}-record hour's`,
    );
    await staging.deleteFiles({ force: true }).catch(() => undefined);
    await data.deleteFiles({ force: true }).catch(() => undefined);
  }
} finally {
  await gcs.close();
  rmSync(dir, { recursive: true, force: true });
}
