/**
 * A record whose data subject is not a user id (lib/user-id.ts), or whose
 * subject's stored key does not unwrap, never holds back its type: the ETL,
 * encrypting with keys from a real padlock, dead-letters that record alone with
 * the reason, and stages every other record of its batch (issue 23, finding 5). Pub/Sub emulator, GCS emulator and padlock are real.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Message } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { createLogger } from '../../lib/logger.ts';
import { resourceNames } from '../../lib/names.ts';
import { createPadlockClient } from '../../lib/padlock-client/index.ts';
import { DEFAULT_KEY_CONTEXT } from '../../lib/privacy/delivered-schema.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { loadConfig as loadPadlockConfig } from '../../functions/padlock/config.ts';
import { embeddedKeychainFile } from '../../functions/padlock/embedded-store.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { readStagedFile } from '../../etl/files.ts';
import { deadLetterAttributes } from '../../etl/pipeline.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, provisionType, publishEvents, waitUntil, type TestEvent } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';

const signUpSchema: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
  ],
};
const ETL_SECRET = 'etl-secret-for-subject-tests-0123456789';

describe('ETL and invalid subjects', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator;
  let padlock: RunningPadlock;
  const open: EtlWorkers[] = [];
  const padlockDir = mkdtempSync(path.join(tmpdir(), 'etl-subjects-padlock-'));
  const staging = uniqueName('etlsubj', 'staging');
  const data = uniqueName('etlsubj', 'data');

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    const storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
    padlock = await startPadlock(
      loadPadlockConfig({
        PADLOCK_PORT: '0',
        PADLOCK_DATA_DIR: padlockDir,
        PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', ETL_SECRET, { contexts: [DEFAULT_KEY_CONTEXT] })]),
      }),
      { logger: createLogger({ component: 'padlock', sink: () => {} }) },
    );
  });
  afterAll(async () => {
    for (const w of open) await w.close();
    await padlock.close();
    await pubsub.close();
    await gcs.close();
  });

  it('dead-letters only the records whose subject is not a user id, with the reason, and stages the rest of their batch', async () => {
    const storage = createStorage({ projectId, apiEndpoint: gcs.url });
    const registry = new MemoryRegistryStore();
    const type = uniqueName('subj', 'signup').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [signUpSchema]), 0);
    const { topic } = await provisionType(pubsub, type);

    const now = Date.now();
    const good: TestEvent[] = Array.from({ length: 300 }, (_, i) => ({
      eventId: `good-${i}`,
      receiveTime: now,
      payload: { userId: `user-${i}`, email: `u${i}@x.example` },
    }));
    const bad: (TestEvent & { why: RegExp })[] = [
      { eventId: 'bad-long-utf8', receiveTime: now, payload: { userId: 'é'.repeat(200), email: 'a@x.example' }, why: /subject userId: must be at most 256 bytes in UTF-8/ },
      { eventId: 'bad-long-ascii', receiveTime: now, payload: { userId: 'x'.repeat(257), email: 'b@x.example' }, why: /subject userId: must be at most 256 bytes in UTF-8/ },
      { eventId: 'bad-empty', receiveTime: now, payload: { userId: '', email: 'c@x.example' }, why: /subject userId: must not be empty/ },
    ];
    // The bad records sit amid the good ones, in the same transform batches.
    await publishEvents(topic, type, signUpSchema, [...good.slice(0, 100), bad[0]!, ...good.slice(100, 200), bad[1]!, bad[2]!, ...good.slice(200)]);

    const workers = await startWorkers(registry, type);
    const stats = () => workers.stats()[type];
    expect(await waitUntil(() => (stats()?.acked ?? 0) >= good.length && (stats()?.deadLettered ?? 0) >= bad.length, 60_000)).toBe(true);
    expect(stats()).toMatchObject({ acked: good.length, deadLettered: bad.length });

    // Every good record is staged, no bad one.
    const staged = new Set<string>();
    const [files] = await storage.bucket(staging).getFiles({ prefix: `staging/${type}/` });
    for (const f of files) for (const r of await readStagedFile(storage.bucket(staging), f.name)) staged.add(r.eventId);
    expect([...staged].sort()).toEqual(good.map((e) => e.eventId).sort());

    // Each bad record is in the dead-letter topic once, with its code and reason, and the reason does not hold the id.
    const dead = await receiveAll(resourceNames.deadLetterSubscription(type), bad.length);
    expect([...dead.keys()].sort()).toEqual(bad.map((b) => b.eventId).sort());
    for (const b of bad) {
      const attributes = dead.get(b.eventId)!;
      expect(attributes[deadLetterAttributes.code]).toBe('EVENT_INVALID');
      expect(attributes[deadLetterAttributes.reason]).toMatch(b.why);
      if (b.payload.userId !== '') expect(attributes[deadLetterAttributes.reason]).not.toContain(String(b.payload.userId));
    }
  });

  it("dead-letters only the records of a subject whose stored key does not unwrap (KEY_UNREADABLE), and stages the rest", async () => {
    const storage = createStorage({ projectId, apiEndpoint: gcs.url });
    const registry = new MemoryRegistryStore();
    const type = uniqueName('subj', 'unreadable').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [signUpSchema]), 0);
    const { topic } = await provisionType(pubsub, type);

    // The victim's keychain holds a key wrapped for another user (as a keychain copied, or left by an id's U+FFFD twin).
    const keys = createPadlockClient({ url: padlock.url, service: 'etl', secret: ETL_SECRET, context: DEFAULT_KEY_CONTEXT });
    const donor = uniqueName('donor', 'etl');
    const victim = uniqueName('victim', 'etl');
    await keys.getKeys([{ userId: donor, category: 'contact' }], { createIfAbsent: true });
    mkdirSync(path.dirname(embeddedKeychainFile(padlockDir, victim)), { recursive: true });
    copyFileSync(embeddedKeychainFile(padlockDir, donor), embeddedKeychainFile(padlockDir, victim));

    const now = Date.now();
    const good: TestEvent[] = Array.from({ length: 200 }, (_, i) => ({ eventId: `ok-${i}`, receiveTime: now, payload: { userId: `member-${i}`, email: `m${i}@x.example` } }));
    const bad: TestEvent[] = Array.from({ length: 5 }, (_, i) => ({ eventId: `unreadable-${i}`, receiveTime: now, payload: { userId: victim, email: 'v@x.example' } }));
    await publishEvents(topic, type, signUpSchema, [...good.slice(0, 50), ...bad.slice(0, 2), ...good.slice(50), ...bad.slice(2)]);

    const workers = await startWorkers(registry, type);
    const stats = () => workers.stats()[type];
    expect(await waitUntil(() => (stats()?.acked ?? 0) >= good.length && (stats()?.deadLettered ?? 0) >= bad.length, 60_000)).toBe(true);
    expect(stats()).toMatchObject({ acked: good.length, deadLettered: bad.length });

    const staged = new Set<string>();
    const [files] = await storage.bucket(staging).getFiles({ prefix: `staging/${type}/` });
    for (const f of files) for (const r of await readStagedFile(storage.bucket(staging), f.name)) staged.add(r.eventId);
    expect([...staged].sort()).toEqual(good.map((e) => e.eventId).sort());

    const dead = await receiveAll(resourceNames.deadLetterSubscription(type), bad.length);
    expect([...dead.keys()].sort()).toEqual(bad.map((b) => b.eventId).sort());
    for (const attributes of dead.values()) {
      expect(attributes[deadLetterAttributes.code]).toBe('KEY_UNREADABLE');
      expect(attributes[deadLetterAttributes.reason]).toMatch(/does not unwrap/);
      expect(attributes[deadLetterAttributes.reason]).not.toContain(victim);
    }
  });

  async function startWorkers(registry: MemoryRegistryStore, type: string): Promise<EtlWorkers> {
    const workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage: createStorage({ projectId, apiEndpoint: gcs.url }),
      stagingBucket: staging,
      dataBucket: data,
      registry,
      eventTypes: [type],
      tuning: { flushAgeMs: 200, registryPollMs: 60_000, backoffInitialMs: 50, backoffMaxMs: 500 },
      transform: createEncryptionTransform({ keys: createPadlockClient({ url: padlock.url, service: 'etl', secret: ETL_SECRET, context: DEFAULT_KEY_CONTEXT }) }),
      logger: createLogger({ component: 'etl', sink: () => {} }),
    });
    open.push(workers);
    return workers;
  }

  /** Attributes of the messages in a subscription, by event id, once `expected` arrived (bounded wait). */
  async function receiveAll(subscription: string, expected: number): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    const sub = pubsub.subscription(subscription);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 20_000);
      sub.on('message', (m: Message) => {
        m.ack();
        out.set(m.attributes.eventId ?? '', m.attributes);
        if (out.size >= expected) {
          clearTimeout(timer);
          // a little longer, so an unexpected extra message would be counted too
          setTimeout(resolve, 500);
        }
      });
    });
    await sub.close();
    return out;
  }
});
