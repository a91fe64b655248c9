/**
 * Chaos: 100,000 events accepted while ETL worker processes (etl/main.ts) are
 * killed with SIGKILL several times and the GCS emulator fails 5% of writes
 * with 503. Afterwards every accepted id is in exactly one closed partition,
 * exactly once, and every manifest's audit says complete.
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

const HOUR = 3_600_000;
const TOTAL = 100_000;
const KILLS = 4;

describe('ETL under SIGKILL and storage faults', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const children = new Set<ChildProcess>();
  let gcs: GcsEmulator | undefined;

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
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

    const env = {
      ...process.env,
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
      ETL_CLOSE_GRACE_MS: '1000',
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

    // Two past hours; a few ids published twice (producer retries are the same event).
    const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
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
    for (let i = 0; i < TOTAL; i += 20_000) await publishEvents(topic, type, pageViewSchema, events.slice(i, i + 20_000));
    await publishEvents(topic, type, pageViewSchema, events.slice(0, 500));
    await killer;
    killing = false;

    const periods = [periodOf(base, 'hourly'), periodOf(base + HOUR, 'hourly')];
    const closed = await waitUntil(async () => {
      for (const p of periods) if (!(await storage.bucket(data).file(`${type}/dt=${p.key.slice(0, 10)}/hour=${p.key.slice(11)}/_SUCCESS`).exists())[0]) return false;
      return true;
    }, 240_000, 1000);
    const fired = (await listFaults(gcs.url)).reduce((n, r) => n + r.fired, 0);
    await clearFaults(gcs.url);
    expect(closed).toBe(true);
    expect(fired).toBeGreaterThan(0);

    const seen = new Map<string, number>();
    for (const p of periods) {
      const part = (await readPartition(storage, data, type, p))!;
      expect(part.manifest.audit).toMatchObject({ complete: true });
      expect(part.manifest.closedBy).toBe('complete');
      expect(part.manifest.audit.accepted).toBe(part.manifest.audit.delivered);
      expect(part.records).toHaveLength(part.manifest.recordCount);
      for (const r of part.records) {
        expect(periodOf(r.receiveTime, 'hourly').key).toBe(p.key);
        seen.set(r.eventId, (seen.get(r.eventId) ?? 0) + 1);
      }
    }
    const missing = events.filter((e) => !seen.has(e.eventId)).length;
    const duplicated = [...seen.values()].filter((n) => n > 1).length;
    expect({ missing, duplicated, distinct: seen.size }).toEqual({ missing: 0, duplicated: 0, distinct: TOTAL });
    expect(spawned).toBe(2 + KILLS);
    // Killed workers' messages come back only after their ack deadline: on a loaded 2-core machine
    // the whole run can take minutes, which is slow, not lost.
  }, 300_000);
});
