/**
 * Issue 17, defect 7: a padlock outage longer than 5 redeliveries dead-letters
 * nothing. The Pub/Sub emulator implements dead-letter policies (delivery
 * attempts counted, forwarding to the dead-letter topic), so this runs the
 * real chain: subscriptions provisioned by the composer with its default
 * dead-letter policy, ETL workers whose padlock is unreachable, restarted
 * (each restart nacks what it held: a redelivery) more times than 5. A control
 * type provisioned with the old 5 attempts, hosted by the same workers, shows
 * the outage is long enough to dead-letter under the old setting. Once padlock
 * is back, every event is delivered.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message } from '@google-cloud/pubsub';
import { provisioningDefaults } from '../../composer/defaults.ts';
import { Provisioner } from '../../composer/provisioning.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { eventTypeRecord, makeEvents, publishEvents, waitUntil } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { createLogger } from '../../lib/logger.ts';
import { resourceNames } from '../../lib/names.ts';
import { createPadlockClient } from '../../lib/padlock-client/index.ts';
import { FakeKeySource } from '../../lib/privacy/test-keys.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
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
const EVENTS = 10;
/** Redeliveries during the outage: more than the old 5 delivery attempts. */
const OUTAGE_DELIVERIES = 7;
// Two streaming pulls, not the default 8: messages the emulator is sending on a stream as a worker
// stops are neither held nor nacked, so they come back only after the 60 s ack deadline, past this
// test's waits; with 8 streams per type that happened in about one run of three. Fewer in transit, the
// attempts each restart adds stay the ones counted here.
const tuning = { flushAgeMs: 200, registryPollMs: 60_000, backoffInitialMs: 50, backoffMaxMs: 200, shutdownTimeoutMs: 500, transformBatchSize: EVENTS, maxStreams: 2 };
// Redelivery without waiting: the emulator applies retry backoff, and this test is about attempts.
const fastRetry = { minimumBackoffSeconds: 0, maximumBackoffSeconds: 0 };

describe('padlock outage and delivery attempts', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator;
  let storage: ReturnType<typeof createStorage>;
  const staging = uniqueName('outage', 'staging');
  const data = uniqueName('outage', 'data');
  /** A port nothing listens on: padlock is down. */
  let padlockDownUrl: string;

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const probe: Server = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    padlockDownUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
  afterAll(async () => {
    await pubsub.close();
    await gcs.close();
  });

  it(`an outage of ${OUTAGE_DELIVERIES} redeliveries dead-letters nothing with the composer's policy (it did with 5 attempts), and everything is delivered after`, async () => {
    const registry = new MemoryRegistryStore();
    const type = uniqueName('outage', 'main').replace(/-/g, '_');
    const control = uniqueName('outage', 'five').replace(/-/g, '_');
    const provisioned = new Provisioner({ pubsub, options: fastRetry });
    const oldPolicy = new Provisioner({ pubsub, options: { ...fastRetry, maxDeliveryAttempts: 5 } });
    for (const [name, provisioner] of [[type, provisioned], [control, oldPolicy]] as const) {
      const record = eventTypeRecord(name, [signUpSchema]);
      await registry.putEventType(record, 0);
      const result = await provisioner.reconcile({ settings: record.settings, schema: signUpSchema, deprecated: false, previous: undefined });
      expect(result.provisioning.state, name).toBe('provisioned');
    }
    await provisioned.close();
    await oldPolicy.close();
    const [sub] = await pubsub.subscription(resourceNames.etlSubscription(type)).getMetadata();
    expect(sub.deadLetterPolicy?.maxDeliveryAttempts).toBe(provisioningDefaults.maxDeliveryAttempts);

    const now = Date.now();
    for (const name of [type, control]) {
      await publishEvents(pubsub.topic(resourceNames.topic(name)), name, signUpSchema, makeEvents(EVENTS, () => now, name).map((e) => ({ ...e, payload: { ...e.payload, email: 'a@b.example' } })));
    }

    const quiet = createLogger({ component: 'etl', sink: () => {} });
    const start = (keys: Parameters<typeof createEncryptionTransform>[0]['keys']): Promise<EtlWorkers> =>
      startEtlWorkers({ projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, eventTypes: [type, control], tuning, transform: createEncryptionTransform({ keys }), logger: quiet, closeEnabled: false });

    // The outage: each run receives the events, fails to reach padlock, keeps them un-acked, and
    // hands them back when it stops (a crash or a rollout does the same): one delivery attempt each.
    const padlockDown = createPadlockClient({ url: padlockDownUrl, service: 'etl', secret: 'etl-secret-0123456789abcdef', deadlineMs: 200 });
    for (let run = 1; run <= OUTAGE_DELIVERIES; run++) {
      const workers = await start(padlockDown);
      try {
        const failing = (name: string) => () => (workers.stats()[name]?.received ?? 0) >= EVENTS && (workers.stats()[name]?.transformFailures ?? 0) > 0;
        expect(await waitUntil(failing(type), 20_000, 50), `run ${run}: events received, padlock failing`).toBe(true);
        // The control type's events come back until its 5 attempts are used up.
        if (run <= 5) expect(await waitUntil(failing(control), 20_000, 50), `run ${run}: control events received`).toBe(true);
        expect(workers.stats()[type]).toMatchObject({ acked: 0, deadLettered: 0 });
      } finally {
        await workers.close();
      }
    }

    // The control type, on the old policy, lost its events to the dead-letter topic: the outage was long enough.
    expect(await drain(resourceNames.deadLetterSubscription(control), EVENTS)).toBe(EVENTS);
    // The composer's policy dead-lettered nothing.
    expect(await drain(resourceNames.deadLetterSubscription(type), 0)).toBe(0);

    // Padlock is back: every event of the type is delivered (staged and acked), none dead-lettered by the ETL.
    const workers = await start(new FakeKeySource());
    try {
      expect(await waitUntil(() => (workers.stats()[type]?.acked ?? 0) === EVENTS, 20_000)).toBe(true);
      expect(workers.stats()[type]?.deadLettered).toBe(0);
    } finally {
      await workers.close();
    }
    const [staged] = await storage.bucket(staging).getFiles({ prefix: `staging/${type}/` });
    expect(staged.length).toBeGreaterThan(0);
  }, 240_000);

  /** Receives and acks what a subscription holds: the distinct event ids once `expected` arrived, or after a bounded wait. */
  async function drain(subscription: string, expected: number): Promise<number> {
    const ids = new Set<string>();
    const sub = pubsub.subscription(subscription);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, expected === 0 ? 3000 : 15_000);
      sub.on('message', (m: Message) => {
        m.ack();
        ids.add(m.attributes.eventId ?? '');
        if (expected > 0 && ids.size >= expected) {
          clearTimeout(timer);
          setTimeout(resolve, 500);
        }
      });
    });
    await sub.close();
    return ids.size;
  }
});
