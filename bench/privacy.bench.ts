/**
 * Field-encryption cost in the ETL, as issue 20 states it: CPU per event of
 * the production pipeline with 2 personal fields encrypted, next to the
 * production encryption-off path.
 *
 * 1. `encrypt` alone (lib/crypto/aead.ts: the native OpenSSL sealer when
 *    built, `npm run build:native`), CPU µs per value, beside node:crypto's
 *    `createCipheriv` sequence for the same value (the library's way).
 * 2. The production ETL with only Pub/Sub replaced (bench/etl-harness.ts:
 *    fake messages into the real pipeline's handler, staged to an in-process
 *    GCS emulator, timed until every message is acked), over the same ~500 B
 *    purchases (2 personal fields, 2 000 subjects):
 *     - encryption off: `identityTransform`, the production identity path
 *       (the pipeline keeps the message bytes, no re-encoding); the same
 *       fields unannotated, since the ETL refuses personal fields in clear;
 *     - encryption on: `createEncryptionTransform` with keys from a real
 *       padlock started in-process on loopback, through the real client,
 *       cache hot (warmed first).
 *    Alternating runs; prints CPU µs per event (process CPU / events) and
 *    events/s of both, median (min–max), and the CPU ratio on / off
 *    (target ≤ 2×).
 * The GCS emulator runs in a child process (`BENCH_GCS=child` unless set), so
 * the CPU figures are the ETL's own.
 * 3. `PRIVACY_BENCH_E2E=1`: end to end, the ETL workers pulling from the
 *    Pub/Sub emulator (there the emulator caps both paths' wall-clock rate).
 * `PRIVACY_BENCH_ONLY=on` (or `off`) runs one path alone (and not 1.), so
 * that each path can be measured in processes of its own, as in a worker
 * hosting one type:
 *   for i in 1 2 3 4; do for p in off on; do PRIVACY_BENCH_ONLY=$p npm run bench privacy; done; done
 */
import { mkdtempSync } from 'node:fs';
import { startPubSubEmulator } from '../emulators/google/google.ts';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { startEtlWorkers } from '../etl/workers.ts';
import { eventTypeRecord, provisionType, publishEvents } from '../test/support/etl.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aeadImplementation, associatedData, encrypt } from '../lib/crypto/aead.ts';
import { silentLogger } from '../lib/logger.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { createEncryptionTransform } from '../etl/encryption-transform.ts';
import { identityTransform, type RecordTransform } from '../etl/transform.ts';
import { loadConfig } from '../functions/padlock/config.ts';
import { createCipheriv, randomBytes } from 'node:crypto';
import { startPadlock } from '../functions/padlock/server.ts';
import { serviceEntry } from '../functions/padlock/services.ts';
import {
  cpuMicrosPerEvent,
  fmt,
  gc,
  perSecond,
  purchaseMessages,
  purchaseSchema,
  purchaseSchemaPlain,
  showSpread,
  spread,
  startEtlHarness,
  startStagingEmulator,
  writerType,
  type RunFigures,
} from './etl-harness.ts';

process.env.BENCH_GCS ??= 'child';
const EVENTS = 30_000;
const USERS = 2_000;
const ROUNDS = 5;
const PERSONAL_FIELDS = 2;
const messages = purchaseMessages(EVENTS, USERS);
const only = process.env.PRIVACY_BENCH_ONLY;
if (only !== undefined && only !== 'on' && only !== 'off') throw new Error(`PRIVACY_BENCH_ONLY must be on or off, not ${only}`);
const paths: readonly boolean[] = only === undefined ? [false, true] : [only === 'on'];

/** CPU µs per call of `f` on a value like the bench's e-mail addresses, over 2,000 subjects' keys (median of rounds). */
function cpuMicrosPerValue(f: (key: { keyId: number; key: Buffer }, value: Buffer, ad: Buffer) => unknown): number {
  const keys = Array.from({ length: USERS }, (_, i) => ({ keyId: i + 1, key: randomBytes(32) }));
  const ad = associatedData('page_views', 'email');
  const value = Buffer.from('user-1234@mail.example');
  const n = 100_000;
  for (let i = 0; i < 10_000; i++) f(keys[i % USERS]!, value, ad);
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu = process.cpuUsage();
    for (let i = 0; i < n; i++) f(keys[i % USERS]!, value, ad);
    const used = process.cpuUsage(cpu);
    rounds.push((used.user + used.system) / n);
  }
  return spread(rounds).median;
}

/** IVs for the baseline, drawn in bulk as lib/crypto/aead.ts does (a `randomBytes(12)` per value costs ≈ 3 µs more). */
const baselineIvs = randomBytes(12 * 4096);
let baselineIv = 0;

/** node:crypto's AES-256-GCM in Tink's format, as a program using the library would write it at its best. */
function nodeCryptoEncrypt(key: { keyId: number; key: Buffer }, value: Buffer, ad: Buffer): Buffer {
  baselineIv = (baselineIv + 12) % baselineIvs.length;
  const iv = baselineIvs.subarray(baselineIv, baselineIv + 12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(ad);
  const prefix = Buffer.from([1, 0, 0, 0, 0]);
  prefix.writeUInt32BE(key.keyId, 1);
  return Buffer.concat([prefix, iv, cipher.update(value), cipher.final(), cipher.getAuthTag()]);
}

// One path alone is measured as a worker would run it: without the sealing comparison's garbage in its heap.
if (only === undefined) {
  const valueBytes = Buffer.byteLength('user-1234@mail.example');
  const ours = cpuMicrosPerValue(encrypt);
  const library = cpuMicrosPerValue(nodeCryptoEncrypt);
  console.log(`AES-256-GCM of a ${valueBytes}-byte value in Tink format, CPU µs per value: ${ours.toFixed(2)} (lib/crypto/aead.ts encrypt, ${aeadImplementation}) against ${library.toFixed(2)} (node:crypto createCipheriv, IVs drawn in bulk): ${(library / ours).toFixed(1)}× cheaper`);
}
if (aeadImplementation !== 'native') console.log('the native sealer is not built (npm run build:native): lib/crypto/aead.ts uses node:crypto');

const secret = 'bench-etl-secret-0123456789';
const padlock = await startPadlock(
  loadConfig({ PADLOCK_PORT: '0', PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', secret, { contexts: ['events'] })]), PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'privacy-bench-')), PADLOCK_CACHE_TTL_MS: '600000' }),
  { logger: silentLogger },
);
const gcs = await startStagingEmulator();
try {
  const keys = createPadlockClient({ url: padlock.url, service: 'etl', secret, cacheTtlMs: 600_000 });
  const encryption = createEncryptionTransform({ keys, logger: silentLogger });
  const offEtl = paths.includes(false) ? await startEtlHarness(gcs, purchaseSchemaPlain, identityTransform) : undefined;
  const onEtl = paths.includes(true) ? await startEtlHarness(gcs, purchaseSchema, encryption) : undefined;
  // Warm-up: JIT, buckets, keychain creation for every subject, hot client cache.
  await onEtl?.run(messages);
  await offEtl?.run(messages);
  const requestsBefore = keys.stats.requests;

  const off: RunFigures[] = [];
  const on: RunFigures[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so neither path always runs on the warmer heap.
    for (const encrypted of r % 2 === 0 ? paths : [...paths].reverse()) {
      gc();
      if (encrypted) on.push(await onEtl!.run(messages));
      else off.push(await offEtl!.run(messages));
    }
  }
  await offEtl?.close();
  await onEtl?.close();
  const us = (n: number): string => n.toFixed(2);
  const meanBytes = messages.reduce((n, m) => n + m.length, 0) / messages.length;
  console.log(`\nmeasured: the production ETL pipeline with only Pub/Sub replaced, staging to a GCS emulator (${gcs.where}) until every message is acked`);
  console.log(`${EVENTS} events of ${Math.round(meanBytes)} B mean × ${ROUNDS} rounds ${only === undefined ? 'alternating' : `of one path alone (PRIVACY_BENCH_ONLY=${only})`}, median (min–max); ${USERS} subjects, ${PERSONAL_FIELDS} personal fields per event; padlock in-process, client cache hot (${keys.stats.requests - requestsBefore} padlock requests during the timed rounds)`);
  console.log(`CPU µs/event = process CPU time / events; GCS emulator ${gcs.where}${gcs.where === 'in process' ? ' (its CPU included; BENCH_GCS=child excludes it)' : ''}`);
  if (off.length > 0) console.log(`encryption off (production identity path): ${showSpread(off.map(cpuMicrosPerEvent), us)} CPU µs/event, ${showSpread(off.map(perSecond))} events/s`);
  if (on.length > 0) console.log(`encryption on (2 fields):                   ${showSpread(on.map(cpuMicrosPerEvent), us)} CPU µs/event, ${showSpread(on.map(perSecond))} events/s`);
  if (off.length > 0 && on.length > 0) {
    const cpuOff = spread(off.map(cpuMicrosPerEvent)).median;
    const cpuOn = spread(on.map(cpuMicrosPerEvent)).median;
    console.log(`CPU per event on / off:                     ${(cpuOn / cpuOff).toFixed(2)}×  (target ≤ 2×); throughput on / off ${(spread(on.map(perSecond)).median / spread(off.map(perSecond)).median).toFixed(2)}`);
    console.log(`cost of encryption:                         ${(cpuOn - cpuOff).toFixed(2)} CPU µs/event (${((cpuOn - cpuOff) / PERSONAL_FIELDS).toFixed(2)} per personal field: key lookup, scan, AES-GCM, splice and the larger staged files included)`);
  }

  if (process.env.PRIVACY_BENCH_E2E === '1') await endToEnd(encryption);
} finally {
  await gcs.close();
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
      const typeSchema = transform === identityTransform ? purchaseSchemaPlain : purchaseSchema;
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
    console.log(`ratio on / off:                                                 ${((100 * enc) / base).toFixed(1)} %  (the Pub/Sub emulator caps both paths here)`);
  } finally {
    await pubsub.close();
    await gcs.close();
    await emulator.stop();
  }
}
