/**
 * Closed partitions are immutable (issue 17 defect 4), against the GCS
 * emulator's Object Retention Lock: after a close, the parts and `_SUCCESS`
 * the manifest lists cannot be deleted or replaced by the ETL's own calls or
 * any client without `overrideUnlockedRetention` (an admin's), while what the
 * ETL must still change stays changeable: stale parts of a crashed close are
 * deleted by the re-run, a close that crashed before sealing is sealed on
 * recovery, and `_LATE` keeps updating.
 */
import avro from 'avsc';
import type { Bucket } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PartitionCloser, type CloseStep } from '../../etl/closer.ts';
import type { TypeContext } from '../../etl/context.ts';
import { idSetHash, type StagedRecord } from '../../etl/envelope.ts';
import { buildStagedFile } from '../../etl/files.ts';
import { LateWriter } from '../../etl/late.ts';
import { stagedObjectName } from '../../etl/layout.ts';
import { newMetrics } from '../../etl/metrics.ts';
import { resolveTuning } from '../../etl/config.ts';
import { SchemaResolver } from '../../etl/schemas.ts';
import { createIfAbsent, deleteObject, replaceIfGeneration, statObject } from '../../etl/storage-io.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, writeAudit } from '../support/etl.ts';
import { identityTransform } from '../../etl/transform.ts';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { createLogger, silentLogger } from '../../lib/logger.ts';
import { lateCounterObjectName, partitionPrefix, periodOf, subjectIndexObjectName, successObjectName, type LateCounter, type Manifest, type Period } from '../../lib/partitions.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TYPE = 'sealed_type';
const RETENTION_DAYS = 30;

describe('closed partitions are sealed against deletion and replacement', () => {
  const projectId = inject('projectId');
  let gcs: GcsEmulator;
  let storage: ReturnType<typeof createStorage>;
  const registry = new MemoryRegistryStore();
  // A recent hour, so its retention (period end + 30 days) is still running.
  const period: Period = periodOf(Date.now() - 3 * HOUR, 'hourly');
  const events = makeEvents(300, (i) => period.startMs + i * 1000, 's');
  const type = avro.Type.forSchema(pageViewSchema as avro.Schema);

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await registry.putEventType(eventTypeRecord(TYPE, [pageViewSchema]), 0);
  });
  afterAll(() => gcs.close());

  function context(staging: Bucket, data: Bucket, partMaxRecords = 100): TypeContext {
    return {
      eventType: TYPE,
      granularity: 'hourly',
      priority: 'normal',
      retentionDays: RETENTION_DAYS,
      staging,
      data,
      schemas: new SchemaResolver(TYPE, registry, identityTransform, 0),
      tuning: resolveTuning({ partMaxRecords, leaseMs: 60_000 }),
      now: () => period.endMs + HOUR,
      logger: silentLogger,
      instanceId: 'seal-test',
      metrics: newMetrics(),
    };
  }

  const staged = (slice: typeof events): StagedRecord[] =>
    slice.map((e) => ({ eventId: e.eventId, receiveTime: e.receiveTime, schemaFingerprint: schemaFingerprint(pageViewSchema), stats: {}, instanceId: 'test-instance', record: type.toBuffer(e.payload) }));

  async function stage(staging: Bucket, records: StagedRecord[]): Promise<void> {
    const name = stagedObjectName(TYPE, period, idSetHash(records.map((r) => r.eventId)));
    await createIfAbsent(staging, name, buildStagedFile(name, TYPE, period, records));
  }

  /** A staging bucket with the period's events staged and audited, and a data bucket with object retention (as Terraform creates it). */
  async function setup(): Promise<{ staging: Bucket; data: Bucket }> {
    const s = uniqueName('seal', 'staging');
    const [staging] = await storage.createBucket(s);
    const [data] = await storage.createBucket(uniqueName('seal', 'data'), { enableObjectRetention: true });
    await stage(staging, staged(events.slice(0, 200)));
    await stage(staging, staged(events.slice(150)));
    await writeAudit(storage, s, TYPE, events);
    return { staging, data };
  }

  const closedObjects = (m: Manifest): string[] => [...m.files.map((f) => f.name), subjectIndexObjectName(TYPE, period), successObjectName(TYPE, period)];

  async function expectSealed(data: Bucket, m: Manifest): Promise<void> {
    const until = new Date(period.endMs + RETENTION_DAYS * DAY).toISOString();
    for (const name of closedObjects(m)) {
      const [meta] = await data.file(name).getMetadata();
      expect(meta.retention, name).toEqual({ mode: 'Unlocked', retainUntilTime: until });
    }
  }

  async function expectForbidden(p: Promise<unknown>): Promise<void> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e as { code?: unknown; errors?: { reason?: string }[]; cause?: { code?: unknown } },
    );
    expect(err, 'expected a refusal').toBeDefined();
    const code = err!.code === 403 ? err!.code : err!.cause?.code;
    expect(code).toBe(403);
  }

  async function crashAt(ctx: TypeContext, step: CloseStep, opts = { force: false }): Promise<void> {
    const crashing = new PartitionCloser(ctx, new LateWriter(ctx), {
      afterStep: (s) => {
        if (s === step) throw new Error(`crash after ${s}`);
      },
    });
    await expect(crashing.closePartition(period, opts)).rejects.toThrow(`crash after ${step}`);
  }

  it('after a close, no part and no _SUCCESS can be deleted or overwritten, by the ETL’s own calls or any client; an admin override can', async () => {
    const { staging, data } = await setup();
    const ctx = context(staging, data);
    const m = (await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false }))!;
    expect(m).toMatchObject({ recordCount: 300, closedBy: 'complete' });
    expect(m.files).toHaveLength(3);
    await expectSealed(data, m);

    for (const name of closedObjects(m)) {
      const before = (await statObject(data, name))!;
      // The ETL's own storage calls (what crash recovery and the late writer use) are refused.
      await expectForbidden(deleteObject(data, name));
      await expectForbidden(replaceIfGeneration(data, name, Buffer.from('tampered'), before.generation));
      // So is any client's plain delete or overwrite, simple or resumable.
      await expectForbidden(data.file(name).delete());
      await expectForbidden(data.file(name).save('tampered', { resumable: false }));
      await expectForbidden(data.file(name).save('tampered', { resumable: true }));
      // Nor can the retention be lifted or shortened without the admin's override.
      await expectForbidden(data.file(name).setMetadata({ retention: null }));
      await expectForbidden(data.file(name).setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: new Date(Date.now() + HOUR).toISOString() } }));
      const after = (await statObject(data, name))!;
      expect({ generation: after.generation, md5Hash: after.md5Hash }).toEqual({ generation: before.generation, md5Hash: before.md5Hash });
    }

    // An admin (storage.objects.overrideUnlockedRetention) can still lift it, e.g. for a legal erasure.
    const part = m.files[0]!.name;
    await data.file(part).setMetadata({ retention: null }, { overrideUnlockedRetention: true });
    expect(await deleteObject(data, part)).toBe('deleted');
  });

  it('recovery of a close that crashed before _SUCCESS still deletes its stale parts, and seals the re-run’s', async () => {
    const { staging, data } = await setup();
    await crashAt(context(staging, data, 50), 'parts-written', { force: true }); // six parts of 50
    const [crashed] = await data.getFiles({ prefix: partitionPrefix(TYPE, period) });
    expect(crashed.map((f) => f.name.split('/').pop())).toEqual(['_SUBJECTS', 'part-00000.avro', 'part-00001.avro', 'part-00002.avro', 'part-00003.avro', 'part-00004.avro', 'part-00005.avro']);

    const ctx = context(staging, data, 150); // two parts of 150: the crashed run's parts 2..5 are stale
    const m = (await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: true }))!;
    const [left] = await data.getFiles({ prefix: partitionPrefix(TYPE, period) });
    expect(left.map((f) => f.name).sort()).toEqual(closedObjects(m).sort());
    expect(m.files.map((f) => f.recordCount)).toEqual([150, 150]);
    await expectSealed(data, m);
  });

  for (const path of ['closePartition', 'checkAll'] as const) {
    it(`a close that crashed after _SUCCESS but before its seal is sealed on recovery (${path})`, async () => {
      const { staging, data } = await setup();
      await crashAt(context(staging, data), 'manifest-written');
      const [unsealed] = await data.file(successObjectName(TYPE, period)).getMetadata();
      expect(unsealed.retention).toBeUndefined();

      const ctx = context(staging, data);
      const closer = new PartitionCloser(ctx, new LateWriter(ctx));
      if (path === 'closePartition') await closer.closePartition(period, { force: false });
      else await closer.checkAll();
      const m = JSON.parse((await data.file(successObjectName(TYPE, period)).download())[0].toString()) as Manifest;
      await expectSealed(data, m);
      const [left] = await staging.getFiles({ prefix: `staging/${TYPE}/` });
      expect(left).toHaveLength(0);
    });
  }

  it('_LATE still updates after the close, and late files land beside the sealed partition', async () => {
    const { staging, data } = await setup();
    const ctx = context(staging, data);
    const m = (await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false }))!;
    const late = new LateWriter(ctx);
    const readCounter = async (): Promise<LateCounter> =>
      JSON.parse((await data.file(lateCounterObjectName(TYPE, period)).download())[0].toString()) as LateCounter;

    const first = makeEvents(5, (i) => period.startMs + i, 'late1');
    expect(await late.write(period, staged(first))).toBe(5);
    expect((await readCounter()).count).toBe(5);
    const second = makeEvents(7, (i) => period.startMs + i, 'late2');
    // A redelivered closed-partition id and an earlier late id are dropped; the rest counted.
    expect(await late.write(period, [...staged(second), ...staged(events.slice(0, 1)), ...staged(first.slice(0, 1))])).toBe(7);
    const counter = await readCounter();
    expect(counter.count).toBe(12);
    expect(counter.files).toHaveLength(2);
    await expectSealed(data, m);
  });

  it('a data bucket without object retention still closes (nothing sealed, reported once)', async () => {
    const s = uniqueName('seal', 'staging-plain');
    const [staging] = await storage.createBucket(s);
    const [data] = await storage.createBucket(uniqueName('seal', 'data-plain'));
    await stage(staging, staged(events));
    await writeAudit(storage, s, TYPE, events);
    const lines: string[] = [];
    const ctx: TypeContext = { ...context(staging, data), logger: createLogger({ component: 'seal-test', sink: (l) => void lines.push(l) }) };
    const m = (await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false }))!;
    expect(m.recordCount).toBe(300);
    const [meta] = await data.file(successObjectName(TYPE, period)).getMetadata();
    expect(meta.retention).toBeUndefined();
    expect(lines.filter((l) => l.includes('no object retention'))).toHaveLength(1);
  });
});
