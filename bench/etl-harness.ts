/**
 * Drives the production ETL (etl/workers.ts → etl/pipeline.ts → etl/stager.ts)
 * with only Pub/Sub replaced: a fake client whose subscription emits
 * in-memory messages to the pipeline's real `message` handler, with the
 * worker's own flow control (`maxMessagesInFlight`) applied as the client
 * library would. Everything after that is production code: attribute
 * parsing, schema lookup by fingerprint, decode, transform, re-encode (not on
 * the identity path), stager period lookup, flush, sort, dedup, id-set hash,
 * staged file build and the upload to a GCS emulator running in this process.
 *
 * CPU figures are this process's CPU time (`process.cpuUsage`). With the GCS
 * emulator in process (the default) they include its serving of the uploads,
 * which raises both paths' CPU alike and so narrows ratios between them;
 * `BENCH_GCS=child` runs it in a child process so the figures are the
 * worker's own.
 */
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message, PubSub } from '@google-cloud/pubsub';
import type avro from 'avsc';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { avroType } from '../lib/avro/long.ts';
import { messageAttributes } from '../lib/events/contract.ts';
import { createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { resolveTuning } from '../etl/config.ts';
import { eventTypeRecord } from '../test/support/etl.ts';
import type { RecordTransform } from '../etl/transform.ts';
import { startEtlWorkers, type EtlWorkers } from '../etl/workers.ts';

/**
 * A purchase event: nested records, an array of records, a map, a subject
 * (`userId`, stored in clear) and 2 personal fields (`email`, `client.ip`).
 */
export const purchaseSchema: AvroSchemaJson = {
  type: 'record',
  name: 'Purchase',
  namespace: 'com.example.bench',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    {
      name: 'client',
      type: {
        type: 'record',
        name: 'Client',
        fields: [
          { name: 'ip', type: ['null', 'string'], default: null, semanticType: 'ipAddress' },
          { name: 'userAgent', type: 'string' },
          { name: 'screen', type: { type: 'record', name: 'Screen', fields: [{ name: 'width', type: 'int' }, { name: 'height', type: 'int' }] } },
        ],
      },
    },
    { name: 'country', type: 'string', semanticType: 'country' },
    { name: 'orderId', type: 'string' },
    { name: 'occurredAt', type: 'long' },
    {
      name: 'items',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Item',
          fields: [
            { name: 'sku', type: 'string' },
            { name: 'title', type: 'string' },
            { name: 'quantity', type: 'int' },
            { name: 'unitPrice', type: 'double' },
          ],
        },
      },
    },
    { name: 'tags', type: { type: 'map', values: 'string' } },
    { name: 'total', type: 'double' },
    { name: 'currency', type: 'string' },
  ],
};

/** The same fields without semantic annotations (same bytes): the ETL refuses personal fields in clear, so encryption off needs this. */
export const purchaseSchemaPlain: AvroSchemaJson = stripSemantics(purchaseSchema) as AvroSchemaJson;

function stripSemantics(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripSemantics);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([k]) => k !== 'semanticType').map(([k, v]) => [k, stripSemantics(v)]));
}

export const writerType: avro.Type = avroType(purchaseSchema);

/** `n` encoded purchases (~500 B each) over `users` subjects. */
export function purchaseMessages(n: number, users: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const u = i % users;
    return writerType.toBuffer({
      userId: `user-${String(u).padStart(6, '0')}`,
      email: `customer.${u}@mail.example`,
      client: {
        ip: `10.${i % 200}.${u % 250}.${i % 250}`,
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
        screen: { width: 1920, height: 1080 },
      },
      country: 'FR',
      orderId: `order-${i.toString(36).padStart(8, '0')}`,
      occurredAt: 1_700_000_000_000 + i,
      items: Array.from({ length: 5 }, (_, k) => ({ sku: `SKU-${(i + k) % 9973}`, title: `Catalogue item number ${(i * 7 + k) % 1000}`, quantity: 1 + ((i + k) % 4), unitPrice: 9.99 + k })),
      tags: { channel: 'web', campaign: `spring-${i % 12}`, referrer: 'newsletter', device: 'desktop' },
      total: 42.5 + (i % 100),
      currency: 'EUR',
    });
  });
}

export interface RunFigures {
  events: number;
  wallMs: number;
  cpuMs: number;
}

export const perSecond = (f: RunFigures): number => f.events / (f.wallMs / 1000);
export const cpuMicrosPerEvent = (f: RunFigures): number => (f.cpuMs * 1000) / f.events;

/** CPU (user + system) and wall time of `work`. */
export async function measure(events: number, work: () => unknown): Promise<RunFigures> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { events, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** avsc alone on the same messages: decode with the writer type, encode again. */
export function bareDecodeEncode(messages: readonly Buffer[]): number {
  let bytes = 0;
  for (const m of messages) bytes += writerType.toBuffer(writerType.decode(m, 0).value).length;
  return bytes;
}

type Handler = (m: Message) => void;

/** Delivery state of one run: what the client library's flow control keeps. */
interface FlowState {
  next: number;
  inFlight: number;
  settled: number;
  nacked: number;
  pumping: boolean;
  scheduled: boolean;
  total: number;
  pump(): void;
  done(): void;
}

/** The fields of a Pub/Sub message the pipeline reads, and ack/nack that free a flow-control slot. */
class FakeMessage {
  private settledOnce = false;
  constructor(
    readonly id: string,
    readonly data: Buffer,
    readonly attributes: Record<string, string>,
    private readonly flow: FlowState,
  ) {}

  ack(): void {
    this.settle(true);
  }

  nack(): void {
    this.settle(false);
  }

  private settle(ok: boolean): void {
    if (this.settledOnce) return;
    this.settledOnce = true;
    const flow = this.flow;
    if (!ok) flow.nacked++;
    flow.inFlight--;
    if (++flow.settled === flow.total) flow.done();
    else if (!flow.pumping && !flow.scheduled) {
      flow.scheduled = true;
      setImmediate(flow.pump);
    }
  }
}

/** The part of the Pub/Sub client the pipeline uses, in memory; dead letters are counted, not sent. */
class FakePubSub {
  readonly subscriptions = new Map<string, EventEmitter>();
  deadLettered = 0;

  subscription(name: string): EventEmitter & { close(): Promise<void> } {
    const sub = Object.assign(new EventEmitter(), { close: async () => undefined });
    this.subscriptions.set(name, sub);
    return sub;
  }

  topic(): { publishMessage(): Promise<string>; flush(): Promise<void> } {
    return {
      publishMessage: async () => {
        this.deadLettered++;
        return 'dead-letter';
      },
      flush: async () => undefined,
    };
  }

  async close(): Promise<void> {}
}

/** The staging store: a GCS emulator in this process, or in a child process with `BENCH_GCS=child`. */
export interface StagingEmulator {
  url: string;
  where: 'in process' | 'child process';
  close(): Promise<void>;
}

export async function startStagingEmulator(): Promise<StagingEmulator> {
  if (process.env.BENCH_GCS !== 'child') {
    const gcs = await startGcsEmulator();
    return { url: gcs.url, where: 'in process', close: () => gcs.close() };
  }
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'emulators', 'gcs', 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('GCS emulator child did not start within 30 s')), 30_000);
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      const m = /gcs: (http:\/\/\S+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`GCS emulator child exited with ${code}`));
    });
  });
  return {
    url,
    where: 'child process',
    close: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface EtlHarness {
  /** Feeds `messages` (fresh event ids) to the pipeline and resolves once every one is acked, i.e. durable in staging. */
  run(messages: readonly Buffer[]): Promise<RunFigures>;
  close(): Promise<void>;
}

let typeCounter = 0;

/** Starts the ETL workers for one new event type registered with `schema`, Pub/Sub faked, staging to `gcs`. */
export async function startEtlHarness(gcs: StagingEmulator, schema: AvroSchemaJson, transform: RecordTransform): Promise<EtlHarness> {
  const eventType = `bench_${process.pid}_${typeCounter++}`;
  const bucket = (suffix: string): string => `${eventType.replace(/_/g, '-')}-${suffix}`;
  const storage = createStorage({ projectId: 'bench-project', apiEndpoint: gcs.url });
  await storage.createBucket(bucket('staging'));
  await storage.createBucket(bucket('data'));
  const registry = new MemoryRegistryStore();
  await registry.putEventType(eventTypeRecord(eventType, [schema]), 0);
  const pubsub = new FakePubSub();
  const workers: EtlWorkers = await startEtlWorkers({
    projectId: 'bench-project',
    pubsub: pubsub as unknown as PubSub,
    storage,
    registry,
    eventTypes: [eventType],
    transform,
    logger: silentLogger,
    closeEnabled: false,
    stagingBucket: bucket('staging'),
    dataBucket: bucket('data'),
  });
  const refused = workers.refused()[eventType];
  if (refused !== undefined) throw new Error(`bench pipeline refused: ${refused.message}`);
  const subscription = [...pubsub.subscriptions.values()][0];
  if (subscription === undefined) throw new Error('the pipeline opened no subscription');
  const handler = subscription.listeners('message')[0] as Handler | undefined;
  if (handler === undefined) throw new Error('the pipeline listens to no message');
  const maxInFlight = resolveTuning({}).maxMessagesInFlight;
  const fingerprint = schemaFingerprint(schema);
  let runs = 0;

  const run = async (messages: readonly Buffer[]): Promise<RunFigures> => {
    const prefix = `r${runs++}-`;
    const receiveTime = new Date().toISOString();
    const attributes = (id: string): Record<string, string> => ({ [messageAttributes.eventType]: eventType, [messageAttributes.schemaFingerprint]: fingerprint, [messageAttributes.eventId]: id, [messageAttributes.receiveTime]: receiveTime });
    let resolveRun: () => void = () => undefined;
    const flow: FlowState = { next: 0, inFlight: 0, settled: 0, nacked: 0, pumping: false, scheduled: false, total: messages.length, pump: () => pump(), done: () => resolveRun() };
    // Messages built before timing, as the client library builds them before the handler sees them.
    const fakes = messages.map((data, i) => new FakeMessage(`${prefix}${i}`, data, attributes(`${prefix}${i}`), flow));
    const deadBefore = pubsub.deadLettered;
    const stagedBefore = workers.stats()[eventType]?.stagedRecords ?? 0;
    const pump = (): void => {
      flow.scheduled = false;
      if (flow.pumping) return;
      flow.pumping = true;
      // Like the client's flow control: deliver while under the in-flight limit.
      while (flow.inFlight < maxInFlight && flow.next < fakes.length) {
        flow.inFlight++;
        handler(fakes[flow.next++] as unknown as Message);
      }
      flow.pumping = false;
    };
    const figures = await measure(messages.length, () =>
      new Promise<void>((resolve) => {
        resolveRun = resolve;
        pump();
      }),
    );
    const nacked = flow.nacked;
    if (nacked > 0 || pubsub.deadLettered !== deadBefore) throw new Error(`bench run not clean: ${nacked} nacked, ${pubsub.deadLettered - deadBefore} dead-lettered`);
    const staged = (workers.stats()[eventType]?.stagedRecords ?? 0) - stagedBefore;
    if (staged !== messages.length) throw new Error(`bench run staged ${staged} records, expected ${messages.length}`);
    return figures;
  };

  return { run, close: () => workers.close() };
}

export const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** Median, min and max. */
export function spread(xs: readonly number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}

export const fmt = (n: number): string => Math.round(n).toLocaleString('en');

/** `median (min–max)` of a series, formatted by `f`. */
export function showSpread(xs: readonly number[], f: (n: number) => string = fmt): string {
  const s = spread(xs);
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}
