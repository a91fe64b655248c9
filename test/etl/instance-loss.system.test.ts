/**
 * Completeness per accepting event-service instance (etl/completeness.ts):
 * - two real event-service processes accept events under load, one is
 *   SIGKILLed mid-hour: the hour closes after the grace, once staging drained (not at its deadline)
 *   as `complete-after-instance-loss` naming the lost instance, with every id
 *   a client was told accepted delivered exactly once;
 * - a live instance whose events are still in flight (its count not final)
 *   keeps the hour open, even when what was delivered equals its last count.
 *
 * Hours are hourly and real: the processes run with the same CLOCK_OFFSET_MS,
 * so the hour of the test ends a minute or so after they start.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { periodOf, successObjectName } from '../../lib/partitions.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { silentLogger } from '../../lib/logger.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, readPartition, waitUntil, writeAudit } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';
import { AcceptedLedger, postBatch, startEtlWorkerProcess, startEventServiceProcess, type RunningProcess } from '../support/platform-processes.ts';

const HOUR = 3_600_000;
const GRACE_MS = 20_000;
const LIVENESS_MS = 10_000;

describe('an event-service instance lost mid-hour', () => {
  const projectId = inject('projectId');
  const pubsubHost = inject('pubsubHost');
  const gcsUrl = inject('gcsUrl');
  const pubsub = createPubSub({ projectId, emulatorHost: pubsubHost });
  const storage = createStorage({ projectId, apiEndpoint: gcsUrl });
  const processes: RunningProcess[] = [];

  afterAll(async () => {
    for (const p of processes) p.child.kill('SIGKILL');
    await pubsub.close();
  });

  // Unsharded, and in 2 shards: each shard counts distinct ids per instance, and the rule sees their sum.
  it.each([1, 2])('closes its hour (%i shard(s)) once the grace passed and staging drained, not at its deadline, as complete-after-instance-loss, every accepted id exactly once', async (shards) => {
    const staging = uniqueName('loss', 'staging');
    const data = uniqueName('loss', 'data');
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const type = uniqueName('loss', 'ev').replace(/-/g, '_');
    await provisionType(pubsub, type);
    const registryDir = path.join(mkdtempSync(path.join(tmpdir(), 'instance-loss-')), 'registry');
    const record = eventTypeRecord(type);
    if (shards > 1) record.settings.shardsPerPeriod = shards;
    await new FileRegistryStore(registryDir).putEventType(record, 0);

    // Every process's clock: the test's hour ends LEAD_MS after this point.
    const LEAD_MS = 75_000;
    const hourEnd = Math.ceil((Date.now() + LEAD_MS) / HOUR) * HOUR;
    const clockOffsetMs = hourEnd - LEAD_MS - Date.now();
    const virtualNow = (): number => Date.now() + clockOffsetMs;
    const period = periodOf(hourEnd - 1, 'hourly');
    const common = {
      GCP_PROJECT: projectId,
      PUBSUB_EMULATOR_HOST: pubsubHost,
      GCS_ENDPOINT: gcsUrl,
      STAGING_BUCKET: staging,
      REGISTRY_STORE: 'file',
      REGISTRY_DIR: registryDir,
      CLOCK_OFFSET_MS: String(Math.round(clockOffsetMs)),
    };
    const serviceEnv = { ...common, AUDIT_FLUSH_MS: '500', AUDIT_HEARTBEAT_MS: '2000', PUBLISH_TIMEOUT_MS: '20000' };
    const [a, b] = await Promise.all([startEventServiceProcess({ ...serviceEnv, INSTANCE_ID: 'es-a' }), startEventServiceProcess({ ...serviceEnv, INSTANCE_ID: 'es-b' })]);
    processes.push(a, b);
    processes.push(
      startEtlWorkerProcess({
        ...common,
        DATA_BUCKET: data,
        EVENT_TYPES: type,
        INSTANCE_ID: 'loss-etl',
        ETL_FLUSH_AGE_MS: '300',
        ETL_CLOSE_CHECK_MS: '1000',
        ETL_CLOSE_GRACE_MS: String(GRACE_MS),
        ETL_AUDIT_LIVENESS_MS: String(LIVENESS_MS),
        ETL_DEADLINE_NORMAL_MS: String(HOUR),
      }),
    );
    expect(virtualNow()).toBeLessThan(hourEnd - 30_000);

    // Load: 4 clients, 50-event batches, alternating services; a batch a service did not answer goes to the other.
    const ledger = new AcceptedLedger();
    const sent = new Set<string>();
    let killed = false;
    let inFlightOnA = 0;
    const stopAt = hourEnd - 8_000;
    const client = async (c: number): Promise<void> => {
      for (let n = 0; virtualNow() < stopAt; n++) {
        const events = makeEvents(50, () => 0, `c${c}-${n}`).map((e) => ({ type, id: e.eventId, payload: e.payload }));
        for (const e of events) sent.add(e.id);
        let pending = events;
        for (let attempt = 0; pending.length > 0 && attempt < 10; attempt++) {
          const target = killed || (n + c + attempt) % 2 === 0 ? b : a;
          if (target === a) inFlightOnA++;
          pending = await postBatch(target.url, pending, ledger).finally(() => {
            if (target === a) inFlightOnA--;
          });
        }
        // Paced: steady load without starving the test files that share the 2 cores with this one.
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(client));
    // Mid-load, with requests in flight on it: SIGKILL one service.
    await waitUntil(() => (ledger.byService.get(a.url)?.size ?? 0) >= 2000 || virtualNow() > stopAt - 20_000, 60_000, 50);
    await waitUntil(() => inFlightOnA > 0, 10_000, 1);
    a.child.kill('SIGKILL');
    killed = true;
    await a.exited;
    await load;
    const acceptedByA = ledger.byService.get(a.url)?.size ?? 0;
    const accepted = ledger.all;
    expect(acceptedByA).toBeGreaterThan(0);
    expect(ledger.byService.get(b.url)?.size ?? 0).toBeGreaterThan(0);

    const closed = await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 240_000, 1000);
    expect(closed, processes.map((p) => p.output().slice(-2000)).join('\n')).toBe(true);
    const part = (await readPartition(storage, data, type, period))!;
    const m = part.manifest;
    expect(m.shards).toBe(shards > 1 ? shards : undefined);
    expect(m.closedBy).toBe('complete');
    expect(m.completeness?.rule).toBe('complete-after-instance-loss');
    expect(m.completeness?.lostInstances).toEqual([a.instanceId]);
    const byId = new Map(m.completeness!.instances.map((i) => [i.instanceId, i]));
    expect(byId.get(a.instanceId)).toMatchObject({ state: 'lost', final: false });
    expect(byId.get(a.instanceId)!.delivered).toBeGreaterThanOrEqual(byId.get(a.instanceId)!.audited);
    const fromB = byId.get(b.instanceId)!;
    expect(fromB).toMatchObject({ state: 'final', final: true });
    expect(fromB.delivered).toBe(fromB.audited + fromB.unreported);
    expect(m.completeness!.direct.delivered).toBe(0);

    // Exactly once: every id a client was told accepted, once; nothing else but ids clients sent.
    const seen = new Map<string, number>();
    for (const r of part.records) seen.set(r.eventId, (seen.get(r.eventId) ?? 0) + 1);
    const missing = [...accepted].filter((id) => !seen.has(id)).length;
    const duplicated = [...seen.values()].filter((n) => n > 1).length;
    const foreign = [...seen.keys()].filter((id) => !sent.has(id)).length;
    expect({ missing, duplicated, foreign }).toEqual({ missing: 0, duplicated: 0, foreign: 0 });
    expect(m.recordCount).toBeGreaterThanOrEqual(accepted.size);
    // The figures of the run, for the report (printed, not asserted: the rule above is the guarantee).
    const [success] = await storage.bucket(data).file(successObjectName(type, period)).getMetadata();
    const closedAfterS = (Date.parse(String(success.timeCreated)) + clockOffsetMs - hourEnd) / 1000;
    console.log(
      `instance-loss: closed ${closedAfterS.toFixed(1)} s after the hour's end (grace ${GRACE_MS / 1000} s, liveness bound ${LIVENESS_MS / 1000} s, deadline 3600 s)`,
    );
    console.log(
      `instance-loss: accepted ${accepted.size} (by the killed instance ${acceptedByA}), delivered ${m.recordCount}, ` +
        `lost ${a.instanceId} audited ${byId.get(a.instanceId)!.audited} delivered ${byId.get(a.instanceId)!.delivered}, unanswered batches ${ledger.unanswered}`,
    );
  }, 420_000);
});

describe('a live instance with events in flight', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const storage = createStorage({ projectId, apiEndpoint: inject('gcsUrl') });
  let workers: EtlWorkers | undefined;

  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
  });

  it('keeps the hour open while the instance is live and not final, even with its last count delivered', async () => {
    const staging = uniqueName('inflight', 'staging');
    const data = uniqueName('inflight', 'data');
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const type = uniqueName('inflight', 'ev').replace(/-/g, '_');
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(type), 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const period = periodOf(base, 'hourly');
    const events = makeEvents(120, (i) => base + i * 1000, 'f');
    const first = events.slice(0, 100);

    // The instance has told clients of 100 events and keeps writing that count (its heartbeat);
    // 20 more are in flight to Pub/Sub, not confirmed yet, so not counted.
    await publishEvents(topic, type, pageViewSchema, first, 'live-1');
    let beating = true;
    const heartbeat = (async () => {
      while (beating) {
        await writeAudit(storage, staging, type, first, 'live-1', { final: false });
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      logger: silentLogger,
      tuning: {
        flushAgeMs: 200,
        closeCheckIntervalMs: 300,
        closeGraceMs: 500,
        auditLivenessMs: 5_000,
        closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
        registryPollMs: 500,
      },
    });
    // Long past the grace, every event of the last count staged, many close checks: still open.
    const stagedAll = await waitUntil(async () => (workers!.stats()[type]?.stagedRecords ?? 0) >= 100, 60_000);
    expect(stagedAll).toBe(true);
    const closedEarly = await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 4_000, 300);
    expect(closedEarly).toBe(false);

    // The in-flight events are confirmed and counted, the hour ends for the instance: final.
    await publishEvents(topic, type, pageViewSchema, events.slice(100), 'live-1');
    beating = false;
    await heartbeat;
    await writeAudit(storage, staging, type, events, 'live-1', { final: true });
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000)).toBe(true);
    const part = (await readPartition(storage, data, type, period))!;
    expect(part.manifest.completeness).toMatchObject({ rule: 'complete', lostInstances: [], instances: [{ instanceId: 'live-1', audited: 120, delivered: 120, state: 'final' }] });
    expect(part.records.map((r) => r.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
  }, 180_000);
});
