/**
 * ETL workers against the Pub/Sub emulator and the GCS emulator: events come
 * out in the right hourly (and daily) partitions with correct manifests,
 * readable by avsc (and avro-c's avrocat when installed); dead letters; late events.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message } from '@google-cloud/pubsub';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { crc32c, crc32cToBase64 } from '../../lib/crc32c.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { resourceNames } from '../../lib/names.ts';
import { lateCounterObjectName, latePrefix, periodOf, successObjectName } from '../../lib/partitions.ts';
import { silentLogger } from '../../lib/logger.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import {
  eventTypeRecord,
  makeEvents,
  pageViewSchema,
  pageViewSchemaV2,
  provisionType,
  publishEvents,
  readPartition,
  tempFile,
  waitUntil,
  writeAudit,
} from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const fastTuning = {
  flushAgeMs: 300,
  closeCheckIntervalMs: 300,
  closeGraceMs: 500,
  // Past hours of these tests must close by completeness, not by their (long passed) deadline.
  closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
  registryPollMs: 500,
  backoffInitialMs: 50,
  backoffMaxMs: 1000,
  schemaRefreshMinMs: 100,
};

describe('ETL workers', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator;
  let storage: ReturnType<typeof createStorage>;
  const staging = uniqueName('etl', 'staging');
  const data = uniqueName('etl', 'data');
  const registry = new MemoryRegistryStore();
  let workers: EtlWorkers | undefined;

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
  });
  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
    await gcs.close();
  });

  it('delivers events into hourly partitions with correct manifests, readable by avsc and avrocat', async () => {
    const type = uniqueName('etl', 'pv').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [pageViewSchema, pageViewSchemaV2]), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    // Two past hours, two schema versions in the first, plus duplicates (redeliveries / producer retries).
    const v1 = makeEvents(300, (i) => base + (i % 2) * HOUR + i * 1000, 'a');
    const v2 = makeEvents(100, (i) => base + i * 1000, 'b').map((e) => ({ ...e, payload: { ...e.payload, referrer: 'r' } }));
    await publishEvents(topic, type, pageViewSchema, v1);
    await publishEvents(topic, type, pageViewSchemaV2, v2);
    await publishEvents(topic, type, pageViewSchema, v1.slice(0, 50));
    await writeAudit(storage, staging, type, [...v1, ...v2]);

    workers = await startEtlWorkers({ projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, tuning: fastTuning, logger: silentLogger });
    const h0 = periodOf(base, 'hourly');
    const h1 = periodOf(base + HOUR, 'hourly');
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, h1)).exists())[0] && (await storage.bucket(data).file(successObjectName(type, h0)).exists())[0], 60_000)).toBe(true);

    const p0 = (await readPartition(storage, data, type, h0))!;
    const p1 = (await readPartition(storage, data, type, h1))!;
    const expected0 = [...v1.filter((e) => periodOf(e.receiveTime, 'hourly').key === h0.key), ...v2];
    const expected1 = v1.filter((e) => periodOf(e.receiveTime, 'hourly').key === h1.key);
    expect(p0.records.map((r) => r.eventId).sort()).toEqual(expected0.map((e) => e.eventId).sort());
    expect(p1.records.map((r) => r.eventId).sort()).toEqual(expected1.map((e) => e.eventId).sort());
    expect(p0.manifest).toMatchObject({ eventType: type, period: h0.key, recordCount: 250, closedBy: 'complete', audit: { accepted: 250, delivered: 250, complete: true } });
    expect(p0.manifest.schemaFingerprints).toHaveLength(2);
    expect(p0.manifest.files.map((f) => f.name)).toEqual([`${type}/dt=${h0.key.slice(0, 10)}/hour=${h0.key.slice(11)}/part-00000.avro`, `${type}/dt=${h0.key.slice(0, 10)}/hour=${h0.key.slice(11)}/part-00001.avro`]);
    expect(p0.manifest.audit.duplicatesDropped + p1.manifest.audit.duplicatesDropped).toBeGreaterThanOrEqual(0);
    for (const p of [p0, p1]) {
      expect(p.manifest.files.reduce((s, f) => s + f.recordCount, 0)).toBe(p.manifest.recordCount);
      for (const f of p.manifest.files) {
        const bytes = p.fileBytes.get(f.name)!;
        expect(f.size).toBe(bytes.length);
        expect(f.md5Hash).toBe(createHash('md5').update(bytes).digest('base64'));
        expect(f.crc32c).toBe(crc32cToBase64(crc32c(bytes)));
        // avsc's own container reader, independently of ours
        const file = tempFile('part.avro', bytes);
        const viaAvsc = await new Promise<{ eventId: string; payload: { url: string } }[]>((resolve, reject) => {
          const out: { eventId: string; payload: { url: string } }[] = [];
          avro.createFileDecoder(file).on('data', (r: { eventId: string; payload: { url: string } }) => out.push(r)).on('end', () => resolve(out)).on('error', reject);
        });
        expect(viaAvsc).toHaveLength(f.recordCount);
        const ids = viaAvsc.map((r) => r.eventId);
        expect(ids).toEqual([...ids].sort());
        if (existsSync('/usr/bin/avrocat')) {
          const lines = execFileSync('/usr/bin/avrocat', [file], { encoding: 'utf8' }).trim().split('\n');
          expect(lines).toHaveLength(f.recordCount);
        }
      }
    }
    if (!existsSync('/usr/bin/avrocat')) console.log('avrocat check skipped: /usr/bin/avrocat not installed (Debian avro-bin)');
    // Staging is emptied after close.
    const [left] = await storage.bucket(staging).getFiles({ prefix: `staging/${type}/` });
    expect(left).toHaveLength(0);

    // A late event for the closed hour goes to the late location, never into the partition.
    const late = makeEvents(3, (i) => base + i, 'late');
    await publishEvents(topic, type, pageViewSchema, [...late, v1[0]!]);
    expect(await waitUntil(async () => (await storage.bucket(data).file(lateCounterObjectName(type, h0)).exists())[0], 30_000)).toBe(true);
    const [lateFiles] = await storage.bucket(data).getFiles({ prefix: latePrefix(type, h0) });
    expect(lateFiles.some((f) => f.name.endsWith('.avro'))).toBe(true);
    await waitUntil(async () => JSON.parse((await storage.bucket(data).file(lateCounterObjectName(type, h0)).download())[0].toString()).count === 3, 10_000);
    const counter = JSON.parse((await storage.bucket(data).file(lateCounterObjectName(type, h0)).download())[0].toString()) as { count: number };
    expect(counter.count).toBe(3); // v1[0], a redelivery of a delivered id, is not counted
    const again = (await readPartition(storage, data, type, h0))!;
    expect(again.manifest).toEqual(p0.manifest);
  });

  it('dead-letters records that cannot be decoded, with the reason in attributes', async () => {
    const type = uniqueName('etl', 'dl').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type), 0);
    const { topic } = await provisionType(pubsub, type);
    await workers?.refresh();
    workers ??= await startEtlWorkers({ projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, tuning: fastTuning, logger: silentLogger });
    await workers.refresh();
    const now = new Date().toISOString();
    await topic.publishMessage({ data: Buffer.from([0xff, 0xff, 0xff]), attributes: { eventType: type, schemaFingerprint: 'ffffffffffffffff', eventId: 'unknown-fp', receiveTime: now } });
    await topic.publishMessage({ data: Buffer.from([0x02]), attributes: { eventType: type, schemaFingerprint: eventTypeRecord(type).versions[0]!.fingerprint, eventId: 'corrupt', receiveTime: now } });
    const received = await new Promise<Message[]>((resolve, reject) => {
      const got: Message[] = [];
      const sub = pubsub.subscription(resourceNames.deadLetterSubscription(type));
      const timer = setTimeout(() => reject(new Error('no dead letters within 30 s')), 30_000);
      sub.on('message', (m: Message) => {
        m.ack();
        got.push(m);
        if (got.length === 2) {
          clearTimeout(timer);
          void sub.close().then(() => resolve(got));
        }
      });
    });
    const byId = Object.fromEntries(received.map((m) => [m.attributes.eventId, m.attributes]));
    expect(byId['unknown-fp']).toMatchObject({ etlErrorCode: 'DECODE_FAILED', etlDeadLetterReason: 'unknown schema fingerprint', etlAttempts: '3' });
    expect(byId['corrupt']).toMatchObject({ etlErrorCode: 'DECODE_FAILED', etlDeadLetterReason: 'record does not decode with its writer schema' });
  });

  it('closes daily partitions over the 24 hours of audit counts', async () => {
    const type = uniqueName('etl', 'daily').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [pageViewSchema], { partitioning: 'daily' }), 0);
    const { topic } = await provisionType(pubsub, type);
    const day = Math.floor(Date.now() / (24 * HOUR)) * 24 * HOUR - 2 * 24 * HOUR;
    const events = makeEvents(240, (i) => day + (i % 24) * HOUR + i, 'd');
    await publishEvents(topic, type, pageViewSchema, events);
    await writeAudit(storage, staging, type, events);
    await workers!.refresh();
    const period = periodOf(day, 'daily');
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000)).toBe(true);
    const p = (await readPartition(storage, data, type, period))!;
    expect(p.manifest.files[0]!.name).toBe(`${type}/dt=${period.key}/part-00000.avro`);
    expect(p.manifest).toMatchObject({ partitioning: 'daily', recordCount: 240, closedBy: 'complete', audit: { accepted: 240, delivered: 240 } });
  });
});
