/**
 * The status service's listing pass against the GCS emulator: the first pass
 * reads each marker once, a later pass reads only what is new or rewritten
 * and lists nothing before a type's frontier, and what changes after a close
 * (late events, the BigQuery load) still shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Storage } from '@google-cloud/storage';
import { createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { auditObjectName } from '../../lib/events/contract.ts';
import { lateCounterObjectName, loadMarkerObjectName, partObjectName, periodOf, successObjectName, type Period } from '../../lib/partitions.ts';
import { STAGED_COUNT_KEY, stagingPeriodPrefix } from '../../lib/staging-layout.ts';
import { silentLogger } from '../../lib/logger.ts';
import { eventTypeRecord, pageViewSchema } from '../support/etl.ts';
import { defaultStatusTuning } from '../../functions/status/config.ts';
import { PartitionScanner } from '../../functions/status/scanner.ts';
import type { PartitionStatus } from '../../functions/status/state.ts';

const HOUR = 3_600_000;
const base = Date.parse('2026-11-20T00:00:00Z');
const hours: Period[] = Array.from({ length: 6 }, (_, i) => periodOf(base + i * HOUR, 'hourly'));

describe('status listing pass', () => {
  let gcs: GcsEmulator;
  let storage: Storage;
  const registry = new MemoryRegistryStore();
  let nowMs = base + 5 * HOUR + 20 * 60_000;
  let scanner: PartitionScanner;

  const save = (bucket: string, name: string, body: unknown, metadata?: Record<string, string>): Promise<void> =>
    storage.bucket(bucket).file(name).save(typeof body === 'string' ? body : JSON.stringify(body), { resumable: false, ...(metadata === undefined ? {} : { metadata: { metadata } }) });
  const manifest = (type: string, p: Period, accepted: number, delivered: number) => ({
    formatVersion: 1,
    eventType: type,
    partitioning: 'hourly',
    period: p.key,
    files: [{ name: partObjectName(type, p, 0), size: 1, crc32c: 'AAAAAA==', md5Hash: 'AAAAAAAAAAAAAAAAAAAAAA==', recordCount: delivered, schemaFingerprint: 'f' }],
    recordCount: delivered,
    schemaFingerprints: ['f'],
    deliveredSchemas: {},
    timeRange: { start: new Date(p.startMs).toISOString(), end: new Date(p.endMs).toISOString() },
    audit: { accepted, delivered, duplicatesDropped: 0, complete: accepted === delivered },
    closedBy: accepted === delivered ? 'complete' : 'deadline',
    transformStats: {},
    lateCount: 0,
  });
  const audit = (type: string, p: Period, accepted: number): Promise<void> =>
    save('st-staging', auditObjectName(type, p.key, 'es-1'), { eventType: type, hour: p.key, instanceId: 'es-1', accepted, updatedAt: 'x' });
  const state = (type: string, p: Period): PartitionStatus => scanner.snapshot()!.partitions.get(type)!.find((x) => x.period === p.key)!;

  beforeAll(async () => {
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId: 'test-project', apiEndpoint: gcs.url });
    await storage.createBucket('st-staging');
    await storage.createBucket('st-data');
    await registry.putEventType(eventTypeRecord('st_gcs', [pageViewSchema], { priority: 'high' }), 0);
    const bq = eventTypeRecord('st_bq', [pageViewSchema], { priority: 'normal' });
    bq.settings.storage = ['gcs', 'bigquery'];
    await registry.putEventType(bq, 0);
    // Hours 0-3 closed (hour 1 at its deadline, 2 short), hour 4 staged and not closed, hour 5 open.
    for (const t of ['st_gcs', 'st_bq']) {
      for (const [i, p] of hours.entries()) {
        await audit(t, p, 10);
        if (i <= 3) {
          await save('st-data', partObjectName(t, p, 0), 'x');
          await save('st-data', successObjectName(t, p), manifest(t, p, 10, i === 1 ? 8 : 10));
        } else {
          await save('st-staging', `${stagingPeriodPrefix(t, p)}${'a'.repeat(64)}.avro`, 'x', { [STAGED_COUNT_KEY]: '10' });
        }
      }
    }
    // st_bq: hours 0-2 loaded, hour 3 not yet.
    for (const p of hours.slice(0, 3)) await save('st-data', loadMarkerObjectName('st_bq', p), { formatVersion: 1, eventType: 'st_bq', period: p.key, table: 't', jobId: 'j', rows: 10, manifestSha256: 'm', loadedAt: 'x', late: [], lateRows: 0 });
    scanner = new PartitionScanner({
      storage,
      stagingBucket: 'st-staging',
      dataBucket: 'st-data',
      registry,
      tuning: { ...defaultStatusTuning, windowHours: 6 },
      logger: silentLogger,
      now: () => nowMs,
    });
  });
  afterAll(async () => {
    await gcs?.close();
  });

  it('reads every marker once, then only what changed, listing from each type frontier', async () => {
    await scanner.refresh();
    const first = scanner.lastPass();
    // 8 manifests + 3 load markers + the audit counts of the 2 unclosed hours of each type.
    expect(first.downloads).toBe(8 + 3 + 4);
    expect(state('st_gcs', hours[0]!)).toMatchObject({ state: 'closed-complete', accepted: 10, delivered: 10 });
    expect(state('st_gcs', hours[1]!)).toMatchObject({ state: 'closed-deadline', missing: 2 });
    expect(state('st_gcs', hours[4]!)).toMatchObject({ state: 'closing', staged: 10, accepted: 10 });
    expect(state('st_gcs', hours[5]!)).toMatchObject({ state: 'open' });
    expect(state('st_bq', hours[2]!)).toMatchObject({ loaded: true, loadedRows: 10 });
    expect(state('st_bq', hours[3]!)).toMatchObject({ state: 'closed-complete', loaded: false });

    await scanner.refresh();
    const second = scanner.lastPass();
    expect(second.downloads).toBe(0);
    // st_gcs lists from hour 4, st_bq from hour 3 (closed, not loaded yet): no closed-and-final hour is listed again.
    expect(second.objectsListed).toBeLessThan(first.objectsListed);
    const listedSecond = second.objectsListed;
    expect(listedSecond).toBe(/* staging */ 4 + /* st_gcs: audit 4, 5 */ 2 + /* st_bq: part, _SUCCESS of 3, audit 3, 4, 5 */ 5);

    // After the close: late events, the load of hour 3, hour 4 closing; the clock moves into hour 6.
    await save('st-data', lateCounterObjectName('st_gcs', hours[0]!), { eventType: 'st_gcs', period: hours[0]!.key, count: 3, files: [], updatedAt: 'x' });
    await save('st-data', loadMarkerObjectName('st_bq', hours[3]!), { formatVersion: 1, eventType: 'st_bq', period: hours[3]!.key, table: 't', jobId: 'j', rows: 10, manifestSha256: 'm', loadedAt: 'x', late: [], lateRows: 0 });
    await save('st-data', successObjectName('st_gcs', hours[4]!), manifest('st_gcs', hours[4]!, 10, 10));
    await storage.bucket('st-staging').file(`${stagingPeriodPrefix('st_gcs', hours[4]!)}${'a'.repeat(64)}.avro`).delete();
    await audit('st_gcs', hours[5]!, 25);
    await scanner.refresh();
    expect(scanner.lastPass().downloads).toBe(/* _LATE */ 1 + /* _LOADED */ 1 + /* _SUCCESS */ 1 + /* rewritten audit */ 1);
    expect(state('st_gcs', hours[0]!)).toMatchObject({ state: 'closed-complete', late: 3 });
    expect(state('st_bq', hours[3]!)).toMatchObject({ loaded: true });
    expect(state('st_gcs', hours[4]!)).toMatchObject({ state: 'closed-complete', staged: 0 });
    expect(state('st_gcs', hours[5]!)).toMatchObject({ state: 'open', accepted: 25 });

    // A late counter rewritten again is read again; nothing else is.
    await save('st-data', lateCounterObjectName('st_gcs', hours[0]!), { eventType: 'st_gcs', period: hours[0]!.key, count: 5, files: [], updatedAt: 'y' });
    await scanner.refresh();
    expect(scanner.lastPass().downloads).toBe(1);
    expect(state('st_gcs', hours[0]!).late).toBe(5);
  });

  it('lists again a period before the frontier when staged files appear for it (an ETL far behind)', async () => {
    nowMs = base + 5 * HOUR + 40 * 60_000;
    await scanner.refresh();
    // Hour 2 of st_gcs is closed and behind the frontier; a staged file of it (a redelivery the ETL will hand to the late writer) shows.
    await save('st-staging', `${stagingPeriodPrefix('st_gcs', hours[2]!)}${'b'.repeat(64)}.avro`, 'x', { [STAGED_COUNT_KEY]: '1' });
    await scanner.refresh();
    expect(state('st_gcs', hours[2]!)).toMatchObject({ state: 'closed-complete', staged: 1 });
    await scanner.refresh();
    // The frontier moved back to hour 2: its audit objects are listed again (closed, so not read).
    expect(scanner.lastPass().downloads).toBe(0);
    expect(scanner.lastPass().objectsListed).toBeGreaterThan(11);
  });
});
