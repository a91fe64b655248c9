/**
 * 64-bit longs end to end: records with longs at the edges of the range,
 * published directly to Pub/Sub (the message contract of
 * lib/events/contract.ts) or posted to the event service (JSON, with decimal
 * strings and safe integers, and Avro single-object datums written by
 * python3-avro), are delivered by the ETL, never dead-lettered, and the
 * closed partitions read back exactly with two independent Avro
 * implementations (avro-c's `avrocat`, Debian's python3-avro) and with our
 * consumer (library and the decrypt CLI's JSON lines), with field encryption
 * off and on.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { silentLogger } from '../../lib/logger.ts';
import { resourceNames } from '../../lib/names.ts';
import { partitionPrefix, periodOf, successObjectName, type Period } from '../../lib/partitions.ts';
import { singleObjectHeader } from '../../lib/avro/binary.ts';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { createPadlockClient } from '../../lib/padlock-client/index.ts';
import { decryptPartition } from '../../lib/privacy/consumer.ts';
import { RecordDecryptor } from '../../lib/privacy/decryptor.ts';
import { gcsPartitionSource } from '../../lib/privacy/partition-reader.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, provisionType, publishEvents, readPartition, tempFile, waitUntil, writeAudit, type ReadPartition, type TestEvent } from '../support/etl.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { startEventService, type IngestResponse, type RunningEventService } from '../../functions/event-service/server.ts';
import { loadConfig as loadPadlockConfig } from '../../functions/padlock/config.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';
import { uniqueName } from '../support/names.ts';
import { exactInt, pythonAvro } from '../support/python-avro.ts';

const run = promisify(execFile);
const HOUR = 3_600_000;
const PYTHON = '/usr/bin/python3';
const AVROCAT = '/usr/bin/avrocat';
const secrets = { etl: 'etl-secret-0123456789', analytics: 'analytics-secret-0123456789' };

const tuning = {
  flushAgeMs: 300,
  closeCheckIntervalMs: 300,
  closeGraceMs: 500,
  // The past hour used here must close by completeness, not by its (long passed) deadline.
  closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
  registryPollMs: 500,
  backoffInitialMs: 50,
  backoffMaxMs: 1000,
  schemaRefreshMinMs: 100,
};

/** ±(2^63−1), −2^63, ±2^53 (just beyond a double's exact integers), −2^52−1 (where avsc's zig-zag breaks), small ones. */
const edges = [2n ** 63n - 1n, -(2n ** 63n - 1n), -(2n ** 63n), 2n ** 53n, -(2n ** 53n), -(2n ** 52n) - 1n, 0n, -1n, 42n];

const longFields = [
  { name: 'n', type: 'long' },
  { name: 'maybe', type: ['null', 'long'] },
  { name: 'many', type: { type: 'array', items: 'long' } },
  // The object form, which avsc builds without consulting its type registry.
  { name: 'micros', type: { type: 'long' } },
];
const plainSchema: AvroSchemaJson = { type: 'record', name: 'Reading', namespace: 'com.example.longs', fields: longFields };
/** The same longs plus a personal long (encrypted as its Avro binary) and the subject. */
const personalSchema: AvroSchemaJson = {
  type: 'record',
  name: 'Reading',
  namespace: 'com.example.longs',
  fields: [{ name: 'userId', type: 'string', semanticType: 'userId' }, ...longFields, { name: 'device', type: 'long', semanticType: 'deviceId' }],
};

const asLong = (n: bigint): number | bigint => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n);

function eventsFor(prefix: string, receiveTime: number, personal: boolean): TestEvent[] {
  return edges.map((n, i) => {
    const other = edges[(i + 1) % edges.length]!;
    const payload: Record<string, unknown> = { n: asLong(n), maybe: i % 2 === 0 ? asLong(n) : null, many: [asLong(n), asLong(other)], micros: asLong(other) };
    if (personal) Object.assign(payload, { userId: `user-${i % 3}`, device: asLong(n) });
    return { eventId: `${prefix}-${String(i).padStart(3, '0')}`, receiveTime: receiveTime + i, payload };
  });
}

/** What a decoded record's longs must be, as decimal strings (order of `longFields`). */
function expectedDigits(e: TestEvent): string[] {
  const p = e.payload as { n: number | bigint; maybe: number | bigint | null; many: (number | bigint)[]; micros: number | bigint };
  return [String(p.n), p.maybe === null ? 'null' : String(p.maybe), ...p.many.map(String), String(p.micros)];
}

/**
 * Reads each file with python3-avro's DataFileReader and parses avrocat's
 * output with Python's json (exact integers); prints every record's longs as
 * decimal strings, per reader, so nothing goes through a double on the way.
 */
const pythonReader = `
import json, subprocess, sys
from avro.datafile import DataFileReader
from avro.io import DatumReader

def digits(p):
    maybe = p["maybe"]
    if isinstance(maybe, dict):  # avrocat writes unions as {"branch": value}
        maybe = maybe["long"]
    return [str(p["n"]), "null" if maybe is None else str(maybe)] + [str(x) for x in p["many"]] + [str(p["micros"])]

out = {}
for f in sys.argv[1:]:
    with open(f, "rb") as fh:
        via_python = {r["eventId"]: digits(r["payload"]) for r in DataFileReader(fh, DatumReader())}
    lines = subprocess.run(["${AVROCAT}", f], check=True, capture_output=True, text=True).stdout.splitlines()
    via_avrocat = {}
    for line in lines:
        r = json.loads(line)
        via_avrocat[r["eventId"]] = digits(r["payload"])
    out[f] = {"python": via_python, "avrocat": via_avrocat}
print(json.dumps(out))
`;

type ReaderOutput = Record<string, { python: Record<string, string[]>; avrocat: Record<string, string[]> }>;

/** Every record's longs as python3-avro and avrocat read them from the partitions' files, by event id (decimal strings). */
function readIndependently(partitions: readonly ReadPartition[]): { python: Record<string, string[]>; avrocat: Record<string, string[]> } {
  const files = partitions.flatMap((p) => [...p.fileBytes].map(([name, bytes]) => tempFile(path.posix.basename(name), bytes)));
  const read = JSON.parse(execFileSync(PYTHON, ['-c', pythonReader, ...files], { encoding: 'utf8' })) as ReaderOutput;
  return {
    python: Object.assign({}, ...Object.values(read).map((r) => r.python)) as Record<string, string[]>,
    avrocat: Object.assign({}, ...Object.values(read).map((r) => r.avrocat)) as Record<string, string[]>,
  };
}

const toolsPresent = spawnSync(PYTHON, ['-c', 'import avro.datafile'], { encoding: 'utf8' }).status === 0 && spawnSync(AVROCAT, ['--help'], { encoding: 'utf8' }).error === undefined;
if (!toolsPresent) console.warn('SKIPPED etl-long: needs Debian avro-bin (avrocat) and python3-avro (`apt-get install -y avro-bin python3-avro`, as .ci/run does)');

/** A key service, a GCS emulator with staging and data buckets, a registry with a plain and a personal type, and their topics. */
interface Bed {
  pubsub: PubSub;
  gcs: GcsEmulator;
  storage: Storage;
  padlock: RunningPadlock;
  staging: string;
  data: string;
  registry: MemoryRegistryStore;
  plainType: string;
  personalType: string;
  workers: EtlWorkers[];
  /** Starts the ETL: encryption off for the plain type (original bytes kept), on for the personal one (every record re-encoded). */
  startEtl(now?: () => number): Promise<void>;
  /** Closed partitions of `type` among `periods`. */
  delivered(type: string, periods: readonly Period[]): Promise<ReadPartition[]>;
  close(): Promise<void>;
}

async function startBed(label: string): Promise<Bed> {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const staging = uniqueName(label, 'staging');
  const data = uniqueName(label, 'data');
  const plainType = uniqueName(label, 'plain').replace(/-/g, '_').slice(0, 60);
  const personalType = uniqueName(label, 'pers').replace(/-/g, '_').slice(0, 60);
  const padlock = await startPadlock(
    loadPadlockConfig({
      PADLOCK_PORT: '0',
      PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', secrets.etl, { contexts: ['events'] }), serviceEntry('analytics', secrets.analytics, { contexts: ['events'] })]),
      PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'long-padlock-')),
    }),
    { logger: silentLogger },
  );
  const gcs = await startGcsEmulator();
  const storage = createStorage({ projectId, apiEndpoint: gcs.url });
  await storage.createBucket(staging);
  await storage.createBucket(data);
  const registry = new MemoryRegistryStore();
  await registry.putEventType(eventTypeRecord(plainType, [plainSchema]), 0);
  await registry.putEventType(eventTypeRecord(personalType, [personalSchema]), 0);
  for (const type of [plainType, personalType]) await provisionType(pubsub, type);
  const workers: EtlWorkers[] = [];
  return {
    pubsub,
    gcs,
    storage,
    padlock,
    staging,
    data,
    registry,
    plainType,
    personalType,
    workers,
    async startEtl(now) {
      const common = { projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, tuning, logger: silentLogger, ...(now === undefined ? {} : { now }) };
      workers.push(await startEtlWorkers({ ...common, eventTypes: [plainType] }));
      const keys = createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl });
      workers.push(await startEtlWorkers({ ...common, eventTypes: [personalType], transform: createEncryptionTransform({ keys, logger: silentLogger }) }));
    },
    async delivered(type, periods) {
      const read = await Promise.all(periods.map((p) => readPartition(storage, data, type, p)));
      return read.filter((p): p is ReadPartition => p !== undefined);
    },
    async close() {
      for (const w of workers) await w.close();
      await pubsub.close();
      await gcs.close();
      await padlock.close();
    },
  };
}

describe.skipIf(!toolsPresent)('exact 64-bit longs through the ETL (direct publishes)', () => {
  let bed: Bed;
  const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
  const period: Period = periodOf(base, 'hourly');
  const plainEvents = eventsFor('plain', base + 1000, false);
  const personalEvents = eventsFor('pers', base + 1000, true);

  beforeAll(async () => {
    bed = await startBed('long');
    for (const [type, schema, events] of [
      [bed.plainType, plainSchema, plainEvents],
      [bed.personalType, personalSchema, personalEvents],
    ] as const) {
      await publishEvents(bed.pubsub.topic(resourceNames.topic(type)), type, schema, events);
      await writeAudit(bed.storage, bed.staging, type, events);
    }
    await bed.startEtl();
    const closed = async (type: string): Promise<boolean> => (await bed.storage.bucket(bed.data).file(successObjectName(type, period)).exists())[0];
    expect(await waitUntil(async () => (await closed(bed.plainType)) && (await closed(bed.personalType)), 60_000)).toBe(true);
  });

  afterAll(async () => {
    await bed?.close();
  });

  it.each([
    ['encryption off', () => bed.plainType, () => plainEvents],
    ['encryption on', () => bed.personalType, () => personalEvents],
  ])('%s: every record delivered, none dead-lettered, read back exactly by avrocat and python3-avro', async (_label, typeOf, eventsOf) => {
    const type = typeOf();
    const events = eventsOf();
    expect(bed.workers.map((w) => w.stats()[type]?.deadLettered ?? 0)).toEqual([0, 0]);
    const [partition] = await bed.delivered(type, [period]);
    expect(partition!.manifest).toMatchObject({ recordCount: events.length, closedBy: 'complete', audit: { accepted: events.length, delivered: events.length } });

    const read = readIndependently([partition!]);
    const expected = Object.fromEntries(events.map((e) => [e.eventId, expectedDigits(e)]));
    expect(read.python).toEqual(expected);
    expect(read.avrocat).toEqual(expected);
  });

  it('the consumer library and the decrypt CLI give the exact longs, the encrypted one included', async () => {
    const { data, gcs, padlock, personalType } = bed;
    const projectId = inject('projectId');
    await expectConsumerReadsExactly(bed, [period], personalEvents);

    const args = ['--import', 'tsx', 'bin/decrypt.ts', `gs://${data}/${partitionPrefix(personalType, period)}`, '--padlock', padlock.url, '--service', 'analytics', '--secret-env', 'ANALYTICS_SECRET', '--storage-endpoint', gcs.url, '--project', projectId];
    const { stdout } = await run(process.execPath, args, { env: { ...process.env, ANALYTICS_SECRET: secrets.analytics } });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(personalEvents.length);
    // Python's json keeps integers exact: the JSON lines hold each long's exact digits as a JSON number.
    const parsed = JSON.parse(
      execFileSync(PYTHON, ['-c', 'import json,sys\nprint(json.dumps({r["eventId"]: [str(r["payload"]["device"]), str(r["payload"]["n"])] for r in map(json.loads, sys.stdin)}))'], { input: stdout, encoding: 'utf8' }),
    ) as Record<string, string[]>;
    expect(parsed).toEqual(Object.fromEntries(personalEvents.map((e) => [e.eventId, [String(e.payload.device), String(e.payload.n)]])));
  });
});

/** Our consumer library decrypts the personal type's partitions to exactly the events' payloads (longs compared as bigint or exact number). */
async function expectConsumerReadsExactly(bed: Bed, periods: readonly Period[], events: readonly TestEvent[]): Promise<void> {
  const keys = createPadlockClient({ url: bed.padlock.url, service: 'analytics', secret: secrets.analytics });
  const byId = new Map<string, unknown>();
  for (const period of periods) {
    if ((await bed.delivered(bed.personalType, [period])).length === 0) continue;
    const source = gcsPartitionSource(bed.storage, { bucket: bed.data, prefix: partitionPrefix(bed.personalType, period) });
    const { events: decrypted, stats } = await decryptPartition(source, new RecordDecryptor({ keys }));
    expect(stats.unreadable).toEqual({});
    for (const e of decrypted) byId.set(e.eventId, e.payload);
  }
  expect(byId.size).toBe(events.length);
  for (const e of events) expect(byId.get(e.eventId)).toEqual(e.payload);
}

/** The JSON form of a long the event service documents: a number within ±(2^53−1), a decimal string beyond. */
const jsonLong = (n: number | bigint): number | string => (typeof n === 'bigint' ? n.toString() : n);

/**
 * An event's payload as JSON for the event service, in every form its README
 * accepts for a long: `n`, `many` and `device` as numbers or (beyond
 * ±(2^53−1)) decimal strings, the union `maybe` as `{"long": …}`, and `micros`
 * always a decimal string, safe integers included.
 */
function jsonPayload(p: Record<string, unknown>): Record<string, unknown> {
  const longs = p as { n: number | bigint; maybe: number | bigint | null; many: (number | bigint)[]; micros: number | bigint; device?: number | bigint };
  return {
    ...p,
    n: jsonLong(longs.n),
    maybe: longs.maybe === null ? null : { long: jsonLong(longs.maybe) },
    many: longs.many.map(jsonLong),
    micros: String(longs.micros),
    ...(longs.device === undefined ? {} : { device: jsonLong(longs.device) }),
  };
}

/** An event's payload for python3-avro's encoder: every long as an exact decimal. */
function pythonPayload(p: Record<string, unknown>): Record<string, unknown> {
  const exact = (v: unknown): unknown => (typeof v === 'bigint' || typeof v === 'number' ? exactInt(v) : Array.isArray(v) ? v.map(exact) : v);
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, exact(v)]));
}

describe.skipIf(!toolsPresent)('exact 64-bit longs through the event service and the ETL (JSON and Avro single-object)', () => {
  let bed: Bed;
  let service: RunningEventService | undefined;
  const sent = new Map<string, TestEvent[]>();
  let periods: Period[] = [];

  async function post(body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; body: IngestResponse }> {
    const res = await fetch(`${service!.url}/v1/events`, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
    return { status: res.status, body: (await res.json()) as IngestResponse };
  }

  beforeAll(async () => {
    bed = await startBed('long-es');
    const projectId = inject('projectId');
    service = await startEventService(withDefaults({ projectId, gcsEndpoint: bed.gcs.url, stagingBucket: bed.staging, auditFlushMs: 200 }), {
      registry: bed.registry,
      pubsub: bed.pubsub,
      logger: silentLogger,
    });
    const from = Date.now();
    for (const [type, schema, personal] of [
      [bed.plainType, plainSchema, false],
      [bed.personalType, personalSchema, true],
    ] as const) {
      // receiveTime is the event service's to set; these events carry none of their own.
      const json = eventsFor('json', 0, personal);
      const res = await post(JSON.stringify({ events: json.map((e) => ({ type, id: e.eventId, payload: jsonPayload(e.payload) })) }), { 'Content-Type': 'application/json' });
      expect(res.body.results.filter((r) => r.status !== 'accepted')).toEqual([]);
      expect(res.status).toBe(200);

      const single = eventsFor('single', 0, personal);
      const header = singleObjectHeader(schemaFingerprint(schema));
      const datums = pythonAvro(schema, { encode: single.map((e) => pythonPayload(e.payload)) }).encoded.map((hex) => Buffer.from(hex, 'hex'));
      for (const [i, datum] of datums.entries()) {
        const r = await post(Buffer.concat([header, datum]), { 'Content-Type': 'application/vnd.apache.avro+binary', 'X-Event-Type': type, 'X-Event-Id': single[i]!.eventId });
        expect(r.body.results).toEqual([{ index: 0, status: 'accepted', id: single[i]!.eventId }]);
      }
      sent.set(type, [...json, ...single]);
    }
    // Drains the publishes and flushes the audit counts: the ETL must not see a partial count and close the hour early.
    await service.close();
    service = undefined;
    const to = Date.now();
    periods = [...new Map([from, to].map((t) => periodOf(t, 'hourly')).map((p) => [p.key, p])).values()];

    // For the ETL the hours just written to are over: it closes each as soon as it holds the audited count.
    await bed.startEtl(() => Date.now() + 2 * HOUR);
    const deliveredCount = async (type: string): Promise<number> => (await bed.delivered(type, periods)).reduce((sum, p) => sum + p.manifest.recordCount, 0);
    expect(await waitUntil(async () => (await deliveredCount(bed.plainType)) === sent.get(bed.plainType)!.length && (await deliveredCount(bed.personalType)) === sent.get(bed.personalType)!.length, 60_000)).toBe(true);
  });

  afterAll(async () => {
    await service?.close();
    await bed?.close();
  });

  it.each([
    ['encryption off', () => bed.plainType],
    ['encryption on', () => bed.personalType],
  ])('%s: every posted record delivered, none dead-lettered, read back exactly by avrocat and python3-avro', async (_label, typeOf) => {
    const type = typeOf();
    const events = sent.get(type)!;
    expect(bed.workers.map((w) => w.stats()[type]?.deadLettered ?? 0)).toEqual([0, 0]);
    const partitions = await bed.delivered(type, periods);
    for (const p of partitions) {
      expect(p.manifest).toMatchObject({ closedBy: 'complete' });
      expect(p.manifest.audit.accepted).toBe(p.manifest.recordCount);
    }

    const read = readIndependently(partitions);
    const expected = Object.fromEntries(events.map((e) => [e.eventId, expectedDigits(e)]));
    expect(Object.keys(expected)).toHaveLength(2 * edges.length);
    expect(read.python).toEqual(expected);
    expect(read.avrocat).toEqual(expected);
  });

  it('the consumer library gives the exact longs, the encrypted one included', async () => {
    await expectConsumerReadsExactly(bed, periods, sent.get(bed.personalType)!);
  });
});
