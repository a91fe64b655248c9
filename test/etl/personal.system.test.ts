/**
 * The ETL never writes personal fields in clear: a type whose schema has
 * personal fields gets no pipeline without an encryption transform (refused,
 * logged, counted; other types keep running), a running type that gains such
 * a version is stopped, and with the encryption transform the type runs.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message } from '@google-cloud/pubsub';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { createLogger } from '../../lib/logger.ts';
import { FakeKeySource } from '../../lib/privacy/test-keys.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { resourceNames } from '../../lib/names.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { avroType } from '../../lib/avro/long.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, waitUntil } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';

const signUpSchema: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'url', type: 'string' },
    { name: 'durationMs', type: 'long' },
  ],
};
const tuning = { flushAgeMs: 200, registryPollMs: 60_000, schemaRefreshMinMs: 50, backoffInitialMs: 50, backoffMaxMs: 500 };

describe('ETL and personal fields', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator;
  let storage: ReturnType<typeof createStorage>;
  const staging = uniqueName('etlpii', 'staging');
  const data = uniqueName('etlpii', 'data');
  const open: EtlWorkers[] = [];

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
  });
  afterAll(async () => {
    for (const w of open) await w.close();
    await pubsub.close();
    await gcs.close();
  });

  const stagedUnder = async (type: string): Promise<number> => (await storage.bucket(staging).getFiles({ prefix: `staging/${type}/` }))[0].length;

  it('refuses a type with personal fields without encryption, keeps the others running, and stops a type that gains one', async () => {
    const registry = new MemoryRegistryStore();
    const plain = uniqueName('pii', 'plain').replace(/-/g, '_');
    const personal = uniqueName('pii', 'personal').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(plain), 0);
    await registry.putEventType(eventTypeRecord(personal, [signUpSchema]), 0);
    const { topic: plainTopic } = await provisionType(pubsub, plain);
    const { topic: personalTopic } = await provisionType(pubsub, personal);
    const now = Date.now();
    await publishEvents(personalTopic, personal, signUpSchema, makeEvents(20, () => now, 's').map((e) => ({ ...e, payload: { ...e.payload, email: 'a@b.example' } })));
    await publishEvents(plainTopic, plain, pageViewSchema, makeEvents(30, () => now, 'p'));

    const logs: { severity: string; message: string; eventType?: string; fields?: string[] }[] = [];
    const logger = createLogger({ component: 'etl', sink: (line) => logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const workers = await startEtlWorkers({ projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, eventTypes: [plain, personal], tuning, logger });
    open.push(workers);

    expect(workers.eventTypes()).toEqual([plain]);
    expect(workers.refused()[personal]).toMatchObject({ code: 'CONFIG_INVALID', versions: [{ version: 1, fields: ['email'] }] });
    expect(workers.refused()[personal]!.message).toContain('PADLOCK_URL');
    expect(workers.hostMetrics().pipelinesRefused).toBe(1);
    expect(logs.filter((l) => l.severity === 'ERROR' && l.eventType === personal)).toHaveLength(1);
    expect(logs.find((l) => l.eventType === personal)?.fields).toEqual(['email']);

    // The other type is delivered; the refused type's messages stay in its subscription, nothing staged.
    expect(await waitUntil(() => (workers.stats()[plain]?.acked ?? 0) === 30, 20_000)).toBe(true);
    expect(await stagedUnder(plain)).toBeGreaterThan(0);
    expect(await stagedUnder(personal)).toBe(0);
    expect(await pullCount(resourceNames.etlSubscription(personal), 20)).toBe(20);

    // A re-poll does not log or count the same refusal again.
    await workers.refresh();
    expect(workers.hostMetrics().pipelinesRefused).toBe(1);

    // The running type gains a version with a personal field: records of it are kept un-acked, the pipeline stops.
    const v2: AvroSchemaJson = { ...signUpSchema, name: 'PageViewV2' };
    await registry.putEventType(eventTypeRecord(plain, [pageViewSchema, v2]), 1);
    await publishEvents(plainTopic, plain, v2, makeEvents(5, () => now, 'p2').map((e) => ({ ...e, payload: { ...e.payload, email: 'c@d.example' } })));
    expect(await waitUntil(() => workers.eventTypes().length === 0, 20_000)).toBe(true);
    expect(workers.refused()[plain]).toMatchObject({ versions: [{ version: 2, fields: ['email'] }] });
    expect(workers.hostMetrics().pipelinesRefused).toBe(2);
    expect(await pullCount(resourceNames.etlSubscription(plain), 5)).toBe(5);
  });

  it('runs the type with the encryption transform', async () => {
    const registry = new MemoryRegistryStore();
    const type = uniqueName('pii', 'enc').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [signUpSchema]), 0);
    const { topic } = await provisionType(pubsub, type);
    await publishEvents(topic, type, signUpSchema, makeEvents(25, () => Date.now(), 'e').map((e) => ({ ...e, payload: { ...e.payload, email: 'x@y.example' } })));
    const workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      eventTypes: [type],
      tuning,
      transform: createEncryptionTransform({ keys: new FakeKeySource() }),
      logger: createLogger({ component: 'etl', sink: () => {} }),
    });
    open.push(workers);
    expect(workers.eventTypes()).toEqual([type]);
    expect(workers.refused()).toEqual({});
    expect(await waitUntil(() => (workers.stats()[type]?.acked ?? 0) === 25, 20_000)).toBe(true);
    const [files] = await storage.bucket(staging).getFiles({ prefix: `staging/${type}/` });
    const bytes = Buffer.concat(await Promise.all(files.map(async (f) => (await f.download())[0])));
    expect(bytes.includes(Buffer.from('x@y.example'))).toBe(false);

    // The pipeline leaves the exactness check to this transform's byte scan (checksEncoded): bytes that are not one datum are dead-lettered.
    const fingerprint = eventTypeRecord(type, [signUpSchema]).versions[0]!.fingerprint;
    const good = avroType(signUpSchema).toBuffer({ userId: 'u-1', email: 'x@y.example', url: '/', durationMs: 1 });
    const receiveTime = new Date().toISOString();
    const malformed = { truncated: good.subarray(0, good.length - 1), trailing: Buffer.concat([good, Buffer.from([0])]), 'negative-length': Buffer.from([0x01]) };
    for (const [eventId, data] of Object.entries(malformed)) await topic.publishMessage({ data, attributes: { eventType: type, schemaFingerprint: fingerprint, eventId, receiveTime } });
    const dead = await pullAttributes(resourceNames.deadLetterSubscription(type), 3);
    expect(new Set(dead.keys())).toEqual(new Set(Object.keys(malformed)));
    for (const attributes of dead.values()) expect(attributes).toMatchObject({ etlErrorCode: 'DECODE_FAILED', etlDeadLetterReason: 'record does not decode with its writer schema' });
    expect(workers.stats()[type]).toMatchObject({ acked: 25, deadLettered: 3 });
  });

  /** Receives (and acks) what is left in a subscription: the distinct event ids, once `expected` arrived or after a bounded wait. */
  async function pullCount(subscription: string, expected: number): Promise<number> {
    return (await pullAttributes(subscription, expected)).size;
  }

  /** Receives (and acks) what is left in a subscription: each distinct event id's attributes, once `expected` arrived or after a bounded wait. */
  async function pullAttributes(subscription: string, expected: number): Promise<Map<string, Record<string, string>>> {
    const ids = new Map<string, Record<string, string>>();
    const sub = pubsub.subscription(subscription);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 15_000);
      sub.on('message', (m: Message) => {
        m.ack();
        ids.set(m.attributes.eventId ?? '', m.attributes);
        if (ids.size >= expected) {
          clearTimeout(timer);
          // a little longer, so an unexpected extra message would be counted too
          setTimeout(resolve, 500);
        }
      });
    });
    await sub.close();
    return ids;
  }
});
