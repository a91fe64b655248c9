/**
 * Isolation: one type's storage fails continuously (every request naming it
 * answers 503) while another type, hosted by the same worker process, keeps
 * delivering; the failing type's messages stay un-acked and are delivered
 * once its storage recovers.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { clearFaults, injectFault } from '../../emulators/gcs/admin-client.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { silentLogger } from '../../lib/logger.ts';
import { periodOf, successObjectName } from '../../lib/partitions.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, readPartition, waitUntil, writeAudit } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;

describe('type isolation', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let gcs: GcsEmulator | undefined;
  let workers: EtlWorkers | undefined;
  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
    await gcs?.close();
  });

  it('a type whose storage answers 503 does not hold up another type', async () => {
    gcs = await startGcsEmulator();
    const storage = createStorage({ projectId, apiEndpoint: gcs.url });
    const staging = uniqueName('iso', 'staging');
    const data = uniqueName('iso', 'data');
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const broken = uniqueName('iso', 'broken').replace(/-/g, '_');
    const healthy = uniqueName('iso', 'healthy').replace(/-/g, '_');
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(broken), 0);
    await registry.putEventType(eventTypeRecord(healthy), 0);
    const b = await provisionType(pubsub, broken);
    const h = await provisionType(pubsub, healthy);
    const base = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    const brokenEvents = makeEvents(3000, (i) => base + i, 'b');
    const healthyEvents = makeEvents(3000, (i) => base + i, 'h');
    await writeAudit(storage, staging, broken, brokenEvents);
    await writeAudit(storage, staging, healthy, healthyEvents);
    // Every request naming the broken type (uploads, reads, listings) fails, for as long as the rule lives.
    await injectFault(gcs.url, { path: broken, status: 503 });

    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      logger: silentLogger,
      tuning: { flushAgeMs: 300, closeCheckIntervalMs: 300, closeGraceMs: 500, backoffInitialMs: 100, backoffMaxMs: 2000, maxMessagesInFlight: 1500, flushRecords: 500, closeDeadlineMs: { high: 48 * HOUR, normal: 48 * HOUR, low: 48 * HOUR } },
    });
    await publishEvents(b.topic, broken, pageViewSchema, brokenEvents);
    await publishEvents(h.topic, healthy, pageViewSchema, healthyEvents);

    const period = periodOf(base, 'hourly');
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(healthy, period)).exists())[0], 60_000)).toBe(true);
    const healthyPartition = (await readPartition(storage, data, healthy, period))!;
    expect(healthyPartition.manifest).toMatchObject({ recordCount: 3000, closedBy: 'complete' });

    // Meanwhile the broken type acked nothing and is backing off with its messages in flight (bounded).
    const stuck = workers.stats()[broken]!;
    expect(stuck.acked).toBe(0);
    expect(stuck.storageFailures).toBeGreaterThan(0);
    expect(stuck.received).toBeLessThanOrEqual(1500 + 500);
    expect(workers.pipeline(broken)!.stager.backingOff).toBe(true);

    // Recovery: nothing was lost.
    await clearFaults(gcs.url);
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(broken, period)).exists())[0], 90_000)).toBe(true);
    const recovered = (await readPartition(storage, data, broken, period))!;
    expect(recovered.manifest).toMatchObject({ recordCount: 3000, closedBy: 'complete' });
  });
});
