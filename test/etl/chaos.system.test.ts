/**
 * Chaos: 100,000 events published as the event service would (standing in
 * for an instance that shut down gracefully), plus a live load through real
 * event-service processes, while ETL worker processes (etl/main.ts) are
 * killed with SIGKILL several times, event-service processes are killed with
 * SIGKILL mid-load (and replaced), and the GCS emulator fails 5% of writes
 * with 503. Afterwards every accepted id is in exactly one closed partition,
 * exactly once, and every hour closed `complete` or
 * `complete-after-instance-loss` (naming exactly the killed instances that
 * accepted events in it), none at its deadline.
 *
 * Every process runs with the same CLOCK_OFFSET_MS, so the live hour ends
 * within the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { injectFault, clearFaults, listFaults } from '../../emulators/gcs/admin-client.ts';
import { periodOf } from '../../lib/partitions.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, readPartition, waitUntil, writeAudit } from '../support/etl.ts';
import { uniqueName } from '../support/names.ts';
import { AcceptedLedger, postBatch, startEventServiceProcess, type EventServiceProcess } from '../support/platform-processes.ts';

const HOUR = 3_600_000;
const TOTAL = 100_000;
const KILLS = 4;
/** Event-service processes killed mid-load (each replaced by a new instance). */
const SERVICE_KILLS = 2;

describe('ETL under SIGKILL and storage faults', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const children = new Set<ChildProcess>();
  let gcs: GcsEmulator | undefined;

  const services = new Set<EventServiceProcess>();

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const p of services) p.child.kill('SIGKILL');
    await pubsub.close();
    await gcs?.close();
  });

  it('delivers every accepted event exactly once into closed partitions', async () => {
    gcs = await startGcsEmulator();
    const storage = createStorage({ projectId, apiEndpoint: gcs.url });
    const staging = uniqueName('chaos', 'staging');
    const data = uniqueName('chaos', 'data');
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const type = uniqueName('chaos', 'ev').replace(/-/g, '_');
    const { topic } = await provisionType(pubsub, type);
    await pubsub.subscription(`events-${type}-etl`).setMetadata({ ackDeadlineSeconds: 10 });
    const dir = mkdtempSync(path.join(tmpdir(), 'etl-chaos-'));
    const registryDir = path.join(dir, 'registry');
    await new FileRegistryStore(registryDir).putEventType(eventTypeRecord(type), 0);

    // Every process's clock: the live hour ends LEAD_MS after this point.
    const LEAD_MS = 100_000;
    const liveEnd = Math.ceil((Date.now() + LEAD_MS) / HOUR) * HOUR;
    const clockOffsetMs = Math.round(liveEnd - LEAD_MS - Date.now());
    const virtualNow = (): number => Date.now() + clockOffsetMs;
    const env = {
      ...process.env,
      CLOCK_OFFSET_MS: String(clockOffsetMs),
      METADATA_SERVER_DETECTION: 'none',
      GCP_PROJECT: projectId,
      PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
      GCS_ENDPOINT: gcs.url,
      STAGING_BUCKET: staging,
      DATA_BUCKET: data,
      EVENT_TYPES: type,
      REGISTRY_STORE: 'file',
      REGISTRY_DIR: registryDir,
      LOG_LEVEL: 'ERROR',
      ETL_FLUSH_AGE_MS: '500',
      ETL_CLOSE_CHECK_MS: '1000',
      ETL_CLOSE_GRACE_MS: '5000',
      // Above the subscription's 10 s ack deadline: a SIGKILLed worker's messages come back only after it.
      ETL_AUDIT_LIVENESS_MS: '30000',
      ETL_LEASE_MS: '4000',
      // The test's hours are in the past: they must close by completeness, not by deadline.
      ETL_DEADLINE_NORMAL_MS: String(5 * 24 * HOUR),
    };
    const spawnWorker = (n: number): ChildProcess => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'etl/main.ts'], { env: { ...env, INSTANCE_ID: `chaos-${n}` }, stdio: ['ignore', 'ignore', 'inherit'] });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    };
    let spawned = 0;
    const workers: ChildProcess[] = [spawnWorker(spawned++), spawnWorker(spawned++)];

    const serviceEnv = {
      GCP_PROJECT: projectId,
      PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
      GCS_ENDPOINT: gcs.url,
      STAGING_BUCKET: staging,
      REGISTRY_STORE: 'file',
      REGISTRY_DIR: registryDir,
      CLOCK_OFFSET_MS: String(clockOffsetMs),
      AUDIT_FLUSH_MS: '500',
      AUDIT_HEARTBEAT_MS: '2000',
      PUBLISH_TIMEOUT_MS: '20000',
    };
    const startService = async (name: string): Promise<EventServiceProcess> => {
      const p = await startEventServiceProcess({ ...serviceEnv, INSTANCE_ID: name });
      services.add(p);
      return p;
    };
    const live: EventServiceProcess[] = await Promise.all([startService('chaos-es-0'), startService('chaos-es-1')]);
    const killedServices: EventServiceProcess[] = [];

    // Two past hours (relative to the shifted clock); a few ids published twice (producer retries are the same event).
    const base = Math.floor(virtualNow() / HOUR) * HOUR - 2 * HOUR;
    const events = makeEvents(TOTAL, (i) => base + (i % 2) * HOUR + (i % 3_000_000), 'x');
    // The test's own audit writes (standing in for the event service) go in before the faults,
    // so only the workers face them.
    await writeAudit(storage, staging, type, events);
    await injectFault(gcs.url, { methods: ['POST', 'PUT'], path: '^/upload/', probability: 0.05, status: 503 });
    let killing = true;
    const killer = (async () => {
      for (let k = 0; k < KILLS && killing; k++) {
        await new Promise((r) => setTimeout(r, 3500));
        const victim = k % workers.length;
        workers[victim]!.kill('SIGKILL');
        workers[victim] = spawnWorker(spawned++);
      }
    })();
    // The live hour: clients post to the live services; a batch a service did not answer goes to another.
    const ledger = new AcceptedLedger();
    const stopAt = liveEnd - 8_000;
    const inFlight = new Map<EventServiceProcess, number>();
    const client = async (c: number): Promise<void> => {
      for (let n = 0; virtualNow() < stopAt; n++) {
        let pending = makeEvents(50, () => 0, `live${c}-${n}`).map((e) => ({ type, id: e.eventId, payload: e.payload }));
        for (let attempt = 0; pending.length > 0 && attempt < 20; attempt++) {
          const target = live[(n + c + attempt) % live.length]!;
          inFlight.set(target, (inFlight.get(target) ?? 0) + 1);
          pending = await postBatch(target.url, pending, ledger).finally(() => inFlight.set(target, inFlight.get(target)! - 1));
        }
      }
    };
    const load = Promise.all([0, 1, 2].map(client));
    // Event-service SIGKILLs at a third and two thirds of the load, with requests in flight on the victim.
    const serviceKiller = (async () => {
      const from = virtualNow();
      for (let k = 0; k < SERVICE_KILLS; k++) {
        await waitUntil(() => virtualNow() >= from + ((stopAt - from) * (k + 1)) / (SERVICE_KILLS + 1), 120_000, 100);
        const victim = live[k % live.length]!;
        await waitUntil(() => (inFlight.get(victim) ?? 0) > 0, 5_000, 1);
        victim.child.kill('SIGKILL');
        killedServices.push(victim);
        live[k % live.length] = await startService(`chaos-es-${2 + k}`);
      }
    })();
    for (let i = 0; i < TOTAL; i += 20_000) await publishEvents(topic, type, pageViewSchema, events.slice(i, i + 20_000));
    await publishEvents(topic, type, pageViewSchema, events.slice(0, 500));
    await killer;
    killing = false;
    await serviceKiller;
    await load;
    expect(killedServices).toHaveLength(SERVICE_KILLS);

    const livePeriod = periodOf(liveEnd - 1, 'hourly');
    const periods = [periodOf(base, 'hourly'), periodOf(base + HOUR, 'hourly'), livePeriod];
    const closed = await waitUntil(async () => {
      for (const p of periods) if (!(await storage.bucket(data).file(`${type}/dt=${p.key.slice(0, 10)}/hour=${p.key.slice(11)}/_SUCCESS`).exists())[0]) return false;
      return true;
    }, 300_000, 1000);
    const fired = (await listFaults(gcs.url)).reduce((n, r) => n + r.fired, 0);
    await clearFaults(gcs.url);
    expect(closed).toBe(true);
    expect(fired).toBeGreaterThan(0);

    const seen = new Map<string, number>();
    const killedIds = new Set(killedServices.map((p) => p.instanceId));
    for (const p of periods) {
      const part = (await readPartition(storage, data, type, p))!;
      const m = part.manifest;
      expect(m.audit).toMatchObject({ complete: true });
      expect(m.closedBy).toBe('complete');
      expect(m.completeness?.rule).toMatch(/^complete(-after-instance-loss)?$/);
      // Lost: only killed instances, and every killed instance that accepted events in the hour.
      const named = m.completeness!.instances.filter((i) => killedIds.has(i.instanceId)).map((i) => i.instanceId);
      expect([...m.completeness!.lostInstances].sort()).toEqual(named.sort());
      for (const i of m.completeness!.instances) {
        if (i.state === 'final') expect(i.delivered).toBe(i.audited + i.unreported);
        else expect(i.delivered).toBeGreaterThanOrEqual(i.audited + i.unreported);
      }
      expect(m.completeness!.instances.reduce((n, i) => n + i.delivered, 0) + m.completeness!.direct.delivered).toBeGreaterThanOrEqual(m.recordCount);
      expect(part.records).toHaveLength(m.recordCount);
      for (const r of part.records) {
        expect(periodOf(r.receiveTime, 'hourly').key).toBe(p.key);
        seen.set(r.eventId, (seen.get(r.eventId) ?? 0) + 1);
      }
    }
    const accepted = [...events.map((e) => e.eventId), ...ledger.all];
    const missing = accepted.filter((id) => !seen.has(id)).length;
    const duplicated = [...seen.values()].filter((n) => n > 1).length;
    expect({ missing, duplicated }).toEqual({ missing: 0, duplicated: 0 });
    expect(seen.size).toBeGreaterThanOrEqual(TOTAL + ledger.all.size);
    const liveManifest = (await readPartition(storage, data, type, livePeriod))!.manifest;
    expect(liveManifest.completeness?.rule).toBe('complete-after-instance-loss');
    console.log(
      `chaos: ${TOTAL} published + ${ledger.all.size} accepted by event services; live hour ${liveManifest.completeness?.rule}, ` +
        `lost ${liveManifest.completeness?.lostInstances.join(',')}; upload faults fired ${fired}; unanswered batches ${ledger.unanswered}`,
    );
    expect(spawned).toBe(2 + KILLS);
    // Killed workers' messages come back only after their ack deadline: on a loaded 2-core machine
    // the whole run can take minutes, which is slow, not lost.
  }, 540_000);
});
