/**
 * `audit.duplicatesDropped` counts every redelivery: those that reach the
 * same stager buffer as their first delivery (issue 21, defect 7) as well as
 * those staged in separate files.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Storage } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { silentLogger } from '../../lib/logger.ts';
import { periodOf, successObjectName } from '../../lib/partitions.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, readPartition, waitUntil, writeAudit } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;

describe('duplicates dropped by the ETL are counted in the manifest', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const staging = uniqueName('dup', 'staging');
  const data = uniqueName('dup', 'data');
  let gcs: GcsEmulator;
  let storage: Storage;
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
    await gcs?.close();
  });

  it('counts redeliveries within one stager buffer and across staged files', async () => {
    const type = uniqueName('dup', 'pv').replace(/-/g, '_').slice(0, 60);
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(type, [pageViewSchema]), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const events = makeEvents(40, (i) => base + i * 1000, 'd');
    // 8 redeliveries published with their originals, before the worker pulls: they share its buffer.
    await publishEvents(topic, type, pageViewSchema, [...events, ...events.slice(0, 8)]);
    const more = makeEvents(4, (i) => base + 3_000_000 + i, 'e');
    await writeAudit(storage, staging, type, [...events, ...more]);
    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      eventTypes: [type],
      // One buffer for the first batch (a long flush age); the audit says 44, so the period waits for the second batch.
      tuning: { flushAgeMs: 1500, closeCheckIntervalMs: 300, closeGraceMs: 300, closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR }, registryPollMs: 500 },
      logger: silentLogger,
    });
    const period = periodOf(base, 'hourly');
    const stagedCount = async (): Promise<number> => (await storage.bucket(staging).getFiles({ prefix: 'staging/' }))[0].length;
    expect(await waitUntil(async () => (await stagedCount()) > 0, 30_000)).toBe(true);
    // 4 more redeliveries, staged in a later file, and 4 new events that complete the audit.
    await publishEvents(topic, type, pageViewSchema, [...events.slice(10, 14), ...more]);
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000)).toBe(true);

    const partition = (await readPartition(storage, data, type, period))!;
    expect(partition.records).toHaveLength(44);
    expect(partition.manifest.audit).toEqual({ accepted: 44, delivered: 44, duplicatesDropped: 12, complete: true });
  });
});
