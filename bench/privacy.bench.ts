/**
 * Field-encryption cost in the ETL's per-record path, Pub/Sub-free: decode the
 * message bytes with the writer schema → transform in batches of the ETL's
 * `transformBatchSize` → delivered Avro bytes → staged envelope (etl/envelope.ts),
 * exactly the steps of etl/pipeline.ts between a message and the stager.
 *
 * Two runs over the same events (two personal fields each, 2 000 subjects):
 *  - baseline: the identity transform (the pipeline keeps the message bytes);
 *  - encryption: `createEncryptionTransform` with keys from a real padlock started
 *    in-process on loopback, through the real client, cache hot (warmed first).
 * Prints events/s of both and the ratio (target ≥ 75 %).
 *
 * Then the same comparison end to end: the ETL workers (etl/workers.ts) pulling
 * from the Pub/Sub emulator and staging to the in-process GCS emulator, events/s
 * from worker start until every event is acked (i.e. durable in staging).
 */
import { mkdtempSync } from 'node:fs';
import { startPubSubEmulator } from '../lib/emulators/google.ts';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../lib/gcs-emulator/index.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { startEtlWorkers } from '../etl/workers.ts';
import { eventTypeRecord, provisionType, publishEvents } from '../etl/test-support.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import avro from 'avsc';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { silentLogger } from '../lib/logger.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';
import { encodeStaged } from '../etl/envelope.ts';
import { defaultTuning } from '../etl/config.ts';
import { createEncryptionTransform } from '../etl/encryption-transform.ts';
import { identityTransform, type RecordTransform } from '../etl/transform.ts';
import { loadConfig } from '../functions/padlock/config.ts';
import { startPadlock } from '../functions/padlock/server.ts';
import { serviceEntry } from '../functions/padlock/services.ts';

const EVENTS = 60_000;
const USERS = 2_000;
const ROUNDS = 3;
const BATCH = defaultTuning.transformBatchSize;

const schema: AvroSchemaJson = {
  type: 'record',
  name: 'PageView',
  namespace: 'com.example',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'ip', type: ['null', 'string'], default: null, semanticType: 'ipAddress' },
    { name: 'url', type: 'string' },
    { name: 'durationMs', type: 'long' },
    { name: 'country', type: 'string', semanticType: 'country' },
  ],
};
const version: SchemaVersion = { version: 1, fingerprint: schemaFingerprint(schema), schema, createdAt: new Date(0).toISOString() };
const writerType = avro.Type.forSchema(schema as avro.Schema);
const messages = Array.from({ length: EVENTS }, (_, i) =>
  writerType.toBuffer({ userId: `user-${i % USERS}`, email: `user-${i % USERS}@mail.example`, ip: `10.0.${i % 250}.${i % 200}`, url: `https://example.com/p/${i}`, durationMs: i, country: 'FR' }),
);

/** The pipeline's per-record work for all messages; returns staged bytes (kept so nothing is optimised away). */
async function processAll(transform: RecordTransform): Promise<number> {
  const identity = transform === identityTransform;
  const deliveredSchema = transform.deliveredSchema(schema);
  const deliveredType = deliveredSchema === schema ? writerType : avro.Type.forSchema(deliveredSchema as avro.Schema);
  let bytes = 0;
  for (let start = 0; start < messages.length; start += BATCH) {
    const batch = messages.slice(start, start + BATCH).map((data, j) => ({ data, eventId: `ev-${start + j}`, record: writerType.decode(data, 0).value as unknown }));
    const outputs = identity
      ? batch.map((d) => ({ record: d.record, stats: undefined }))
      : await transform.transformBatch('page_views', batch.map((d) => ({ record: d.record, version, eventId: d.eventId })));
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i]!;
      const out = outputs[i]!;
      const payload = identity ? d.data : deliveredType.toBuffer(out.record);
      bytes += encodeStaged({ eventId: d.eventId, receiveTime: 1_700_000_000_000 + start + i, schemaFingerprint: version.fingerprint, stats: out.stats ?? {}, record: payload }).length;
    }
  }
  return bytes;
}

async function rate(transform: RecordTransform): Promise<number> {
  const t0 = performance.now();
  await processAll(transform);
  return EVENTS / ((performance.now() - t0) / 1000);
}

const secret = 'bench-etl-secret-0123456789';
const padlock = await startPadlock(
  loadConfig({ PADLOCK_PORT: '0', PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', secret, { contexts: ['events'] })]), PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'privacy-bench-')), PADLOCK_CACHE_TTL_MS: '600000' }),
  { logger: silentLogger },
);
try {
  const keys = createPadlockClient({ url: padlock.url, service: 'etl', secret, cacheTtlMs: 600_000 });
  const encryption = createEncryptionTransform({ keys, logger: silentLogger });
  // Warm-up: JIT, keychain creation for every subject, hot client cache.
  await processAll(encryption);
  await processAll(identityTransform);
  const requestsBefore = keys.stats.requests;

  const base: number[] = [];
  const enc: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    (globalThis as { gc?: () => void }).gc?.();
    base.push(await rate(identityTransform));
    (globalThis as { gc?: () => void }).gc?.();
    enc.push(await rate(encryption));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const b = median(base);
  const e = median(enc);
  console.log('measured: the ETL per-record path without Pub/Sub (decode → transform → delivered Avro bytes → staged envelope)');
  console.log(`${EVENTS} events × ${ROUNDS} rounds, ${USERS} subjects, 2 personal fields per event, batches of ${BATCH}, padlock in-process, client cache hot (${keys.stats.requests - requestsBefore} padlock requests during the timed rounds)`);
  console.log(`identity transform (baseline):  ${Math.round(b).toLocaleString('en')} events/s`);
  console.log(`encryption transform:           ${Math.round(e).toLocaleString('en')} events/s  (${Math.round(2 * e).toLocaleString('en')} field encryptions/s)`);
  console.log(`ratio encryption / identity:    ${((100 * e) / b).toFixed(1)} %  (target ≥ 75 %)`);

  await endToEnd(encryption);
} finally {
  await padlock.close();
}

/** Events/s of the ETL workers, Pub/Sub emulator → ETL → GCS emulator staging, both transforms. */
async function endToEnd(encryption: RecordTransform): Promise<void> {
  const N = 20_000;
  const projectId = 'bench-project';
  const emulator = await startPubSubEmulator();
  const gcs = await startGcsEmulator();
  const pubsub = createPubSub({ projectId, emulatorHost: emulator.host });
  const storage = createStorage({ projectId, apiEndpoint: gcs.url });
  try {
    const results: Record<string, number> = {};
    for (const [name, transform] of [['identity', identityTransform], ['encryption', encryption], ['identity2', identityTransform], ['encryption2', encryption]] as const) {
      const type = `bench_${name}_${Date.now().toString(36)}`;
      const registry = new MemoryRegistryStore();
      await registry.putEventType(eventTypeRecord(type, [schema]), 0);
      const { topic } = await provisionType(pubsub, type);
      await storage.createBucket(`${type.replace(/_/g, '-')}-staging`);
      await storage.createBucket(`${type.replace(/_/g, '-')}-data`);
      const receive = Date.now();
      await publishEvents(topic, type, schema, messages.slice(0, N).map((data, i) => ({ eventId: `ev-${i}`, receiveTime: receive, payload: writerType.fromBuffer(data) as Record<string, unknown> })));
      const t0 = performance.now();
      const workers = await startEtlWorkers({
        projectId, pubsub, storage, registry, eventTypes: [type], transform, logger: silentLogger, closeEnabled: false,
        // Flush staged files by size or after 100 ms, so the age threshold does not pace the run.
        tuning: { flushAgeMs: 100 },
        stagingBucket: `${type.replace(/_/g, '-')}-staging`, dataBucket: `${type.replace(/_/g, '-')}-data`,
      });
      const deadline = Date.now() + 60_000;
      while ((workers.stats()[type]?.acked ?? 0) < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const acked = workers.stats()[type]?.acked ?? 0;
      results[name] = acked / ((performance.now() - t0) / 1000);
      await workers.close();
      if (acked < N) console.log(`${name}: only ${acked}/${N} acked within 60 s`);
    }
    const base = Math.max(results.identity ?? 0, results.identity2 ?? 0);
    const enc = Math.max(results.encryption ?? 0, results.encryption2 ?? 0);
    console.log(`\nmeasured: end to end, ETL workers pulling ${N} events from the Pub/Sub emulator, staging to the GCS emulator (best of 2 each)`);
    console.log(`identity transform (baseline):  ${Math.round(base).toLocaleString('en')} events/s`);
    console.log(`encryption transform:           ${Math.round(enc).toLocaleString('en')} events/s`);
    console.log(`ratio encryption / identity:    ${((100 * enc) / base).toFixed(1)} %  (target ≥ 75 %)`);
  } finally {
    await pubsub.close();
    await gcs.close();
    await emulator.stop();
  }
}
