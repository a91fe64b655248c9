/**
 * `npm run bench etl`:
 * 1. Throughput of one ETL worker process (decode → stage → ack) draining a
 *    backlog from the Pub/Sub emulator, next to the emulator's raw ceiling
 *    measured in the same run by a process that only acks; CPU µs per event;
 *    peak RSS of the worker (target < 300 MB); target ≥ 70% of the ceiling.
 * 2. The processing path alone (decode → transform → Avro file bytes), next
 *    to avsc's bare decode+encode of the same records.
 * Each drain runs in a child process (this file with `worker`/`raw`), so its
 * CPU and memory are its own. Drains: ack-only and worker with the ETL's
 * subscriber defaults under the recommended heap cap, then ack-only with the
 * client library's defaults (no cap), each on a fresh 200,000-message backlog.
 */
import { recordBenchResult } from './results.ts';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { Message } from '@google-cloud/pubsub';
import { startPubSubEmulator } from '../emulators/google/google.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { silentLogger } from '../lib/logger.ts';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { periodOf } from '../lib/partitions.ts';
import { resourceNames } from '../lib/names.ts';
import { startEtlWorkers } from '../etl/workers.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, publishEvents } from '../test/support/etl.ts';
import { buildStagedFile } from '../etl/files.ts';
import type { StagedRecord } from '../etl/envelope.ts';
import { identityTransform, type RecordTransform } from '../etl/transform.ts';
import { defaultTuning } from '../etl/config.ts';

const EVENTS = Number(process.env.BENCH_ETL_EVENTS ?? 200_000);
const TYPE = 'bench_page_view';
/**
 * Live memory of a drain is small (≈70 MB by a full GC every second); the
 * rest of the RSS is garbage V8 keeps while its heap grows. A deployment caps
 * it with NODE_OPTIONS=--max-old-space-size (etl/README.md); the bench runs
 * the ETL-settings drains with the same cap.
 */
const ETL_HEAP_MB = 160;

/** Subscriber settings a drain runs with (the same for the ack-only ceiling and the worker). */
interface ClientSettings {
  label: string;
  maxMessages: number;
  maxBytes: number;
  maxStreams: number;
  /** V8 old-space limit of the drain process (`--max-old-space-size`), MB; absent: Node's default. */
  heapMb?: number;
}

/** The ETL's defaults (etl/config.ts), what a deployment runs with; `BENCH_ETL_SETTINGS` (JSON) overrides them to experiment. */
const TUNED: ClientSettings = {
  label: 'etl defaults',
  maxMessages: defaultTuning.maxMessagesInFlight,
  maxBytes: defaultTuning.maxBytesInFlight,
  maxStreams: defaultTuning.maxStreams,
  heapMb: ETL_HEAP_MB,
  ...(process.env.BENCH_ETL_SETTINGS === undefined ? {} : (JSON.parse(process.env.BENCH_ETL_SETTINGS) as Partial<ClientSettings>)),
};
/** The Pub/Sub client's own defaults (flow control 1000 messages / 100 MiB, 5 streams): the ack-only figure only. */
const LIBRARY: ClientSettings = { label: 'client library defaults', maxMessages: 1000, maxBytes: 100 * 1024 * 1024, maxStreams: 5 };

interface DrainResult {
  events: number;
  seconds: number;
  cpuUs: number;
  peakRssMb: number;
  /** process.memoryUsage() when RSS peaked, MB. */
  atPeak: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  /** Most messages the worker held un-acked at once (worker only). */
  maxInFlight: number;
  /** Largest heap after a full GC, MB (BENCH_ETL_GC_PROBE=1 only). */
  maxLiveHeap: number;
}

async function childMode(mode: 'raw' | 'worker'): Promise<void> {
  const [settingsJson, pubsubHost, gcsUrl, staging, data, subName] = process.argv.slice(3);
  const settings = JSON.parse(settingsJson!) as ClientSettings;
  const pubsub = createPubSub({ projectId: 'bench-project', emulatorHost: pubsubHost });
  const mb = (n: number): number => Math.round(n / 1e6);
  let peakRss = 0;
  let atPeak: DrainResult['atPeak'] = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  const sample = (): void => {
    const m = process.memoryUsage();
    if (m.rss <= peakRss) return;
    peakRss = m.rss;
    atPeak = { heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) };
  };
  sample();
  const sampler = setInterval(sample, 50);
  // BENCH_ETL_GC_PROBE=1: full GC every second, to tell live memory from garbage (slows the drain).
  let maxLiveHeap = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  const probe = process.env.BENCH_ETL_GC_PROBE === '1' && gc !== undefined ? setInterval(() => { gc(); maxLiveHeap = Math.max(maxLiveHeap, mb(process.memoryUsage().heapUsed)); }, 1000) : undefined;
  const cpu0 = process.cpuUsage();
  let t0 = 0;
  let done = 0;
  let maxInFlight = 0;
  const finished = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (done >= EVENTS) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  let close: () => Promise<void>;
  if (mode === 'raw') {
    const sub = pubsub.subscription(subName!, {
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
    await registry.putEventType(eventTypeRecord(TYPE), 0);
    const storage = createStorage({ projectId: 'bench-project', apiEndpoint: gcsUrl });
    const workers = await startEtlWorkers({
      projectId: 'bench-project',
      pubsub,
      storage,
      stagingBucket: staging!,
      dataBucket: data!,
      registry,
      logger: silentLogger,
      closeEnabled: false,
      tuning: { maxMessagesInFlight: settings.maxMessages, maxBytesInFlight: settings.maxBytes, maxStreams: settings.maxStreams },
    });
    const poll = setInterval(() => {
      const s = workers.stats()[TYPE];
      if (s === undefined) return;
      if (t0 === 0 && s.received > 0) t0 = performance.now();
      done = s.acked;
      maxInFlight = Math.max(maxInFlight, s.received - s.acked - s.nacked);
    }, 10);
    close = async () => {
      clearInterval(poll);
      await workers.close();
    };
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  clearInterval(probe);
  sample();
  const result: DrainResult = {
    events: done,
    seconds,
    cpuUs: (cpu.user + cpu.system) / done,
    peakRssMb: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1e6,
    atPeak,
    maxInFlight,
    maxLiveHeap,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  await close();
  await pubsub.close();
  process.exit(0);
}

function runChild(mode: 'raw' | 'worker', settings: ClientSettings, args: string[]): Promise<DrainResult> {
  return new Promise((resolve, reject) => {
    const heap = settings.heapMb === undefined ? [] : [`--max-old-space-size=${settings.heapMb}`];
    const child = spawn(process.execPath, [...heap, '--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), mode, JSON.stringify(settings), ...args], {
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

function describeDrain(label: string, r: DrainResult): string {
  const p = r.atPeak;
  return (
    `${label}: ${(r.events / r.seconds).toFixed(0)} events/s, ${r.cpuUs.toFixed(1)} CPU µs/event, peak RSS ${r.peakRssMb.toFixed(0)} MB ` +
    `(at peak: heap ${p.heapUsed}/${p.heapTotal} MB, external ${p.external} MB, array buffers ${p.arrayBuffers} MB)` +
    (r.maxInFlight > 0 ? `, max un-acked ${r.maxInFlight}` : '') +
    (r.maxLiveHeap > 0 ? `, max live heap ${r.maxLiveHeap} MB` : '')
  );
}

async function pubsubBench(): Promise<void> {
  const ps = await startPubSubEmulator();
  const gcs = await startGcsEmulator();
  try {
    const pubsub = createPubSub({ projectId: 'bench-project', emulatorHost: ps.host });
    const storage = createStorage({ projectId: 'bench-project', apiEndpoint: gcs.url });
    await storage.createBucket('bench-staging');
    await storage.createBucket('bench-data');
    await pubsub.createTopic(resourceNames.deadLetterTopic(TYPE));
    const start = Date.now() - 3_600_000;
    const events = makeEvents(EVENTS, (i) => start + (i % 3_000_000), 'b');
    // A backlog per drain, published just before it: the emulator holds one backlog at a time (a bigger one slows it down).
    const withLibrary = process.env.BENCH_ETL_LIBRARY !== '0';
    const drains: { mode: 'raw' | 'worker'; settings: ClientSettings; topic: string; sub: string }[] = [
      { mode: 'raw', settings: TUNED, topic: 'bench-raw-etl-settings', sub: 'bench-raw-etl-settings' },
      { mode: 'worker', settings: TUNED, topic: resourceNames.topic(TYPE), sub: resourceNames.etlSubscription(TYPE) },
      ...(withLibrary ? [{ mode: 'raw' as const, settings: LIBRARY, topic: 'bench-raw-library-settings', sub: 'bench-raw-library-settings' }] : []),
    ];
    const results: DrainResult[] = [];
    for (const d of drains) {
      const [topic] = await pubsub.createTopic(d.topic);
      await topic.createSubscription(d.sub, { ackDeadlineSeconds: 60 });
      const t = performance.now();
      await publishEvents(topic, TYPE, pageViewSchema, events);
      const published = (performance.now() - t) / 1000;
      const { label, ...flow } = d.settings;
      const r = await runChild(d.mode, d.settings, [ps.host, gcs.url, 'bench-staging', 'bench-data', d.sub]);
      results.push(r);
      console.log(`${d.mode === 'raw' ? 'ack-only subscriber' : 'etl worker (decode → stage → ack)'}, ${label} ${JSON.stringify(flow)} (backlog of ${EVENTS} published in ${published.toFixed(1)} s):`);
      console.log(`  ${describeDrain(d.mode === 'raw' ? 'ceiling' : 'worker', r)}`);
      await pubsub.subscription(d.sub).delete();
      await topic.delete();
    }
    const [raw, etl] = results as [DrainResult, DrainResult];
    const ratio = (etl.events / etl.seconds / (raw.events / raw.seconds)) * 100;
    recordBenchResult({
      etlCpuUsPerEvent: { value: etl.cpuUs, unit: 'CPU µs/event', what: 'ETL worker: decode → stage → ack, CPU per event drained from the Pub/Sub emulator' },
      etlEventsPerSecond: { value: etl.events / etl.seconds, unit: 'events/s', what: 'ETL worker: events drained per second on this machine (bounded by the local emulator)' },
      etlPeakRssMb: { value: etl.peakRssMb, unit: 'MB', what: 'ETL worker: peak RSS while draining' },
      ackOnlyCpuUsPerEvent: { value: raw.cpuUs, unit: 'CPU µs/event', what: 'ack-only subscriber, same settings (the ceiling)' },
    });
    console.log(
      `ratio etl/ack-only (same settings): ${ratio.toFixed(0)}% (target ≥ 70%): ${ratio >= 70 ? 'met' : 'MISSED'}; ` +
        `etl peak RSS ${etl.peakRssMb.toFixed(0)} MB (target < 300 MB): ${etl.peakRssMb < 300 ? 'met' : 'MISSED'}`,
    );
    await pubsub.close();
    const period = periodOf(start, 'hourly');
    console.log(`  (staged under staging/${TYPE}/${period.key}/ …)`);
  } finally {
    await gcs.close();
    await ps.stop();
  }
}

/** A transform that rebuilds every record (what encryption costs beyond the keys). */
const copyTransform: RecordTransform = {
  deliveredSchema: (s) => ({ ...s }),
  transformBatch: async (_t, records) => records.map((r) => ({ record: { ...(r.record as object) }, stats: { nulledFields: 0 } })),
};

async function processingBench(): Promise<void> {
  const n = 100_000;
  const record = eventTypeRecord(TYPE);
  const version = record.versions[0]!;
  const type = avro.Type.forSchema(pageViewSchema as avro.Schema);
  const fp = schemaFingerprint(pageViewSchema);
  const events = makeEvents(n, (i) => Date.UTC(2026, 0, 1) + i);
  const encoded = events.map((e) => type.toBuffer(e.payload));
  const period = periodOf(Date.UTC(2026, 0, 1), 'hourly');

  const time = async (label: string, fn: () => Promise<void> | void): Promise<number> => {
    await fn(); // warm-up
    const t = performance.now();
    await fn();
    const s = (performance.now() - t) / 1000;
    console.log(`${label}: ${(n / s).toFixed(0)} records/s`);
    return n / s;
  };
  const baseline = await time('avsc bare decode+encode (baseline)', () => {
    for (const b of encoded) type.toBuffer(type.fromBuffer(b));
  });
  const path = async (transform: RecordTransform): Promise<void> => {
    const deliveredType = transform === identityTransform ? type : avro.Type.forSchema(transform.deliveredSchema(pageViewSchema) as avro.Schema);
    for (let i = 0; i < n; i += 1500) {
      const batch = encoded.slice(i, i + 1500).map((b, j) => ({ record: type.decode(b, 0).value, version, eventId: events[i + j]!.eventId, bytes: b }));
      const out = await transform.transformBatch(TYPE, batch);
      const staged: StagedRecord[] = batch.map((d, j) => ({
        eventId: d.eventId,
        receiveTime: events[i + j]!.receiveTime,
        schemaFingerprint: fp,
        stats: out[j]!.stats ?? {},
        record: transform === identityTransform ? d.bytes : deliveredType.toBuffer(out[j]!.record),
      }));
      buildStagedFile(`staging/${TYPE}/${period.key}/x.avro`, TYPE, period, staged);
    }
  };
  const ident = await time('etl path, identity transform (decode → stage file bytes, deflate)', () => path(identityTransform));
  const copy = await time('etl path, rebuilding transform (decode → transform → re-encode → file bytes)', () => path(copyTransform));
  console.log(`ratios vs baseline: identity ${(ident / baseline).toFixed(2)}x, rebuilding ${(copy / baseline).toFixed(2)}x`);
}

const mode = process.argv[2];
if (mode === 'raw' || mode === 'worker') {
  await childMode(mode);
} else {
  if (process.env.BENCH_ETL_PROCESSING !== '0') {
    console.log('--- processing path alone ---');
    await processingBench();
  }
  console.log('--- through the Pub/Sub emulator ---');
  await pubsubBench();
}
