/**
 * `npm run bench etl`:
 * 1. Throughput of one ETL worker process (decode → stage → ack) draining a
 *    backlog from the Pub/Sub emulator, next to the emulator's raw ceiling
 *    measured in the same run by a process that only acks; CPU µs per event;
 *    peak RSS of the worker (target < 300 MB); target ≥ 70% of the ceiling.
 * 2. The processing path alone (decode → transform → Avro file bytes), next
 *    to avsc's bare decode+encode of the same records.
 * Each drain runs in a child process (this file with `worker`/`raw`), so its
 * CPU and memory are its own.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { Message } from '@google-cloud/pubsub';
import { startPubSubEmulator } from '../lib/emulators/google.ts';
import { startGcsEmulator } from '../lib/gcs-emulator/index.ts';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { silentLogger } from '../lib/logger.ts';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { periodOf } from '../lib/partitions.ts';
import { resourceNames } from '../lib/names.ts';
import { startEtlWorkers } from '../etl/workers.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, publishEvents } from '../etl/test-support.ts';
import { buildStagedFile } from '../etl/files.ts';
import type { StagedRecord } from '../etl/envelope.ts';
import { identityTransform, type RecordTransform } from '../etl/transform.ts';

const EVENTS = Number(process.env.BENCH_ETL_EVENTS ?? 200_000);
const TYPE = 'bench_page_view';
const FLOW = { maxMessages: 2000, maxBytes: 32 * 1024 * 1024, maxStreams: 2 };

interface DrainResult {
  events: number;
  seconds: number;
  cpuUs: number;
  peakRssMb: number;
}

async function childMode(mode: 'raw' | 'worker'): Promise<void> {
  const [pubsubHost, gcsUrl, staging, data, subName] = process.argv.slice(3);
  const pubsub = createPubSub({ projectId: 'bench-project', emulatorHost: pubsubHost });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const cpu0 = process.cpuUsage();
  let t0 = 0;
  let done = 0;
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
    const sub = pubsub.subscription(subName!, { flowControl: { maxMessages: FLOW.maxMessages, maxBytes: FLOW.maxBytes, allowExcessMessages: false }, streamingOptions: { maxStreams: FLOW.maxStreams } });
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
      tuning: { maxMessagesInFlight: FLOW.maxMessages, maxBytesInFlight: FLOW.maxBytes, maxStreams: FLOW.maxStreams, flushRecords: 1000 },
    });
    const poll = setInterval(() => {
      const s = workers.stats()[TYPE];
      if (s === undefined) return;
      if (t0 === 0 && s.received > 0) t0 = performance.now();
      done = s.acked;
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
  const result: DrainResult = { events: done, seconds, cpuUs: (cpu.user + cpu.system) / done, peakRssMb: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1e6 };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  await close();
  await pubsub.close();
  process.exit(0);
}

function runChild(mode: 'raw' | 'worker', args: string[]): Promise<DrainResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), mode, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line === undefined) reject(new Error(`${mode} child exited ${code} without a result`));
      else resolve(JSON.parse(line.slice(7)) as DrainResult);
    });
  });
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
    // One backlog at a time, so both drains see the emulator in the same state.
    const backlog = async (topicName: string, subName: string): Promise<void> => {
      const [topic] = await pubsub.createTopic(topicName);
      await topic.createSubscription(subName, { ackDeadlineSeconds: 60 });
      const t = performance.now();
      await publishEvents(topic, TYPE, pageViewSchema, events);
      console.log(`  backlog of ${EVENTS} events published to ${subName} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    };
    await backlog('bench-raw', 'bench-raw');
    const raw = await runChild('raw', [ps.host, gcs.url, 'bench-staging', 'bench-data', 'bench-raw']);
    await pubsub.subscription('bench-raw').delete();
    await backlog(resourceNames.topic(TYPE), resourceNames.etlSubscription(TYPE));
    const etl = await runChild('worker', [ps.host, gcs.url, 'bench-staging', 'bench-data', resourceNames.etlSubscription(TYPE)]);
    await pubsub.close();
    const rawRate = raw.events / raw.seconds;
    const etlRate = etl.events / etl.seconds;
    console.log(`raw ceiling (subscriber that only acks): ${rawRate.toFixed(0)} events/s, ${raw.cpuUs.toFixed(1)} CPU µs/event, peak RSS ${raw.peakRssMb.toFixed(0)} MB`);
    console.log(`etl worker (decode → stage → ack):       ${etlRate.toFixed(0)} events/s, ${etl.cpuUs.toFixed(1)} CPU µs/event, peak RSS ${etl.peakRssMb.toFixed(0)} MB`);
    console.log(`ratio etl/raw: ${((etlRate / rawRate) * 100).toFixed(0)}% (target ≥ 70%); peak RSS target < 300 MB: ${etl.peakRssMb < 300 ? 'met' : 'MISSED'}`);
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
  console.log('--- processing path alone ---');
  await processingBench();
  console.log('--- through the Pub/Sub emulator ---');
  await pubsubBench();
}
