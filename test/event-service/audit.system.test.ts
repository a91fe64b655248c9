/**
 * Audit counts written to the project's GCS emulator (started in process):
 * the GCS sink's objects follow the contract, a failed write is retried by a
 * later flush, and a running service's accepted events reach the staging bucket.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Bucket, Storage } from '@google-cloud/storage';
import type { PubSub } from '@google-cloud/pubsub';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { auditHourPrefix, auditObjectName, auditSummaryObjectName, hourKey, type AuditCount, type AuditSummary } from '../../lib/events/contract.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { resourceNames } from '../../lib/names.ts';
import { silentLogger } from '../../lib/logger.ts';
import { sleep } from '../../emulators/google/process.ts';
import { AuditCounter, GcsAuditSink } from '../../functions/event-service/audit.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { eventTypeRecord } from '../support/event-service.ts';
import { startEventService } from '../../functions/event-service/server.ts';
import { uniqueName } from '../support/names.ts';

const projectId = inject('projectId');

describe('audit counts in GCS', () => {
  let gcs: GcsEmulator;
  let storage: Storage;
  let bucket: Bucket;

  beforeAll(async () => {
    gcs = await startGcsEmulator({ port: 0 });
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    [bucket] = await storage.createBucket(uniqueName('audit', 'staging'));
  });
  afterAll(async () => {
    await gcs?.close();
  });

  async function readJson(name: string): Promise<unknown> {
    const [bytes] = await bucket.file(name).download();
    return JSON.parse(bytes.toString('utf8')) as unknown;
  }

  async function readCount(name: string): Promise<AuditCount | undefined> {
    const [exists] = await bucket.file(name).exists();
    if (!exists) return undefined;
    const [bytes] = await bucket.file(name).download();
    return JSON.parse(bytes.toString('utf8')) as AuditCount;
  }

  it('writes the contract objects, and a count whose write failed is written by a later flush', async () => {
    // Mid-hour: the count is not final until the stop.
    const now = (): Date => new Date('2026-01-02T03:30:00.000Z');
    const counter = new AuditCounter({ instanceId: 'inst-a', sink: new GcsAuditSink(storage, bucket.name), flushMs: 60_000, logger: silentLogger, now });
    counter.record('page_view', '2026-01-02T03', 4);
    await counter.flush();
    expect(await readCount(auditObjectName('page_view', '2026-01-02T03', 'inst-a'))).toMatchObject({
      eventType: 'page_view',
      hour: '2026-01-02T03',
      instanceId: 'inst-a',
      accepted: 4,
    });

    const rule = gcs.faults.add({ methods: ['POST'], status: 503 });
    counter.record('page_view', '2026-01-02T03', 3);
    await counter.flush();
    expect((await readCount(auditObjectName('page_view', '2026-01-02T03', 'inst-a')))?.accepted).toBe(4);
    gcs.faults.remove(rule);
    await counter.stop();
    // The stop wrote it final and compacted it: the summary holds it, the instance's object is gone.
    expect(await readCount(auditObjectName('page_view', '2026-01-02T03', 'inst-a'))).toBeUndefined();
    const summary = await readJson(auditSummaryObjectName('page_view', '2026-01-02T03'));
    expect(summary).toEqual({ eventType: 'page_view', hour: '2026-01-02T03', instances: [{ eventType: 'page_view', hour: '2026-01-02T03', instanceId: 'inst-a', accepted: 7, final: true, updatedAt: '2026-01-02T03:30:00.000Z' }] });
  });

  it('compacts the final counts of concurrent instances into one summary per type-hour, none lost, idempotently', async () => {
    const hour = '2026-01-02T04';
    const now = (): Date => new Date('2026-01-02T05:00:05.000Z');
    const counters = Array.from({ length: 8 }, (_, i) => new AuditCounter({ instanceId: `inst-${i}`, sink: new GcsAuditSink(storage, bucket.name), flushMs: 1000, logger: silentLogger, now }));
    counters.forEach((c, i) => c.record('sign_up', hour, i + 1));
    // The hour is over: every flush writes final and folds into the same summary at once (precondition races).
    await Promise.all(counters.map((c) => c.flush()));
    const [names] = await bucket.getFiles({ prefix: auditHourPrefix('sign_up', hour) });
    expect(names.map((f) => f.name)).toEqual([auditSummaryObjectName('sign_up', hour)]);
    const summary = (await readJson(auditSummaryObjectName('sign_up', hour))) as AuditSummary;
    expect(summary.instances.map((c) => [c.instanceId, c.accepted, c.final])).toEqual(counters.map((_, i) => [`inst-${i}`, i + 1, true]));
    // Folding a count again (a retry after a crash between fold and delete) changes nothing.
    const [before] = await bucket.file(auditSummaryObjectName('sign_up', hour)).getMetadata();
    await new GcsAuditSink(storage, bucket.name).compact(summary.instances[3]!);
    const [after] = await bucket.file(auditSummaryObjectName('sign_up', hour)).getMetadata();
    expect(after.generation).toBe(before.generation);
  });

  it('a running service writes its accepted counts to the staging bucket (default GCS sink)', async () => {
    const pubsub: PubSub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    const type = `audited_${randomBytes(3).toString('hex')}`;
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(type, [{ type: 'record', name: 'A', fields: [{ name: 'n', type: 'int' }] }]), 0);
    await pubsub.createTopic(resourceNames.topic(type));
    const service = await startEventService(
      withDefaults({ projectId, gcsEndpoint: gcs.url, stagingBucket: bucket.name, auditFlushMs: 200 }),
      { registry, pubsub, logger: silentLogger },
    );
    try {
      const res = await fetch(`${service.url}/v1/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ events: [1, 2, 3].map((n) => ({ type, payload: { n } })) }),
      });
      expect(res.status).toBe(200);
      const hour = hourKey(new Date());
      const name = auditObjectName(type, hour, service.instanceId);
      let count: AuditCount | undefined;
      for (let i = 0; i < 100 && count?.accepted !== 3; i++) {
        await sleep(100);
        count = await readCount(name).catch(() => undefined);
      }
      expect(count?.accepted).toBe(3);
      const [files] = await bucket.getFiles({ prefix: auditHourPrefix(type, hour) });
      expect(files.map((f) => f.name)).toEqual([name]);
    } finally {
      await service.close();
      await pubsub.close();
    }
  });
});
