/**
 * Sharded periods (`shardsPerPeriod` 4) against the GCS emulator, staged by
 * the production stager:
 * - in process: a close crashed after any of its steps and re-run writes the
 *   same bytes as an uninterrupted one; shards wait (counted, nothing written)
 *   while the hour's total is short of the audit, and close at the deadline;
 * - 3 worker processes (etl/main.ts) close one hour of 300,000 events (plus
 *   redeliveries) in parallel, one SIGKILLed while it holds a shard's lease:
 *   every accepted event is delivered exactly once, and a re-close of the same
 *   staged files into fresh buckets writes the same bytes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { silentLogger } from '../../lib/logger.ts';
import { partitionPrefix, periodOf, type Manifest, type Period } from '../../lib/partitions.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { avroType } from '../../lib/avro/long.ts';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { PartitionCloser, type CloseStep } from '../../etl/closer.ts';
import { resolveTuning } from '../../etl/config.ts';
import type { TypeContext } from '../../etl/context.ts';
import { LateWriter } from '../../etl/late.ts';
import { newMetrics } from '../../etl/metrics.ts';
import { SchemaResolver } from '../../etl/schemas.ts';
import { shardOf } from '../../etl/shards.ts';
import { deliveredIds as idsInFile } from '../../etl/files.ts';
import { Stager } from '../../etl/stager.ts';
import { identityTransform } from '../../etl/transform.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, readPartition, waitUntil, writeAudit, type TestEvent } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const SHARDS = 4;
const fingerprint = schemaFingerprint(pageViewSchema);
const payloadType = avroType(pageViewSchema);

function context(p: {
  eventType: string;
  registry: MemoryRegistryStore;
  staging: Bucket;
  data: Bucket;
  now: () => number;
  instanceId?: string;
  partMaxRecords?: number;
  /** 0: the shards merge in a close thread (etl/close-thread.ts). */
  closeThreadMinBytes?: number;
}): TypeContext {
  return {
    eventType: p.eventType,
    granularity: 'hourly',
    priority: 'normal',
    retentionDays: 30,
    staging: p.staging,
    data: p.data,
    schemas: new SchemaResolver(p.eventType, p.registry, identityTransform, 0),
    // No age flush (the timer is not started): files are cut by size only, so staging the same events twice gives the same files.
    tuning: resolveTuning({
      leaseMs: 60_000,
      flushAgeMs: 3_600_000,
      partMaxRecords: p.partMaxRecords ?? 200_000,
      ...(p.closeThreadMinBytes === undefined ? {} : { closeThreadMinBytes: p.closeThreadMinBytes }),
    }),
    now: p.now,
    logger: silentLogger,
    instanceId: p.instanceId ?? 'sharded-test',
    metrics: newMetrics(),
    shards: SHARDS,
  };
}

/** Stages `batches` through the production stager (each batch a redelivery round), resolving once every record is acked. */
async function stage(ctx: TypeContext, batches: readonly (readonly TestEvent[])[]): Promise<void> {
  const late = new LateWriter(ctx);
  const stager = new Stager(ctx, new PartitionCloser(ctx, late), late);
  let acked = 0;
  let nacked = 0;
  let total = 0;
  for (const batch of batches) {
    for (const e of batch) {
      total++;
      stager.add({
        staged: { eventId: e.eventId, receiveTime: e.receiveTime, schemaFingerprint: fingerprint, stats: {}, instanceId: 'test-instance', record: payloadType.toBuffer(e.payload) },
        ack: () => void acked++,
        nack: () => void nacked++,
      });
    }
    stager.flushAll();
    expect(await stager.drain(120_000)).toBe(true);
  }
  expect({ acked, nacked }).toEqual({ acked: total, nacked: 0 });
}

async function objectBytes(bucket: Bucket, prefix: string): Promise<Map<string, string>> {
  const [files] = await bucket.getFiles({ prefix });
  const out = new Map<string, string>();
  for (const f of files) out.set(f.name, (await f.download())[0].toString('base64'));
  return out;
}

async function names(bucket: Bucket, prefix: string): Promise<string[]> {
  return (await bucket.getFiles({ prefix }))[0].map((f) => f.name);
}

/** Every id of the partition with how often it occurs; checks that each part holds only its shard's ids, sorted. */
async function deliveredIdsOf(storage: Storage, data: string, eventType: string, period: Period): Promise<{ manifest: Manifest; seen: Map<string, number> }> {
  const part = (await readPartition(storage, data, eventType, period))!;
  const seen = new Map<string, number>();
  for (const f of part.manifest.files) {
    const shard = Number(/part-(\d{3})-\d{5}\.avro$/.exec(f.name)![1]);
    const ids = idsInFile(part.fileBytes.get(f.name)!);
    expect(ids.length).toBe(f.recordCount);
    expect(ids.every((id) => shardOf(id, SHARDS) === shard), f.name).toBe(true);
    expect(ids.every((id, i) => i === 0 || ids[i - 1]! < id), f.name).toBe(true);
    for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return { manifest: part.manifest, seen };
}

describe('sharded periods', () => {
  const projectId = inject('projectId');
  let gcs: GcsEmulator;
  let storage: Storage;

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
  });
  afterAll(() => gcs.close());

  async function buckets(test: string): Promise<{ staging: Bucket; data: Bucket }> {
    const [staging] = await storage.createBucket(uniqueName('sharded', `${test}-s`));
    const [data] = await storage.createBucket(uniqueName('sharded', `${test}-d`));
    return { staging, data };
  }

  describe('in process', () => {
    const eventType = 'sharded_inproc';
    const registry = new MemoryRegistryStore();
    const period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');
    const events = makeEvents(2000, (i) => period.startMs + i * 1000, 's');
    const batches = [events.slice(0, 1200), events.slice(1000), events.slice(0, 50)];
    const afterGrace = period.endMs + HOUR;

    beforeAll(async () => {
      await registry.putEventType(eventTypeRecord(eventType), 0);
    });

    async function staged(test: string, accepted = events): Promise<{ staging: Bucket; data: Bucket }> {
      const b = await buckets(test);
      await stage(context({ eventType, registry, ...b, now: () => afterGrace }), batches);
      await writeAudit(storage, b.staging.name, eventType, accepted);
      return b;
    }

    it('crashed after any step and re-run, writes the bytes of an uninterrupted close', async () => {
      const ref = await staged('ref');
      const refCtx = context({ eventType, registry, ...ref, now: () => afterGrace, partMaxRecords: 300 });
      const manifest = (await new PartitionCloser(refCtx, new LateWriter(refCtx)).closePartition(period, { force: false }))!;
      expect(manifest).toMatchObject({ recordCount: 2000, shards: SHARDS, closedBy: 'complete', audit: { accepted: 2000, delivered: 2000, duplicatesDropped: 250, complete: true } });
      // Shard by shard, each shard's parts in order: name order.
      const partNames = manifest.files.map((f) => f.name);
      expect(partNames).toEqual([...partNames].sort());
      expect(new Set(partNames.map((n) => n.slice(-14, -11)))).toEqual(new Set(['000', '001', '002', '003']));
      const { seen } = await deliveredIdsOf(storage, ref.data.name, eventType, period);
      expect(seen.size).toBe(2000);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      const reference = await objectBytes(ref.data, partitionPrefix(eventType, period));
      expect([...reference.keys()].length).toBe(manifest.files.length + 2); // the parts, _SUBJECTS and _SUCCESS
      for (const prefix of ['staging/', 'shards/', 'runs/', 'leases/']) expect(await names(ref.staging, prefix), prefix).toEqual([]);

      const steps: CloseStep[] = ['staged-read', 'part-written', 'shard-closed', 'parts-written', 'manifest-written', 'sealed', 'staging-deleted'];
      for (const step of steps) {
        const run = await staged(step);
        const ctx = context({ eventType, registry, ...run, now: () => afterGrace, partMaxRecords: 300, instanceId: 'crashing' });
        let crashes = 0;
        const crashing = new PartitionCloser(ctx, new LateWriter(ctx), {
          afterStep: (s) => {
            // The second time, for steps every shard goes through: some shards are then done, others not.
            if (s === step && ++crashes === (['staged-read', 'part-written', 'shard-closed'].includes(step) ? 2 : 1)) throw new Error(`injected crash after ${s}`);
          },
        });
        await expect(crashing.closePartition(period, { force: false }), step).rejects.toThrow(`injected crash after ${step}`);
        const ctx2 = context({ eventType, registry, ...run, now: () => afterGrace, partMaxRecords: 300, instanceId: 'next-worker' });
        const closer = new PartitionCloser(ctx2, new LateWriter(ctx2));
        const rerun = (await closer.closePartition(period, { force: false })) ?? (await closer.closePartition(period, { force: false }));
        expect(rerun, step).toEqual(manifest);
        await closer.checkAll(); // what a later pass does: leftovers of a crash after _SUCCESS are cleaned up
        expect(await objectBytes(run.data, partitionPrefix(eventType, period)), step).toEqual(reference);
        for (const prefix of ['staging/', 'shards/', 'runs/']) expect(await names(run.staging, prefix), `${step} ${prefix}`).toEqual([]);
        expect(await names(run.data, `${eventType}/late/`), step).toEqual([]);
      }
    });

    it('writes the same bytes when its shards merge in close threads', async () => {
      const here = await staged('here');
      const there = await staged('there');
      const ctx = (b: typeof here, closeThreadMinBytes: number) => context({ eventType, registry, ...b, now: () => afterGrace, partMaxRecords: 300, closeThreadMinBytes });
      const inProcess = ctx(here, Number.MAX_SAFE_INTEGER);
      const inThreads = ctx(there, 0);
      const m = await new PartitionCloser(inProcess, new LateWriter(inProcess)).closePartition(period, { force: false });
      expect(m).toMatchObject({ recordCount: 2000, shards: SHARDS });
      expect(await new PartitionCloser(inThreads, new LateWriter(inThreads)).closePartition(period, { force: false })).toEqual(m);
      expect(await objectBytes(there.data, partitionPrefix(eventType, period))).toEqual(await objectBytes(here.data, partitionPrefix(eventType, period)));
    });

    it('counts shards but writes nothing while the hour’s total is short of the audit; closes at the deadline', async () => {
      const run = await staged('short', makeEvents(2001, (i) => period.startMs + i * 1000, 's'));
      const ctx = context({ eventType, registry, ...run, now: () => afterGrace });
      const closer = new PartitionCloser(ctx, new LateWriter(ctx));
      expect(await closer.closePartition(period, { force: false })).toBeUndefined();
      const records = await names(run.staging, 'shards/');
      expect(records.filter((n) => n.includes('/count-'))).toHaveLength(SHARDS);
      expect(records.filter((n) => n.endsWith('/done.json'))).toEqual([]);
      expect(await names(run.data, `${eventType}/`)).toEqual([]);
      const atDeadline = context({ eventType, registry, ...run, now: () => period.endMs + resolveTuning().closeDeadlineMs.normal });
      const manifest = await new PartitionCloser(atDeadline, new LateWriter(atDeadline)).closePartition(period, { force: true });
      expect(manifest).toMatchObject({ recordCount: 2000, shards: SHARDS, closedBy: 'deadline', audit: { accepted: 2001, delivered: 2000, complete: false } });
    });
  });

  describe('3 worker processes, one SIGKILLed mid-close', () => {
    const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    const children = new Set<ChildProcess>();
    const TOTAL = 300_000;
    const REDELIVERED = 6_000;

    afterAll(async () => {
      for (const c of children) c.kill('SIGKILL');
      await pubsub.close();
    });

    it('delivers every accepted event exactly once, and a re-close writes the same bytes', async () => {
      const eventType = uniqueName('sharded', 'ev').replace(/-/g, '_');
      const run = await buckets('procs');
      const again = await buckets('again');
      await provisionType(pubsub, eventType);
      const dir = mkdtempSync(path.join(tmpdir(), 'etl-sharded-'));
      const registryDir = path.join(dir, 'registry');
      const record = eventTypeRecord(eventType);
      record.settings.shardsPerPeriod = SHARDS;
      await new FileRegistryStore(registryDir).putEventType(record, 0);
      const registry = new MemoryRegistryStore();
      await registry.putEventType(record, 0);

      const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
      const period = periodOf(base, 'hourly');
      const events = makeEvents(TOTAL, (i) => base + (i % 3_000_000), 'x');
      // A redelivery round: the same events again, in other files.
      const batches = [events, events.slice(100_000, 100_000 + REDELIVERED)];
      await writeAudit(storage, run.staging.name, eventType, events);

      const env = {
        ...process.env,
        METADATA_SERVER_DETECTION: 'none',
        GCP_PROJECT: projectId,
        PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
        GCS_ENDPOINT: gcs.url,
        STAGING_BUCKET: run.staging.name,
        DATA_BUCKET: run.data.name,
        EVENT_TYPES: eventType,
        REGISTRY_STORE: 'file',
        REGISTRY_DIR: registryDir,
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--max-old-space-size=160',
        ETL_CLOSE_CHECK_MS: '500',
        ETL_CLOSE_GRACE_MS: '1000',
        ETL_LEASE_MS: '4000',
        ETL_DEADLINE_NORMAL_MS: String(5 * 24 * HOUR),
      };
      const started = new Set<string>();
      const workers = new Map<string, ChildProcess>();
      for (const id of ['sharded-0', 'sharded-1', 'sharded-2']) {
        const child = spawn(process.execPath, ['--import', 'tsx', 'etl/main.ts'], { env: { ...env, INSTANCE_ID: id }, stdio: ['ignore', 'pipe', 'inherit'] });
        children.add(child);
        child.on('exit', () => children.delete(child));
        child.stdout!.on('data', (chunk: Buffer) => {
          if (chunk.toString('utf8').includes('etl workers started')) started.add(id);
        });
        workers.set(id, child);
      }
      expect(await waitUntil(() => started.size === 3, 60_000, 100)).toBe(true);

      // Staged while the workers run: they hold off (fewer staged records than accepted) until the last file, then race for the shards.
      await stage(context({ eventType, registry, ...run, now: () => Date.now() }), batches);

      const leasePrefix = `leases/${eventType}/${period.key}/`;
      const owners = new Set<string>();
      let killed: string | undefined;
      const success = run.data.file(`${partitionPrefix(eventType, period)}_SUCCESS`);
      const closed = await waitUntil(async () => {
        for (const f of (await run.staging.getFiles({ prefix: leasePrefix }))[0]) {
          const body = await f.download().then(([b]) => b.toString('utf8'), () => undefined);
          const owner = body === undefined ? undefined : (JSON.parse(body) as { owner: string }).owner;
          if (owner === undefined) continue;
          owners.add(owner);
          if (killed === undefined && workers.has(owner) && !(await success.exists())[0]) {
            killed = owner;
            workers.get(owner)!.kill('SIGKILL');
          }
        }
        return (await success.exists())[0];
      }, 240_000, 50);
      expect(closed).toBe(true);
      expect(killed).toBeDefined();
      // Shards were taken by more than one worker (each shard under its own lease).
      expect(owners.size).toBeGreaterThanOrEqual(2);

      const { manifest, seen } = await deliveredIdsOf(storage, run.data.name, eventType, period);
      expect(manifest).toMatchObject({ shards: SHARDS, closedBy: 'complete', recordCount: TOTAL, audit: { accepted: TOTAL, delivered: TOTAL, duplicatesDropped: REDELIVERED, complete: true } });
      const missing = events.filter((e) => !seen.has(e.eventId)).length;
      const duplicated = [...seen.values()].filter((n) => n > 1).length;
      expect({ missing, duplicated, distinct: seen.size }).toEqual({ missing: 0, duplicated: 0, distinct: TOTAL });

      // The same events staged into fresh buckets, closed by one in-process closer: the same bytes.
      await stage(context({ eventType, registry, ...again, now: () => Date.now() }), batches);
      await writeAudit(storage, again.staging.name, eventType, events);
      const ctx = context({ eventType, registry, ...again, now: () => Date.now(), instanceId: 'reference' });
      const reference = await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false });
      expect(reference).toEqual(manifest);
      expect(await objectBytes(again.data, partitionPrefix(eventType, period))).toEqual(await objectBytes(run.data, partitionPrefix(eventType, period)));
      expect(await waitUntil(async () => (await names(run.staging, `staging/${eventType}/`)).length === 0, 20_000)).toBe(true);
    }, 420_000);
  });
});
