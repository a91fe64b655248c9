/**
 * Event service throughput, latency and CPU per event on loopback, publishing
 * to the Pub/Sub emulator, against a baseline server that does the least
 * possible (node:http, JSON.parse, publish each event with the same client
 * and batching, wait for the confirms, answer), measured the same way.
 *
 * Both servers run in this process (one measured at a time, so
 * process.cpuUsage deltas are the server's alone); the load generators run in
 * child processes: autocannon for full load, then an open-loop paced generator
 * for latency at half that rate. Each request is a batch of 100 events of ~500 bytes.
 *
 * Then hostile load: batches of 1000 events nested 99 deep in a union of two
 * same-shaped records (each one is refused; deciding it is the most work one
 * event can ask for), with the event-loop delay of the service's process
 * (perf_hooks.monitorEventLoopDelay) beside the same figure under normal load:
 * no request may hold the event loop for more than a few milliseconds.
 *
 * `node --import tsx bench/event-service.bench.ts load <url> <connections> <seconds> <rate|0> [normal|hostile]`
 * is the child's mode.
 */
import { recordBenchResult } from './results.ts';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startPubSubEmulator } from '../emulators/google/google.ts';
import { createPubSub } from '../lib/gcp/clients.ts';
import { resourceNames } from '../lib/names.ts';
import { silentLogger } from '../lib/logger.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { MemoryAuditSink } from '../functions/event-service/audit.ts';
import { withDefaults } from '../functions/event-service/config.ts';
import { eventTypeRecord } from '../test/support/event-service.ts';
import { startEventService } from '../functions/event-service/server.ts';
import { pacedLoadInChild } from './paced-load.ts';

const TYPE = 'bench_page_view';
const HOSTILE_TYPE = 'bench_twins';
const HOSTILE_BATCH = 1000;
const HOSTILE_DEPTH = 99;
const BATCH = 100;
const CONNECTIONS = 8;
const SECONDS = 10;
const WARMUP_SECONDS = 3;

const schema = {
  type: 'record',
  name: 'PageView',
  fields: [
    { name: 'url', type: 'string' },
    { name: 'title', type: 'string' },
    { name: 'userAgent', type: 'string' },
    { name: 'ts', type: 'long' },
    { name: 'durationMs', type: 'int' },
    { name: 'referrer', type: ['null', 'string'], default: null },
    { name: 'user', type: { type: 'record', name: 'User', fields: [{ name: 'id', type: 'string' }, { name: 'country', type: 'string' }] } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
};

// Two same-shaped records in one union: the shape that made validation exponential.
const twinsSchema = {
  type: 'record',
  name: 'Root',
  fields: [
    {
      name: 'next',
      type: [
        'null',
        { type: 'record', name: 'A', fields: [{ name: 'next', type: ['null', 'A', { type: 'record', name: 'B', fields: [{ name: 'next', type: ['null', 'A', 'B'] }] }] }] },
        'B',
      ],
    },
  ],
};

function hostileBody(): string {
  let payload: unknown = null;
  for (let i = 0; i < HOSTILE_DEPTH; i++) payload = { next: payload };
  return JSON.stringify({ events: Array.from({ length: HOSTILE_BATCH }, () => ({ type: HOSTILE_TYPE, payload })) });
}

function batchBody(): string {
  const events = Array.from({ length: BATCH }, (_, i) => ({
    type: TYPE,
    payload: {
      url: `https://www.example.com/articles/2026/01/some-long-article-slug-number-${i}?utm_source=newsletter&utm_medium=email`,
      title: 'A reasonably long page title that describes the article being viewed by the user',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
      ts: 1767225600000 + i,
      durationMs: 1234 + i,
      referrer: 'https://news.example.org/front-page',
      user: { id: `user-${100000 + i}`, country: 'FR' },
      tags: ['sports', 'football', 'europe', 'breaking'],
    },
  }));
  return JSON.stringify({ events });
}

interface LoadResult {
  requestsPerSec: number;
  ok: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
  seconds: number;
}

async function runLoad(url: string, connections: number, seconds: number, rate: number, kind: 'normal' | 'hostile'): Promise<LoadResult> {
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: kind === 'hostile' ? hostileBody() : batchBody(),
    connections,
    duration: seconds,
    ...(rate > 0 ? { overallRate: rate } : {}),
  });
  return {
    requestsPerSec: r.requests.average,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    p50: r.latency.p50,
    p99: r.latency.p99,
    seconds,
  };
}

/** Runs the load generator in a child process and returns its result. */
function load(url: string, connections: number, seconds: number, rate = 0, kind: 'normal' | 'hostile' = 'normal'): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'load', url, String(connections), String(seconds), String(rate), kind], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
    });
  });
}

interface Figures {
  /** How long the server's event loop was held during the full-load run (delay of a 1 ms timer), ms: longest and 99th percentile. */
  loopMaxMs: number;
  loopP99Ms: number;
  eventsPerSec: number;
  cpuUsPerEvent: number;
  p50: number;
  p99: number;
  halfRate: number;
  non2xx: number;
}

/** Max throughput with CPU per confirmed event, then latency at half that rate. */
async function measure(url: string, confirmed: () => number): Promise<Figures> {
  const before = confirmed();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu = process.cpuUsage();
  const max = await load(url, CONNECTIONS, SECONDS);
  const used = process.cpuUsage(cpu);
  loop.disable();
  const events = confirmed() - before;
  const halfRate = Math.max(1, Math.floor(max.requestsPerSec / 2));
  const half = await pacedLoadInChild({
    url,
    path: new URL(url).pathname,
    headers: { 'content-type': 'application/json' },
    body: batchBody(),
    rate: halfRate,
    connections: CONNECTIONS,
    durationS: SECONDS,
  });
  return {
    loopMaxMs: loop.max / 1e6,
    loopP99Ms: loop.percentile(99) / 1e6,
    eventsPerSec: events / SECONDS,
    cpuUsPerEvent: (used.user + used.system) / Math.max(1, events),
    p50: half.p50Ms,
    p99: half.p99Ms,
    halfRate,
    non2xx: max.non2xx + max.errors + half.errors,
  };
}

async function main(): Promise<void> {
  const emulator = await startPubSubEmulator();
  const projectId = 'bench-project';
  const pubsub = createPubSub({ projectId, emulatorHost: emulator.host });
  try {
    await pubsub.createTopic(resourceNames.topic(TYPE));
    await pubsub.createTopic(resourceNames.topic(HOSTILE_TYPE));
    const config = withDefaults({ projectId });

    // The service under test.
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(TYPE, [schema]), 0);
    await registry.putEventType(eventTypeRecord(HOSTILE_TYPE, [twinsSchema]), 0);
    const service = await startEventService(config, { registry, pubsub, auditSink: new MemoryAuditSink(), logger: silentLogger });

    // The baseline: the least an ingestion server can do.
    const topic = pubsub.topic(resourceNames.topic(TYPE), { batching: config.batching });
    let baselineConfirmed = 0;
    const baseline = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const { events } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Array<{ type: string; id?: string; payload: unknown }> };
        const receiveTime = new Date().toISOString();
        Promise.all(
          events.map((e) =>
            topic
              .publishMessage({ data: Buffer.from(JSON.stringify(e.payload)), attributes: { eventType: e.type, eventId: e.id ?? randomUUID(), receiveTime } })
              .then(() => baselineConfirmed++),
          ),
        ).then(
          () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
          () => res.writeHead(503).end(),
        );
      });
    });
    await new Promise<void>((r) => baseline.listen(0, '127.0.0.1', r));
    const baselineUrl = `http://127.0.0.1:${(baseline.address() as AddressInfo).port}/v1/events`;

    console.log(`batches of ${BATCH} events (~${Math.round(batchBody().length / BATCH)} B JSON each), ${CONNECTIONS} connections, ${SECONDS} s per figure`);
    // Warm both (and the emulator's JIT) before measuring either, so order does not favour one.
    await load(baselineUrl, CONNECTIONS, WARMUP_SECONDS);
    await load(`${service.url}/v1/events`, CONNECTIONS, WARMUP_SECONDS);
    const base = await measure(baselineUrl, () => baselineConfirmed);
    const svc = await measure(`${service.url}/v1/events`, () => service.metrics.get(TYPE).accepted);

    const row = (name: string, f: Figures): string =>
      `${name.padEnd(14)} ${f.eventsPerSec.toFixed(0).padStart(8)} events/s  ${f.cpuUsPerEvent.toFixed(1).padStart(7)} µs CPU/event  ` +
      `p50 ${f.p50.toFixed(1).padStart(6)} ms  p99 ${f.p99.toFixed(1).padStart(6)} ms at ${f.halfRate} req/s  non-2xx/errors ${f.non2xx}  ` +
      `event loop held p99 ${f.loopP99Ms.toFixed(1)} ms, max ${f.loopMaxMs.toFixed(1)} ms`;
    console.log(row('baseline', base));
    console.log(row('event-service', svc));
    const ratio = svc.eventsPerSec / base.eventsPerSec;
    console.log(`throughput ratio event-service/baseline: ${(ratio * 100).toFixed(0)}% (target ≥ 70%)`);
    console.log(`CPU per event ratio event-service/baseline: ${(svc.cpuUsPerEvent / base.cpuUsPerEvent).toFixed(2)}×`);
    recordBenchResult({
      ingestCpuUsPerEvent: { value: svc.cpuUsPerEvent, unit: 'CPU µs/event', what: `event service: CPU per confirmed event, batches of ${BATCH}, publishing to the Pub/Sub emulator` },
      ingestEventsPerSecond: { value: svc.eventsPerSec, unit: 'events/s', what: 'event service: confirmed events per second on this machine (bounded by the local emulator)' },
      ingestEventBytes: { value: Math.round(batchBody().length / BATCH), unit: 'bytes/event', what: 'JSON bytes per event in the measured batches' },
      baselineCpuUsPerEvent: { value: base.cpuUsPerEvent, unit: 'CPU µs/event', what: 'bare node:http + publish server, same load' },
    });
    // Both publish to one local emulator, which bounds events/s; CPU per event is the steadier figure.

    // Hostile load: every event of every batch is the most work validation can be asked for.
    const rejectedBefore = service.metrics.get(HOSTILE_TYPE).rejected.EVENT_INVALID ?? 0;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpu = process.cpuUsage();
    const hostile = await load(`${service.url}/v1/events`, CONNECTIONS, SECONDS, 0, 'hostile');
    const used = process.cpuUsage(cpu);
    loop.disable();
    const refused = (service.metrics.get(HOSTILE_TYPE).rejected.EVENT_INVALID ?? 0) - rejectedBefore;
    console.log(
      `hostile: batches of ${HOSTILE_BATCH} events nested ${HOSTILE_DEPTH} deep in a union of two same-shaped records (${(hostileBody().length / 1024).toFixed(0)} KiB), ` +
        `${(refused / SECONDS).toFixed(0)} events/s refused, ${((used.user + used.system) / Math.max(1, refused)).toFixed(1)} µs CPU/event, ` +
        `request p99 ${hostile.p99.toFixed(0)} ms, errors ${hostile.errors + hostile.non2xx}`,
    );
    // The delay includes the process being descheduled on a busy machine: compare with the baseline's, measured alike.
    console.log(
      `event loop held under hostile load: p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms ` +
        `(normal load: event-service p99 ${svc.loopP99Ms.toFixed(1)} ms, max ${svc.loopMaxMs.toFixed(1)} ms; ` +
        `baseline p99 ${base.loopP99Ms.toFixed(1)} ms, max ${base.loopMaxMs.toFixed(1)} ms)`,
    );

    await service.close();
    await new Promise<void>((r) => baseline.close(() => r()));
  } finally {
    await pubsub.close();
    await emulator.stop();
  }
}

if (process.argv[2] === 'load') {
  const [url, connections, seconds, rate, kind] = process.argv.slice(3);
  const result = await runLoad(url!, Number(connections), Number(seconds), Number(rate), kind === 'hostile' ? 'hostile' : 'normal');
  console.log(JSON.stringify(result));
} else {
  await main();
}
