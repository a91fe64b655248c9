/**
 * Field-encryption cost in the ETL, measured as the issue states it: "the ETL
 * with two personal fields per event next to the same ETL with encryption off".
 *
 * 1. `encrypt` alone (lib/crypto/aead.ts): µs per field.
 * 2. Pub/Sub-free, both paths doing the same work apart from encryption, the
 *    steps of etl/pipeline.ts and etl/stager.ts between a message and a staged
 *    file: decode the message bytes with the writer schema → `transformBatch`
 *    in batches of the ETL's `transformBatchSize` → Avro bytes with the
 *    delivered schema → staged envelope → Avro container bytes (deflate, one
 *    file per `flushRecords` records). Over the same events (two personal
 *    fields each, 2 000 subjects):
 *     - encryption off: `identityTransform`;
 *     - encryption on: `createEncryptionTransform` with keys from a real padlock
 *       started in-process on loopback, through the real client, cache hot
 *       (warmed first).
 *    Prints events/s of both, the ratio (target ≥ 75 %) and the cost of
 *    encryption itself in µs per event (1/on − 1/off). For reference only, the
 *    pipeline's identity shortcut (it keeps the message bytes instead of
 *    re-encoding) is measured too.
 * 3. End to end: the ETL workers (etl/workers.ts) pulling from the Pub/Sub
 *    emulator and staging to the in-process GCS emulator, events/s from worker
 *    start until every event is acked (i.e. durable in staging). Encryption off
 *    uses the same fields without annotations (the ETL refuses personal fields
 *    in clear). `PRIVACY_BENCH_E2E=0` skips this part.
 */
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
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
import { associatedData, encrypt } from '../lib/crypto/aead.ts';
import { silentLogger } from '../lib/logger.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { periodOf } from '../lib/partitions.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';
import type { StagedRecord } from '../etl/envelope.ts';
import { buildStagedFile } from '../etl/files.ts';
import { defaultTuning } from '../etl/config.ts';
import { createEncryptionTransform } from '../etl/encryption-transform.ts';
import { identityTransform, type RecordTransform } from '../etl/transform.ts';
import { loadConfig } from '../functions/padlock/config.ts';
import { startPadlock } from '../functions/padlock/server.ts';
import { serviceEntry } from '../functions/padlock/services.ts';

const EVENTS = 60_000;
const USERS = 2_000;
const ROUNDS = 5;
const PERSONAL_FIELDS = 2;
const BATCH = defaultTuning.transformBatchSize;
const FLUSH_RECORDS = defaultTuning.flushRecords;
const RECEIVE_TIME = 1_700_000_000_000;
const period = periodOf(RECEIVE_TIME, 'hourly');

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
/**
 * The same fields without semantic annotations, for "encryption off" end to
 * end: the ETL refuses to stage a schema whose delivered form holds personal
 * fields in clear. Same Avro encoding, so the same messages.
 */
const plainSchema: AvroSchemaJson = {
  ...schema,
  fields: (schema.fields as Record<string, unknown>[]).map((f) => Object.fromEntries(Object.entries(f).filter(([k]) => k !== 'semanticType'))),
};
const version: SchemaVersion = { version: 1, fingerprint: schemaFingerprint(schema), schema, createdAt: new Date(0).toISOString() };
const writerType = avro.Type.forSchema(schema as avro.Schema);
const messages = Array.from({ length: EVENTS }, (_, i) =>
  writerType.toBuffer({ userId: `user-${i % USERS}`, email: `user-${i % USERS}@mail.example`, ip: `10.0.${i % 250}.${i % 200}`, url: `https://example.com/p/${i}`, durationMs: i, country: 'FR' }),
);

/**
 * The ETL's per-record work for all messages, up to staged file bytes (returned
 * so nothing is optimised away). `keepMessageBytes` is the pipeline's identity
 * shortcut (no transform call, no re-encoding), measured for reference only.
 */
async function processAll(transform: RecordTransform, keepMessageBytes = false): Promise<{ bytes: number; transformMs: number }> {
  const deliveredSchema = transform.deliveredSchema(schema);
  const deliveredType = deliveredSchema === schema ? writerType : avro.Type.forSchema(deliveredSchema as avro.Schema);
  let bytes = 0;
  let transformMs = 0;
  let staged: StagedRecord[] = [];
  const flush = (): void => {
    bytes += buildStagedFile(`bench/staged-${bytes}.avro`, 'page_views', period, staged).length;
    staged = [];
  };
  for (let start = 0; start < messages.length; start += BATCH) {
    const batch = messages.slice(start, start + BATCH).map((data, j) => ({ data, eventId: `ev-${start + j}`, record: writerType.decode(data, 0).value as unknown }));
    const t0 = performance.now();
    const outputs = keepMessageBytes
      ? batch.map((d) => ({ record: d.record, stats: undefined }))
      : await transform.transformBatch('page_views', batch.map((d) => ({ record: d.record, version, eventId: d.eventId })));
    transformMs += performance.now() - t0;
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i]!;
      const out = outputs[i]!;
      const payload = keepMessageBytes ? d.data : deliveredType.toBuffer(out.record);
      staged.push({ eventId: d.eventId, receiveTime: RECEIVE_TIME + start + i, schemaFingerprint: version.fingerprint, stats: out.stats ?? {}, record: payload });
      if (staged.length >= FLUSH_RECORDS) flush();
    }
  }
  if (staged.length > 0) flush();
  return { bytes, transformMs };
}

/** Events/s of one pass, and µs per event spent in `transformBatch`. */
async function rate(transform: RecordTransform, keepMessageBytes = false): Promise<{ perSecond: number; transformMicros: number }> {
  const t0 = performance.now();
  const { transformMs } = await processAll(transform, keepMessageBytes);
  return { perSecond: EVENTS / ((performance.now() - t0) / 1000), transformMicros: (transformMs * 1000) / EVENTS };
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en');

/** µs per `encrypt` call on a value like the bench's e-mail addresses (median of rounds). */
function encryptMicros(): number {
  const key = { keyId: 0x1234_5678, key: randomBytes(32) };
  const ad = associatedData('page_views', 'email');
  const value = Buffer.from('user-1234@mail.example');
  const n = 100_000;
  for (let i = 0; i < 10_000; i++) encrypt(key, value, ad);
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) encrypt(key, value, ad);
    rounds.push(((performance.now() - t0) * 1000) / n);
  }
  return median(rounds);
}

console.log(`encrypt alone (AES-256-GCM, Tink format, ${Buffer.byteLength('user-1234@mail.example')}-byte value): ${encryptMicros().toFixed(2)} µs per field`);

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
  await processAll(identityTransform, true);
  const requestsBefore = keys.stats.requests;

  const off: { perSecond: number; transformMicros: number }[] = [];
  const on: { perSecond: number; transformMicros: number }[] = [];
  const shortcut: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    gc();
    off.push(await rate(identityTransform));
    gc();
    on.push(await rate(encryption));
    gc();
    shortcut.push((await rate(identityTransform, true)).perSecond);
  }
  const b = median(off.map((x) => x.perSecond));
  const e = median(on.map((x) => x.perSecond));
  const transformOff = median(off.map((x) => x.transformMicros));
  const transformOn = median(on.map((x) => x.transformMicros));
  const costMicros = 1e6 / e - 1e6 / b;
  console.log('\nmeasured: the ETL per-record path without Pub/Sub, both paths doing the same work apart from encryption');
  console.log('  (decode → transformBatch → Avro bytes with the delivered schema → staged envelope → Avro container bytes, deflate)');
  console.log(`${EVENTS} events × ${ROUNDS} rounds (median), ${USERS} subjects, ${PERSONAL_FIELDS} personal fields per event, batches of ${BATCH}, files of ${FLUSH_RECORDS} records, padlock in-process, client cache hot (${keys.stats.requests - requestsBefore} padlock requests during the timed rounds)`);
  console.log(`encryption off (identity transform):  ${fmt(b)} events/s  (${(1e6 / b).toFixed(2)} µs/event)`);
  console.log(`encryption on:                        ${fmt(e)} events/s  (${(1e6 / e).toFixed(2)} µs/event, ${fmt(PERSONAL_FIELDS * e)} field encryptions/s)`);
  console.log(`ratio on / off:                       ${((100 * e) / b).toFixed(1)} %  (target ≥ 75 %)`);
  console.log(`cost of encryption:                   ${costMicros.toFixed(2)} µs/event  (${(costMicros / PERSONAL_FIELDS).toFixed(2)} µs per personal field, key lookup included)`);
  console.log(`  of which in transformBatch:          ${transformOn.toFixed(2)} µs/event on, ${transformOff.toFixed(2)} off (the rest: bigger, incompressible records to encode, deflate and collect)`);
  console.log(`for reference, encryption off with the pipeline's shortcut (message bytes kept, no re-encoding): ${fmt(median(shortcut))} events/s`);

  if (process.env.PRIVACY_BENCH_E2E !== '0') await endToEnd(encryption);
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
      const typeSchema = transform === identityTransform ? plainSchema : schema;
      const type = `bench_${name}_${Date.now().toString(36)}`;
      const registry = new MemoryRegistryStore();
      await registry.putEventType(eventTypeRecord(type, [typeSchema]), 0);
      const { topic } = await provisionType(pubsub, type);
      await storage.createBucket(`${type.replace(/_/g, '-')}-staging`);
      await storage.createBucket(`${type.replace(/_/g, '-')}-data`);
      const receive = Date.now();
      await publishEvents(topic, type, typeSchema, messages.slice(0, N).map((data, i) => ({ eventId: `ev-${i}`, receiveTime: receive, payload: writerType.fromBuffer(data) as Record<string, unknown> })));
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
    console.log(`encryption off (identity transform, same fields unannotated):  ${fmt(base)} events/s`);
    console.log(`encryption on:                                                  ${fmt(enc)} events/s`);
    console.log(`ratio on / off:                                                 ${((100 * enc) / base).toFixed(1)} %  (target ≥ 75 %)`);
  } finally {
    await pubsub.close();
    await gcs.close();
    await emulator.stop();
  }
}
