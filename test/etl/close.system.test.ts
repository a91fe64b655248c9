/**
 * Idempotent close against the GCS emulator: a closer crashed after each of
 * its steps (injected failure), then re-run, yields byte-identical parts and
 * manifest; leases of crashed closers are taken over; a re-run with more
 * staged data leaves no stale part behind; merging in rounds through
 * intermediate runs (more staged files than the fan-in) gives the same bytes.
 * All of it twice: with the merges in process, and in a close thread
 * (etl/close-thread.ts), which writes the same bytes as the former.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Bucket } from '@google-cloud/storage';
import { createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { silentLogger } from '../../lib/logger.ts';
import { periodOf, partitionPrefix, subjectIndexObjectName, successObjectName, type Manifest, type Period } from '../../lib/partitions.ts';
import { PartitionCloser, type CloseStep } from '../../etl/closer.ts';
import { LateWriter } from '../../etl/late.ts';
import { SchemaResolver } from '../../etl/schemas.ts';
import { identityTransform } from '../../etl/transform.ts';
import { resolveTuning } from '../../etl/config.ts';
import { newMetrics } from '../../etl/metrics.ts';
import { buildStagedFile } from '../../etl/files.ts';
import { stagedObjectName, leaseObjectName } from '../../etl/layout.ts';
import { encodeStaged, idSetHash, stagedEnvelopeSchema, type StagedRecord } from '../../etl/envelope.ts';
import { writeContainer } from '../../lib/avro/container.ts';
import { isAppError } from '../../lib/errors.ts';
import { createIfAbsent } from '../../etl/storage-io.ts';
import type { TypeContext } from '../../etl/context.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, pageViewSchemaV2, writeAudit } from '../support/etl.ts';
import avro from 'avsc';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const TYPE = 'close_test_type';
const steps: CloseStep[] = ['leased', 'staged-read', 'part-written', 'parts-written', 'manifest-written', 'sealed', 'staging-deleted'];

describe.each([
  { where: 'merging in process', closeThreadMinBytes: Number.MAX_SAFE_INTEGER },
  { where: 'merging in a close thread', closeThreadMinBytes: 0 },
])('closing a partition, $where', ({ closeThreadMinBytes }) => {
  const projectId = inject('projectId');
  let gcs: GcsEmulator;
  let storage: ReturnType<typeof createStorage>;
  const registry = new MemoryRegistryStore();
  const period: Period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');
  const events = makeEvents(500, (i) => period.startMs + i * 1000, 'c');

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await registry.putEventType(eventTypeRecord(TYPE, [pageViewSchema, pageViewSchemaV2]), 0);
  });
  afterAll(() => gcs.close());

  function context(staging: Bucket, data: Bucket, partMaxRecords = 150, closeMergeFanIn?: number): TypeContext {
    const tuning = resolveTuning({ partMaxRecords, leaseMs: 60_000, closeThreadMinBytes, ...(closeMergeFanIn === undefined ? {} : { closeMergeFanIn }) });
    const schemas = new SchemaResolver(TYPE, registry, identityTransform, 0);
    return { eventType: TYPE, granularity: 'hourly', priority: 'normal', retentionDays: 30, staging, data, schemas, tuning, now: () => period.endMs + HOUR, logger: silentLogger, instanceId: 'closer-test', metrics: newMetrics() };
  }

  function staged(slice: typeof events, schema = pageViewSchema): StagedRecord[] {
    const type = avro.Type.forSchema(schema as avro.Schema);
    return slice.map((e) => ({ eventId: e.eventId, receiveTime: e.receiveTime, schemaFingerprint: schemaFingerprint(schema), stats: { nulledFields: 1 }, instanceId: 'test-instance', record: type.toBuffer({ ...e.payload, ...(schema === pageViewSchemaV2 ? { referrer: null } : {}) }) }));
  }

  /** Buckets with the same staged files: overlapping batches (redeliveries), two versions. */
  async function setup(): Promise<{ staging: Bucket; data: Bucket }> {
    const s = uniqueName('close', 'staging');
    const d = uniqueName('close', 'data');
    const [staging] = await storage.createBucket(s);
    const [data] = await storage.createBucket(d);
    const batches = [staged(events.slice(0, 200)), staged(events.slice(150, 400)), staged(events.slice(400), pageViewSchemaV2), staged(events.slice(0, 10))];
    for (const b of batches) {
      const name = stagedObjectName(TYPE, period, idSetHash(b.map((r) => r.eventId)));
      await createIfAbsent(staging, name, buildStagedFile(name, TYPE, period, b));
    }
    await writeAudit(storage, s, TYPE, events);
    return { staging, data };
  }

  async function partitionBytes(data: Bucket): Promise<Map<string, string>> {
    const [files] = await data.getFiles({ prefix: partitionPrefix(TYPE, period) });
    const out = new Map<string, string>();
    for (const f of files) out.set(f.name, (await f.download())[0].toString('base64'));
    return out;
  }

  it('crashed after any step and re-run, writes the same bytes as an uninterrupted close', async () => {
    const ref = await setup();
    const refCtx = context(ref.staging, ref.data);
    const manifest = await new PartitionCloser(refCtx, new LateWriter(refCtx)).closePartition(period, { force: false });
    expect(manifest).toMatchObject({ recordCount: 500, closedBy: 'complete', audit: { accepted: 500, delivered: 500, duplicatesDropped: 60 }, transformStats: { nulledFields: 500 } });
    expect(manifest!.files.map((f) => f.recordCount)).toEqual([150, 150, 100, 100]);
    const reference = await partitionBytes(ref.data);
    expect([...reference.keys()].sort()).toEqual([...manifest!.files.map((f) => f.name), subjectIndexObjectName(TYPE, period), successObjectName(TYPE, period)].sort());

    for (const step of steps) {
      const run = await setup();
      const ctx = context(run.staging, run.data);
      const crashing = new PartitionCloser(ctx, new LateWriter(ctx), {
        afterStep: (s) => {
          if (s === step) throw new Error(`injected crash after ${s}`);
        },
      });
      await expect(crashing.closePartition(period, { force: false })).rejects.toThrow(`injected crash after ${step}`);
      const ctx2 = context(run.staging, run.data);
      const rerun = await new PartitionCloser(ctx2, new LateWriter(ctx2)).closePartition(period, { force: false });
      expect(rerun, step).toEqual(manifest);
      expect(await partitionBytes(run.data), step).toEqual(reference);
      const [left] = await run.staging.getFiles({ prefix: `staging/${TYPE}/` });
      expect(left, step).toHaveLength(0);
    }
  });

  it('writes the same bytes whichever thread merges', async () => {
    const here = await setup();
    const there = await setup();
    for (const [run, minBytes] of [
      [here, closeThreadMinBytes],
      [there, closeThreadMinBytes === 0 ? Number.MAX_SAFE_INTEGER : 0],
    ] as const) {
      const ctx = { ...context(run.staging, run.data), tuning: { ...context(run.staging, run.data).tuning, closeThreadMinBytes: minBytes } };
      expect(await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false })).toMatchObject({ recordCount: 500 });
    }
    expect(await partitionBytes(there.data)).toEqual(await partitionBytes(here.data));
  });

  it('fails on a staged file out of order with DECODE_FAILED naming it, and writes no _SUCCESS', async () => {
    const run = await setup();
    const unsorted = staged(events.slice(0, 3)).reverse();
    const name = stagedObjectName(TYPE, period, idSetHash(['unsorted']));
    await createIfAbsent(run.staging, name, writeContainer(unsorted.map(encodeStaged), { schema: stagedEnvelopeSchema, syncMarker: Buffer.alloc(16, 7), codec: 'deflate' }));
    const ctx = context(run.staging, run.data);
    const failed = new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: true });
    await expect(failed).rejects.toSatisfy((e) => isAppError(e) && e.code === 'DECODE_FAILED' && e.message === `${name}: staged records are not sorted by event id`);
    expect((await run.data.file(successObjectName(TYPE, period)).exists())[0]).toBe(false);
  });

  it('takes over an expired lease, and leaves a live one alone', async () => {
    const run = await setup();
    const ctx = context(run.staging, run.data);
    const lease = leaseObjectName(TYPE, period);
    await run.staging.file(lease).save(JSON.stringify({ owner: 'other', expiresAt: new Date(ctx.now() + 60_000).toISOString() }));
    expect(await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false })).toBeUndefined();
    expect((await run.data.file(successObjectName(TYPE, period)).exists())[0]).toBe(false);
    await run.staging.file(lease).save(JSON.stringify({ owner: 'crashed', expiresAt: new Date(ctx.now() - 1).toISOString() }));
    expect(await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false })).toMatchObject({ recordCount: 500 });
    expect((await run.staging.file(lease).exists())[0]).toBe(false);
  });

  it('a re-run over more staged data replaces the crashed run’s parts and drops stale ones', async () => {
    const run = await setup();
    const ctx = context(run.staging, run.data, 100);
    const crashing = new PartitionCloser(ctx, new LateWriter(ctx), {
      afterStep: (s) => {
        if (s === 'parts-written') throw new Error('crash');
      },
    });
    await expect(crashing.closePartition(period, { force: true })).rejects.toThrow('crash');
    // Fewer records per part now: the crashed run's extra parts must go.
    const ctx2 = context(run.staging, run.data, 300);
    const more = makeEvents(20, (i) => period.startMs + i, 'z');
    const b = staged(more);
    const name = stagedObjectName(TYPE, period, idSetHash(b.map((r) => r.eventId)));
    await createIfAbsent(run.staging, name, buildStagedFile(name, TYPE, period, b));
    const m = await new PartitionCloser(ctx2, new LateWriter(ctx2)).closePartition(period, { force: true });
    expect(m).toMatchObject({ recordCount: 520, closedBy: 'deadline', audit: { accepted: 500, delivered: 520, complete: false } });
    const bytes = await partitionBytes(run.data);
    expect([...bytes.keys()].sort()).toEqual([...m!.files.map((f) => f.name), subjectIndexObjectName(TYPE, period), successObjectName(TYPE, period)].sort());
    for (const f of m!.files) expect(Buffer.from(bytes.get(f.name)!, 'base64').length).toBe(f.size);
  });

  it('merges in rounds through intermediate runs when files exceed the fan-in: same bytes, runs reused after a crash, then removed', async () => {
    const ref = await setup();
    const refCtx = context(ref.staging, ref.data);
    const manifest = await new PartitionCloser(refCtx, new LateWriter(refCtx)).closePartition(period, { force: false });
    const reference = await partitionBytes(ref.data);

    const run = await setup();
    // Four more overlapping files: eight staged files, merged two at a time (three rounds).
    for (const slice of [events.slice(20, 60), events.slice(300, 320), events.slice(450, 500), events.slice(0, 1)]) {
      const b = staged(slice, slice[0]!.eventId >= events[400]!.eventId ? pageViewSchemaV2 : pageViewSchema);
      const name = stagedObjectName(TYPE, period, idSetHash(b.map((r) => r.eventId)));
      await createIfAbsent(run.staging, name, buildStagedFile(name, TYPE, period, b));
    }
    const runsPrefix = `runs/${TYPE}/`;
    const ctx = context(run.staging, run.data, 150, 2);
    const crashing = new PartitionCloser(ctx, new LateWriter(ctx), {
      afterStep: (s) => {
        if (s === 'staged-read') throw new Error('crash after the counting merge');
      },
    });
    await expect(crashing.closePartition(period, { force: false })).rejects.toThrow('crash after the counting merge');
    const [runs] = await run.staging.getFiles({ prefix: runsPrefix });
    expect(runs.length).toBe(4 + 2); // round 1: 8 → 4 runs; round 2: 4 → 2 runs
    const generations = new Map(runs.map((f) => [f.name, String(f.metadata.generation)]));

    const ctx2 = context(run.staging, run.data, 150, 2);
    let seen: Map<string, string> | undefined;
    const rerun = await new PartitionCloser(ctx2, new LateWriter(ctx2), {
      afterStep: async (s) => {
        if (s === 'staged-read') seen = new Map((await run.staging.getFiles({ prefix: runsPrefix }))[0].map((f) => [f.name, String(f.metadata.generation)]));
      },
    }).closePartition(period, { force: false });
    // The re-run took the crashed close's runs (same names, same generations) instead of writing them again.
    expect(seen).toEqual(generations);
    expect(rerun).toEqual({ ...manifest, audit: { ...manifest!.audit, duplicatesDropped: manifest!.audit.duplicatesDropped + 111 } });
    const parts = (m: Map<string, string>): Map<string, string> => new Map([...m].filter(([k]) => !k.endsWith('_SUCCESS')));
    expect(parts(await partitionBytes(run.data))).toEqual(parts(reference));
    const [left] = await run.staging.getFiles({ prefix: runsPrefix });
    expect(left).toHaveLength(0);
    const [stagedLeft] = await run.staging.getFiles({ prefix: `staging/${TYPE}/` });
    expect(stagedLeft).toHaveLength(0);
  });

  it('checks completeness from per-file counts: no merge below the accepted count, a recount under the lease above it', async () => {
    const run = await setup(); // 560 staged records, 500 distinct ids, audit 500
    const steps: CloseStep[] = [];
    const closerAt = (nowMs: number): PartitionCloser => {
      const ctx = { ...context(run.staging, run.data), now: () => nowMs };
      return new PartitionCloser(ctx, new LateWriter(ctx), { afterStep: (s) => void steps.push(s) });
    };
    const afterGrace = period.endMs + resolveTuning().closeGraceMs;
    const pastDeadline = period.endMs + resolveTuning().closeDeadlineMs.normal;

    // The audit object is replaced (same instance): 600 accepted > 560 staged records: cannot be complete, nothing is leased or merged.
    await writeAudit(storage, run.staging.name, TYPE, makeEvents(600, () => period.startMs, 'audit'));
    await closerAt(afterGrace).checkAll();
    expect(steps).toEqual([]);

    // 501 accepted ≤ 560 staged records but 500 distinct ids: the recount finds it incomplete; it waits.
    await writeAudit(storage, run.staging.name, TYPE, makeEvents(501, () => period.startMs, 'audit'));
    await closerAt(afterGrace).checkAll();
    expect(steps).toEqual(['leased', 'staged-read']);
    expect((await run.data.file(successObjectName(TYPE, period)).exists())[0]).toBe(false);

    // At the deadline it closes with what it has.
    await closerAt(pastDeadline).checkAll();
    const manifest = JSON.parse((await run.data.file(successObjectName(TYPE, period)).download())[0].toString('utf8')) as Manifest;
    expect(manifest).toMatchObject({ recordCount: 500, closedBy: 'deadline', audit: { accepted: 501, delivered: 500, duplicatesDropped: 60, complete: false } });
  });

  it('renews its lease during a long close, and stops without _SUCCESS if the lease was taken over', async () => {
    // A clock that moves half a lease per reading: every part written is a renewal due.
    const renewing = await setup();
    let t = period.endMs + HOUR;
    const ctx = { ...context(renewing.staging, renewing.data, 100), now: () => (t += 30_000) };
    const owners: string[] = [];
    const m = await new PartitionCloser(ctx, new LateWriter(ctx), {
      afterStep: async (s) => {
        if (s === 'part-written') owners.push(JSON.parse((await renewing.staging.file(leaseObjectName(TYPE, period)).download())[0].toString('utf8')).expiresAt);
      },
    }).closePartition(period, { force: false });
    expect(m).toMatchObject({ recordCount: 500 });
    expect(new Set(owners).size).toBe(owners.length); // each part saw a later expiry: renewed

    const lost = await setup();
    let t2 = period.endMs + HOUR;
    const ctx2 = { ...context(lost.staging, lost.data, 100), now: () => (t2 += 30_000) };
    const closer = new PartitionCloser(ctx2, new LateWriter(ctx2), {
      afterStep: async (s) => {
        // Another closer takes the lease over (as if ours had expired).
        if (s === 'staged-read') await lost.staging.file(leaseObjectName(TYPE, period)).save(JSON.stringify({ owner: 'other', expiresAt: new Date(t2 + 60_000).toISOString() }));
      },
    });
    await expect(closer.closePartition(period, { force: false })).rejects.toThrow(/lease .* was lost/);
    expect((await lost.data.file(successObjectName(TYPE, period)).exists())[0]).toBe(false);
  });
});
