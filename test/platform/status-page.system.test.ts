/**
 * The partition status page in a real browser (Debian's headless Chromium,
 * driven over the DevTools protocol by puppeteer-core). The local platform's
 * pieces run in this process: the GCS emulator, the event service, the ETL
 * workers (close grace and the `high` deadline shortened through their
 * tuning) and the status service, on the run's Pub/Sub emulator.
 *
 * The clock (`Date`, for every piece in this process) is moved forward, so
 * that an hour can be over without waiting for it: events are accepted in
 * hour H; then the clock passes H's end plus the grace (two types close
 * complete), then the `high` deadline (a type that lost events closes at the
 * deadline); late events and an open hour follow. The page must show each
 * state in its cell; a screenshot is saved under test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import puppeteer, { type Browser } from 'puppeteer-core';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { auditObjectName, type AuditCount } from '../../lib/events/contract.ts';
import { lateCounterObjectName, periodOf, successObjectName, type Period } from '../../lib/partitions.ts';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import type { AvroSchemaJson, Priority } from '../../lib/registry/types.ts';
import { silentLogger } from '../../lib/logger.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { startEventService, type RunningEventService } from '../../functions/event-service/server.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { eventTypeRecord, provisionType, publishEvents } from '../support/etl.ts';
import { defaultStatusTuning } from '../../functions/status/config.ts';
import { startStatusService, type RunningStatusService } from '../../functions/status/server.ts';
import type { PartitionStatus } from '../../functions/status/state.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const GRACE_MS = MINUTE;
const HIGH_DEADLINE_MS = 20 * MINUTE;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const clickSchema: AvroSchemaJson = {
  type: 'record',
  name: 'Click',
  namespace: 'com.example.status',
  fields: [
    { name: 'button', type: 'string' },
    { name: 'n', type: 'long' },
  ],
};

/** Waits on real time (the faked `Date` jumps). */
async function eventually(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('partition status page in headless Chromium', () => {
  const projectId = inject('projectId');
  const run = uniqueName('status', 'page').replace(/-/g, '_');
  const name = (suffix: string): string => `${run}_${suffix}`.slice(0, 60);
  const types = { complete: name('a'), deadline: name('b'), late: name('c'), open: name('d') };
  const staging = uniqueName('status', 'staging');
  const data = uniqueName('status', 'data');
  const registry = new MemoryRegistryStore();
  let pubsub: PubSub;
  let gcs: GcsEmulator;
  let storage: Storage;
  let eventService: RunningEventService;
  let etl: EtlWorkers;
  let status: RunningStatusService;
  let browser: Browser;
  const topics = new Map<string, Topic>();
  // Hour H starts now (rounded down); the clock starts 5 minutes into it.
  const hStart = Math.floor(Date.now() / HOUR) * HOUR;
  const h: Period = periodOf(hStart, 'hourly');
  const next: Period = periodOf(hStart + HOUR, 'hourly');

  beforeAll(async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: hStart + 5 * MINUTE });
    pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const specs: [string, Priority, string][] = [
      [types.complete, 'normal', 'team-web'],
      [types.deadline, 'high', 'team-payments'],
      [types.late, 'normal', 'team-web'],
      [types.open, 'low', 'team-search'],
    ];
    for (const [t, priority, owner] of specs) {
      const record = eventTypeRecord(t, [clickSchema], { priority });
      record.settings.owner = owner;
      await registry.putEventType(record, 0);
      topics.set(t, (await provisionType(pubsub, t)).topic);
    }
    eventService = await startEventService(
      withDefaults({ projectId, pubsubEmulatorHost: inject('pubsubHost'), gcsEndpoint: gcs.url, stagingBucket: staging, auditFlushMs: 200, registryRefreshMs: 200 }),
      { registry, logger: silentLogger },
    );
    etl = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      logger: silentLogger,
      tuning: {
        flushAgeMs: 300,
        closeCheckIntervalMs: 300,
        closeGraceMs: GRACE_MS,
        closeDeadlineMs: { high: HIGH_DEADLINE_MS, normal: 24 * HOUR, low: 72 * HOUR },
        registryPollMs: 500,
        schemaRefreshMinMs: 100,
        backoffInitialMs: 50,
        backoffMaxMs: 1000,
      },
    });
    status = await startStatusService({
      host: '127.0.0.1',
      port: 0,
      projectId,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      pubsub,
      logger: silentLogger,
      tuning: {
        ...defaultStatusTuning,
        refreshMs: 500,
        deadLetterIntervalMs: 500,
        closeGraceMs: GRACE_MS,
        closeDeadlineMs: { high: HIGH_DEADLINE_MS, normal: 24 * HOUR, low: 72 * HOUR },
      },
    });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await status?.close();
    await eventService?.close();
    await etl?.close();
    await pubsub?.close();
    await gcs?.close();
    vi.useRealTimers();
  });

  async function send(type: string, n: number, tag: string): Promise<void> {
    const events = Array.from({ length: n }, (_, i) => ({ type, id: `${tag}-${i}`, payload: { button: tag, n: i } }));
    const res = await fetch(`${eventService.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    const body = (await res.json()) as { accepted: number };
    expect(res.status).toBe(200);
    expect(body.accepted).toBe(n);
  }

  async function partition(type: string, period: Period): Promise<PartitionStatus> {
    await status.refresh();
    const res = await fetch(`${status.url}/v1/partitions/${type}/${period.key}`);
    expect(res.status).toBe(200);
    return (await res.json()) as PartitionStatus;
  }

  const exists = async (object: string): Promise<boolean> => (await storage.bucket(data).file(object).exists())[0];

  it('shows closed complete, closed at deadline with missing events, late events and open in the grid', async () => {
    // Hour H: three types receive events through the event service.
    await send(types.complete, 3, 'a');
    await send(types.deadline, 3, 'b');
    await send(types.late, 3, 'c');
    // Two more events of the `high` type were accepted by an instance whose messages were lost
    // (its audit count is all that is left of them): the hour can only close at its deadline.
    const lost: AuditCount = { eventType: types.deadline, hour: h.key, instanceId: 'lost-instance', accepted: 2, updatedAt: new Date().toISOString() };
    await storage.bucket(staging).file(auditObjectName(types.deadline, h.key, 'lost-instance')).save(JSON.stringify(lost), { resumable: false });
    // A message the ETL cannot decode (an unregistered schema fingerprint) is dead-lettered.
    await topics.get(types.complete)!.publishMessage({
      data: Buffer.from([1, 2, 3]),
      attributes: { eventType: types.complete, schemaFingerprint: '00000000deadbeef', eventId: 'dl-1', receiveTime: new Date(hStart + 6 * MINUTE).toISOString() },
    });
    await eventually('hour H staged and audited', async () => {
      const ps = await Promise.all([types.complete, types.deadline, types.late].map((t) => partition(t, h)));
      return ps.every((p) => p.state === 'open' && p.staged === 3) && ps[1]!.accepted === 5 && ps[0]!.accepted === 3 && ps[2]!.accepted === 3;
    });

    // Past the end of H plus the grace: the complete hours close.
    vi.setSystemTime(h.endMs + GRACE_MS + 1000);
    await eventually('two hours closed complete', async () => (await exists(successObjectName(types.complete, h))) && (await exists(successObjectName(types.late, h))));
    expect((await partition(types.deadline, h)).state).toBe('closing');

    // Two events of H reach the ETL after H closed (a publish Pub/Sub confirmed late): late events.
    await publishEvents(topics.get(types.late)!, types.late, clickSchema, [
      { eventId: 'c-late-1', receiveTime: hStart + 30 * MINUTE, payload: { button: 'late', n: 1 } },
      { eventId: 'c-late-2', receiveTime: hStart + 31 * MINUTE, payload: { button: 'late', n: 2 } },
    ]);
    await eventually('late counter', async () => exists(lateCounterObjectName(types.late, h)));
    await eventually('late count 2', async () => (await partition(types.late, h)).late === 2);

    // Past the `high` deadline: the type that lost events closes anyway.
    vi.setSystemTime(h.endMs + HIGH_DEADLINE_MS + 1000);
    await eventually('hour closed at deadline', async () => exists(successObjectName(types.deadline, h)));

    // Hour H+1 is under way: a fourth type has events in it.
    await send(types.open, 4, 'd');
    await eventually('open hour staged', async () => {
      const p = await partition(types.open, next);
      return p.staged === 4 && p.accepted === 4;
    });
    await eventually('dead letter counted', async () => {
      await status.countDeadLetters();
      const res = await fetch(`${status.url}/v1/dead-letters?type=${types.complete}`);
      const body = (await res.json()) as { deadLetters: Record<string, { byHour: Record<string, number> } | null> };
      return body.deadLetters[types.complete]?.byHour[h.key] === 1;
    });
    await status.refresh();

    // The page, in Chromium.
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 500 });
    const response = await page.goto(`${status.url}/?hours=3`, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    const cell = async (type: string, period: Period): Promise<Record<string, string>> =>
      page.$eval(`td[data-type="${type}"][data-period="${period.key}"]`, (td) => ({ ...(td as HTMLElement).dataset, className: td.className, href: td.querySelector('a')?.getAttribute('href') ?? '', colour: getComputedStyle(td).backgroundColor }));

    const complete = await cell(types.complete, h);
    expect(complete).toMatchObject({ state: 'closed-complete', accepted: '3', missing: '0', late: '0' });
    const deadline = await cell(types.deadline, h);
    expect(deadline).toMatchObject({ state: 'closed-deadline', accepted: '5', missing: '2', late: '0' });
    const late = await cell(types.late, h);
    expect(late).toMatchObject({ state: 'closed-complete', late: '2', missing: '0' });
    expect(late.className).toContain('late');
    const open = await cell(types.open, next);
    expect(open).toMatchObject({ state: 'open', accepted: '4', staged: '4' });
    // The open type had nothing in H: an empty hour, not a missing one.
    expect(await cell(types.open, h)).toMatchObject({ state: 'empty' });
    // Each state has its own colour.
    expect(new Set([complete.colour, deadline.colour, open.colour]).size).toBe(3);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`status page screenshot: ${shot}`);

    // Filter by owner: only that team's types are left.
    await page.goto(`${status.url}/?hours=3&owner=team-web`, { waitUntil: 'load' });
    const shown = await page.$$eval('table#hourly tr[data-type]', (rows) => rows.map((r) => r.getAttribute('data-type')));
    expect(shown.sort()).toEqual([types.complete, types.late].sort());
    await page.goto(`${status.url}/?hours=3&priority=high`, { waitUntil: 'load' });
    expect(await page.$$eval('table#hourly tr[data-type]', (rows) => rows.map((r) => r.getAttribute('data-type')))).toEqual([types.deadline]);

    // A cell leads to its partition page, which links to the manifest, the late counter and the dead letters.
    await page.goto(`${status.url}${complete.href}`, { waitUntil: 'load' });
    expect(await page.$eval('#partition [data-state]', (e) => e.getAttribute('data-state'))).toBe('closed-complete');
    expect(await page.$eval('#dead-letters', (a) => a.textContent)).toMatch(/^1 /);
    const manifestHref = await page.$eval('#manifest', (a) => a.getAttribute('href'));
    const manifest = (await (await fetch(`${status.url}${manifestHref}`)).json()) as { closedBy: string; recordCount: number };
    expect(manifest).toMatchObject({ closedBy: 'complete', recordCount: 3 });
    await page.goto(`${status.url}${late.href}`, { waitUntil: 'load' });
    const lateHref = await page.$eval('#late', (a) => a.getAttribute('href'));
    expect(((await (await fetch(`${status.url}${lateHref}`)).json()) as { count: number }).count).toBe(2);

    // The type page: schema versions and throughput.
    await page.goto(`${status.url}/types/${types.open}`, { waitUntil: 'load' });
    expect(await page.$eval('#versions', (t) => t.textContent)).toContain(schemaFingerprint(clickSchema));
    expect(await page.$eval('#throughput', (p) => p.textContent)).toMatch(/^4 events accepted/);
    await page.close();

    // The JSON API agrees and refuses bad parameters with a clear 400.
    const all = (await (await fetch(`${status.url}/v1/partitions?type=${types.deadline}&from=${h.key}&to=${h.key}`)).json()) as { partitions: PartitionStatus[] };
    expect(all.partitions).toHaveLength(1);
    expect(all.partitions[0]).toMatchObject({ state: 'closed-deadline', accepted: 5, delivered: 3, missing: 2 });
    for (const [query, parameter] of [
      ['from=yesterday', 'from'],
      ['to=2026-02-30', 'to'],
      ['type=Not-A-Type', 'type'],
      ['priority=urgent', 'priority'],
      ['from=2026-11-30T10&to=2026-11-30T09', 'from'],
      ['colour=red', 'colour'],
      ['type=a_b_c&type=d_e_f', 'type'],
    ]) {
      const res = await fetch(`${status.url}/v1/partitions?${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { code: string; message: string; details: { parameter: string } };
      expect(body.code).toBe('BAD_REQUEST');
      expect(body.details.parameter).toBe(parameter);
    }
    const unknown = await fetch(`${status.url}/v1/partitions?type=no_such_type`);
    expect(unknown.status).toBe(404);
  });
});
