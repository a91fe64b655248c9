/**
 * `npm run bench etl`: one ETL worker process draining a backlog from the
 * Pub/Sub emulator (decode → stage → ack) while it closes an hour, against
 * the best a minimal program does on the same emulator in the same run:
 *
 * - ceiling, library defaults: a process that only acks, with the Pub/Sub
 *   client's own defaults (flow control 1000 messages / 100 MiB, 5 streams,
 *   no heap cap): the baseline of the target (worker ≥ 0.70 of it);
 * - ceiling, best settings: the same ack-only process with the best settings
 *   found (`BENCH_ETL_BEST`, JSON, to try others);
 * - worker: `startEtlWorkers` with the ETL's defaults (etl/config.ts) under the
 *   recommended heap cap, closing on: before it starts, an hour of
 *   `BENCH_ETL_CLOSE_HOUR` (100,000) records is staged for its type, complete
 *   (audit count written), so its closer merges and writes that hour while it
 *   drains. Target: peak RSS < 300 MB.
 *
 * Each drain runs in a child process (this file with `raw`/`worker`) on a
 * fresh backlog of `BENCH_ETL_EVENTS` (100,000) page views, so its CPU and
 * memory are its own; `BENCH_ETL_RUNS` (3) rounds, the order of the three
 * drains rotating each round so none always runs on the warmest emulator.
 * Printed: events/s and CPU µs per event (process CPU / events: the emulator
 * caps wall-clock rates, and the machine is shared), peak RSS, as median
 * (min–max) over the rounds, and worker / ceiling ratios of the medians.
 * `BENCH_ETL_WORKER` (JSON) overrides the worker's subscriber settings and heap cap;
 * `BENCH_ETL_CPU_PROF=<dir>` writes each drain's `--cpu-prof` profile there.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Message } from '@google-cloud/pubsub';
import { startPubSubEmulator } from '../emulators/google/google.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { silentLogger } from '../lib/logger.ts';
import { periodOf } from '../lib/partitions.ts';
import { resourceNames } from '../lib/names.ts';
import { startEtlWorkers } from '../etl/workers.ts';
import { defaultTuning } from '../etl/config.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, publishEvents } from '../test/support/etl.ts';
import { showSpread, spread } from './etl-harness.ts';
import { recordBenchResult } from './results.ts';
import { stageHour } from './close-staging.ts';

const EVENTS = Number(process.env.BENCH_ETL_EVENTS ?? 100_000);
const CLOSE_HOUR = Number(process.env.BENCH_ETL_CLOSE_HOUR ?? 100_000);
const RUNS = Number(process.env.BENCH_ETL_RUNS ?? 3);
const HOUR = 3_600_000;
/** The heap cap etl/README.md prescribes (`NODE_OPTIONS=--max-old-space-size`), MB. */
const ETL_HEAP_MB = 160;

/** Subscriber settings of a drain. */
interface ClientSettings {
  maxMessages: number;
  maxBytes: number;
  maxStreams: number;
  /** V8 old-space limit of the drain process (`--max-old-space-size`), MB; absent: Node's default. */
  heapMb?: number;
}

const override = (name: string): Partial<ClientSettings> => (process.env[name] === undefined ? {} : (JSON.parse(process.env[name]!) as Partial<ClientSettings>));

/** The Pub/Sub client's own defaults (its default-options: 1000 messages, 100 MiB, 5 streams). */
const LIBRARY: ClientSettings = { maxMessages: 1000, maxBytes: 100 * 1024 * 1024, maxStreams: 5 };
/**
 * The best ack-only settings found on this emulator: each streaming pull delivers at its own pace, so
 * more streams (16: 16,600 events/s against 14,900 with 8 and 8,800 with the library's 5) and more
 * messages in flight (1000 with 8 streams: 6,900).
 */
const BEST: ClientSettings = { maxMessages: 4000, maxBytes: 100 * 1024 * 1024, maxStreams: 16, ...override('BENCH_ETL_BEST') };
/** What a deployment runs with: etl/config.ts's defaults under the README's heap cap. */
const WORKER: ClientSettings = {
  maxMessages: defaultTuning.maxMessagesInFlight,
  maxBytes: defaultTuning.maxBytesInFlight,
  maxStreams: defaultTuning.maxStreams,
  heapMb: ETL_HEAP_MB,
  ...override('BENCH_ETL_WORKER'),
};

type DrainKind = 'library' | 'best' | 'worker';
const DRAINS: Record<DrainKind, { mode: 'raw' | 'worker'; settings: ClientSettings; label: string }> = {
  library: { mode: 'raw', settings: LIBRARY, label: 'ceiling, ack-only, client library defaults' },
  best: { mode: 'raw', settings: BEST, label: 'ceiling, ack-only, best settings found' },
  worker: { mode: 'worker', settings: WORKER, label: `etl worker (decode → stage → ack), closing an hour of ${CLOSE_HOUR} meanwhile` },
};

interface DrainResult {
  events: number;
  seconds: number;
  cpuUs: number;
  peakRssMb: number;
  /** Worker only: whether the staged hour was closed, and when its close ended (s after the drain's start). */
  closed?: boolean;
  closedAtS?: number;
}

interface ChildArgs {
  settings: ClientSettings;
  pubsubHost: string;
  gcsUrl: string;
  staging: string;
  data: string;
  subscription: string;
  eventType: string;
}

async function childMode(mode: 'raw' | 'worker'): Promise<void> {
  const args = JSON.parse(process.argv[3]!) as ChildArgs;
  const { settings } = args;
  const pubsub = createPubSub({ projectId: 'bench-project', emulatorHost: args.pubsubHost });
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const cpu0 = process.cpuUsage();
  let t0 = 0;
  let done = 0;
  let closedAtS: number | undefined;
  let close: () => Promise<void>;
  let closed = (): boolean => true;
  if (mode === 'raw') {
    const sub = pubsub.subscription(args.subscription, {
      flowControl: { maxMessages: settings.maxMessages, maxBytes: settings.maxBytes, allowExcessMessages: false },
      streamingOptions: { maxStreams: settings.maxStreams },
    });
    sub.on('message', (m: Message) => {
      if (t0 === 0) t0 = performance.now();
      m.ack();
      done++;
    });
    close = () => sub.close();
  } else {
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(args.eventType), 0);
    const storage = createStorage({ projectId: 'bench-project', apiEndpoint: args.gcsUrl });
    const workers = await startEtlWorkers({
      projectId: 'bench-project',
      pubsub,
      storage,
      stagingBucket: args.staging,
      dataBucket: args.data,
      registry,
      eventTypes: [args.eventType],
      logger: silentLogger,
      // Closing on, its first pass 1 s after the start so the staged hour closes during the drain.
      tuning: { maxMessagesInFlight: settings.maxMessages, maxBytesInFlight: settings.maxBytes, maxStreams: settings.maxStreams, closeCheckIntervalMs: 1000 },
    });
    const poll = setInterval(() => {
      const s = workers.stats()[args.eventType];
      if (s === undefined) return;
      if (t0 === 0 && s.received > 0) t0 = performance.now();
      done = s.acked;
      if (closedAtS === undefined && s.partitionsClosed > 0 && t0 > 0) closedAtS = (performance.now() - t0) / 1000;
    }, 10);
    closed = () => closedAtS !== undefined;
    close = async () => {
      clearInterval(poll);
      await workers.close();
    };
  }
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (done >= EVENTS) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // The hour's close, if still running, counts in the peak RSS too (bounded wait).
  for (let i = 0; i < 600 && !closed(); i++) await new Promise((r) => setTimeout(r, 100));
  clearInterval(sampler);
  const result: DrainResult = {
    events: done,
    seconds,
    cpuUs: (cpu.user + cpu.system) / done,
    peakRssMb: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1e6,
    ...(mode === 'worker' ? { closed: closed(), ...(closedAtS === undefined ? {} : { closedAtS }) } : {}),
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  await close();
  await pubsub.close();
  process.exit(0);
}

function runChild(mode: 'raw' | 'worker', args: ChildArgs): Promise<DrainResult> {
  return new Promise((resolve, reject) => {
    const heap = args.settings.heapMb === undefined ? [] : [`--max-old-space-size=${args.settings.heapMb}`];
    const prof = process.env.BENCH_ETL_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_ETL_CPU_PROF}/${mode}`];
    const child = spawn(process.execPath, [...heap, ...prof, '--import', 'tsx', fileURLToPath(import.meta.url), mode, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line === undefined) reject(new Error(`${mode} child exited ${code} without a result`));
      else resolve(JSON.parse(line.slice(7)) as DrainResult);
    });
  });
}

/** Stages a complete hour of `size` page views for `eventType` (files of 10,000, audit count written), as a worker would have. */
async function pubsubBench(): Promise<void> {
  const ps = await startPubSubEmulator();
  const gcs = await startGcsEmulator();
  try {
    const pubsub = createPubSub({ projectId: 'bench-project', emulatorHost: ps.host });
    const storage = createStorage({ projectId: 'bench-project', apiEndpoint: gcs.url });
    const [staging] = await storage.createBucket('bench-staging');
    await storage.createBucket('bench-data');
    const start = Date.now() - HOUR;
    const events = makeEvents(EVENTS, (i) => start + (i % 3_000_000), 'b');
    const closedPeriod = periodOf(Date.now() - 3 * HOUR, 'hourly');
    const kinds: DrainKind[] = ['library', 'best', 'worker'];
    const results: Record<DrainKind, DrainResult[]> = { library: [], best: [], worker: [] };
    console.log(`${RUNS} rounds; each drain a fresh backlog of ${EVENTS} page views in a child process; drain order rotates every round`);
    for (const [kind, d] of Object.entries(DRAINS)) console.log(`  ${kind}: ${d.label} ${JSON.stringify(d.settings)}`);
    for (let round = 0; round < RUNS; round++) {
      const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]!);
      for (const kind of order) {
        const d = DRAINS[kind];
        const eventType = `bench_page_view_${round}`;
        const topicName = d.mode === 'worker' ? resourceNames.topic(eventType) : `bench-raw-${kind}-${round}`;
        const subName = d.mode === 'worker' ? resourceNames.etlSubscription(eventType) : `bench-raw-${kind}-${round}`;
        if (d.mode === 'worker') {
          await pubsub.createTopic(resourceNames.deadLetterTopic(eventType));
          await stageHour(staging, eventType, closedPeriod, CLOSE_HOUR, 10_000);
        }
        const [topic] = await pubsub.createTopic(topicName);
        await topic.createSubscription(subName, { ackDeadlineSeconds: 60 });
        await publishEvents(topic, eventType, pageViewSchema, events);
        const r = await runChild(d.mode, { settings: d.settings, pubsubHost: ps.host, gcsUrl: gcs.url, staging: 'bench-staging', data: 'bench-data', subscription: subName, eventType });
        results[kind].push(r);
        const close = d.mode === 'worker' ? `, hour closed: ${r.closed === true ? `yes, ${r.closedAtS!.toFixed(1)} s into a ${r.seconds.toFixed(1)} s drain` : 'NO'}` : '';
        console.log(`  round ${round + 1} ${kind}: ${(r.events / r.seconds).toFixed(0)} events/s, ${r.cpuUs.toFixed(1)} CPU µs/event, peak RSS ${r.peakRssMb.toFixed(0)} MB${close}`);
        await pubsub.subscription(subName).delete();
        await topic.delete();
      }
    }
    const rate = (k: DrainKind): number[] => results[k].map((r) => r.events / r.seconds);
    const us = (n: number): string => n.toFixed(1);
    console.log('median (min–max):');
    for (const kind of kinds) {
      console.log(
        `  ${DRAINS[kind].label}: ${showSpread(rate(kind))} events/s, ${showSpread(results[kind].map((r) => r.cpuUs), us)} CPU µs/event, ` +
          `peak RSS ${showSpread(results[kind].map((r) => r.peakRssMb))} MB`,
      );
    }
    const worker = spread(rate('worker')).median;
    const vsLibrary = worker / spread(rate('library')).median;
    const vsBest = worker / spread(rate('best')).median;
    const rss = spread(results.worker.map((r) => r.peakRssMb)).max;
    const allClosed = results.worker.every((r) => r.closed === true);
    recordBenchResult({
      etlCpuUsPerEvent: {
        value: spread(results.worker.map((r) => r.cpuUs)).median,
        unit: 'CPU µs/event',
        what: `ETL worker: decode → stage → ack, CPU per event drained from the Pub/Sub emulator (median of ${RUNS}; includes closing an hour of ${CLOSE_HOUR} records meanwhile)`,
      },
      etlEventsPerSecond: { value: worker, unit: 'events/s', what: 'ETL worker: events drained per second on this machine (bounded by the local emulator)' },
      etlPeakRssMb: { value: rss, unit: 'MB', what: 'ETL worker: peak RSS while draining and closing an hour (largest of the rounds)' },
      ackOnlyCpuUsPerEvent: { value: spread(results.library.map((r) => r.cpuUs)).median, unit: 'CPU µs/event', what: 'ack-only subscriber with the client library defaults (the ceiling)' },
    });
    console.log(`worker / ceiling with library defaults: ${vsLibrary.toFixed(2)} (target ≥ 0.70): ${vsLibrary >= 0.7 ? 'met' : 'MISSED'}; worker / best ceiling: ${vsBest.toFixed(2)}`);
    console.log(`worker peak RSS, largest of the rounds, closing an hour of ${CLOSE_HOUR} during the drain: ${rss.toFixed(0)} MB (target < 300 MB): ${rss < 300 && allClosed ? 'met' : 'MISSED'}${allClosed ? '' : ' (an hour did not close)'}`);
  } finally {
    await gcs.close();
    await ps.stop();
  }
}

const mode = process.argv[2];
if (mode === 'raw' || mode === 'worker') {
  await childMode(mode);
} else {
  await pubsubBench();
}
