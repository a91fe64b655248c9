/**
 * 64-bit longs end to end through the ETL: records published directly to
 * Pub/Sub (the message contract of lib/events/contract.ts) with longs at the
 * edges of the range are delivered, never dead-lettered, and the closed
 * partitions read back exactly with two independent Avro implementations
 * (avro-c's `avrocat`, Debian's python3-avro) and with our consumer (library
 * and the decrypt CLI's JSON lines), with field encryption off and on.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Storage } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../lib/gcs-emulator/index.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { silentLogger } from '../lib/logger.ts';
import { partitionPrefix, periodOf, successObjectName, type Period } from '../lib/partitions.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { decryptPartition } from '../lib/privacy/consumer.ts';
import { RecordDecryptor } from '../lib/privacy/decryptor.ts';
import { gcsPartitionSource } from '../lib/privacy/partition-reader.ts';
import { createEncryptionTransform } from '../etl/encryption-transform.ts';
import { startEtlWorkers, type EtlWorkers } from '../etl/workers.ts';
import { eventTypeRecord, provisionType, publishEvents, readPartition, tempFile, waitUntil, writeAudit, type TestEvent } from '../etl/test-support.ts';
import { loadConfig as loadPadlockConfig } from '../functions/padlock/config.ts';
import { startPadlock, type RunningPadlock } from '../functions/padlock/server.ts';
import { serviceEntry } from '../functions/padlock/services.ts';
import { uniqueName } from './helpers/names.ts';

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

const toolsPresent = spawnSync(PYTHON, ['-c', 'import avro.datafile'], { encoding: 'utf8' }).status === 0 && spawnSync(AVROCAT, ['--help'], { encoding: 'utf8' }).error === undefined;
if (!toolsPresent) console.warn('SKIPPED etl-long: needs Debian avro-bin (avrocat) and python3-avro (`apt-get install -y avro-bin python3-avro`, as .ci/run does)');

describe.skipIf(!toolsPresent)('exact 64-bit longs through the ETL (direct publishes)', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const staging = uniqueName('long', 'staging');
  const data = uniqueName('long', 'data');
  const plainType = uniqueName('long', 'plain').replace(/-/g, '_').slice(0, 60);
  const personalType = uniqueName('long', 'pers').replace(/-/g, '_').slice(0, 60);
  const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
  const period: Period = periodOf(base, 'hourly');
  const plainEvents = eventsFor('plain', base + 1000, false);
  const personalEvents = eventsFor('pers', base + 1000, true);
  let gcs: GcsEmulator;
  let storage: Storage;
  let padlock: RunningPadlock;
  const workers: EtlWorkers[] = [];

  beforeAll(async () => {
    padlock = await startPadlock(
      loadPadlockConfig({
        PADLOCK_PORT: '0',
        PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', secrets.etl, { contexts: ['events'] }), serviceEntry('analytics', secrets.analytics, { contexts: ['events'] })]),
        PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'long-padlock-')),
      }),
      { logger: silentLogger },
    );
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(plainType, [plainSchema]), 0);
    await registry.putEventType(eventTypeRecord(personalType, [personalSchema]), 0);
    for (const [type, schema, events] of [
      [plainType, plainSchema, plainEvents],
      [personalType, personalSchema, personalEvents],
    ] as const) {
      const { topic } = await provisionType(pubsub, type);
      await publishEvents(topic, type, schema, events);
      await writeAudit(storage, staging, type, events);
    }
    const common = { projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, tuning, logger: silentLogger };
    // Encryption off: the ETL decodes (to validate) and keeps the original bytes.
    workers.push(await startEtlWorkers({ ...common, eventTypes: [plainType] }));
    // Encryption on: every record is re-encoded in its delivered schema.
    const keys = createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl });
    workers.push(await startEtlWorkers({ ...common, eventTypes: [personalType], transform: createEncryptionTransform({ keys, logger: silentLogger }) }));
    const closed = async (type: string): Promise<boolean> => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0];
    expect(await waitUntil(async () => (await closed(plainType)) && (await closed(personalType)), 60_000)).toBe(true);
  });

  afterAll(async () => {
    for (const w of workers) await w.close();
    await pubsub.close();
    await gcs?.close();
    await padlock?.close();
  });

  it.each([
    ['encryption off', () => plainType, () => plainEvents],
    ['encryption on', () => personalType, () => personalEvents],
  ])('%s: every record delivered, none dead-lettered, read back exactly by avrocat and python3-avro', async (_label, typeOf, eventsOf) => {
    const type = typeOf();
    const events = eventsOf();
    expect(workers.map((w) => w.stats()[type]?.deadLettered ?? 0)).toEqual([0, 0]);
    const partition = (await readPartition(storage, data, type, period))!;
    expect(partition.manifest).toMatchObject({ recordCount: events.length, closedBy: 'complete', audit: { accepted: events.length, delivered: events.length } });

    const files = [...partition.fileBytes].map(([name, bytes]) => tempFile(path.posix.basename(name), bytes));
    const read = JSON.parse(execFileSync(PYTHON, ['-c', pythonReader, ...files], { encoding: 'utf8' })) as ReaderOutput;
    const expected = Object.fromEntries(events.map((e) => [e.eventId, expectedDigits(e)]));
    const viaPython = Object.assign({}, ...Object.values(read).map((r) => r.python)) as Record<string, string[]>;
    const viaAvrocat = Object.assign({}, ...Object.values(read).map((r) => r.avrocat)) as Record<string, string[]>;
    expect(viaPython).toEqual(expected);
    expect(viaAvrocat).toEqual(expected);
  });

  it('the consumer library and the decrypt CLI give the exact longs, the encrypted one included', async () => {
    const source = gcsPartitionSource(storage, { bucket: data, prefix: partitionPrefix(personalType, period) });
    const keys = createPadlockClient({ url: padlock.url, service: 'analytics', secret: secrets.analytics });
    const { events, stats } = await decryptPartition(source, new RecordDecryptor({ keys }));
    expect(stats.unreadable).toEqual({});
    expect(stats.decrypted).toBe(personalEvents.length);
    const byId = new Map(events.map((e) => [e.eventId, e.payload]));
    for (const e of personalEvents) expect(byId.get(e.eventId)).toEqual(e.payload);

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
