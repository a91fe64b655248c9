/**
 * Issue 19: the close-lag alert of a `high` type fires before its SLO is
 * missed. A real ETL host (Pub/Sub emulator, GCS emulator) with the high
 * priority's deadline shortened to 60 s stands in for the 3 h SLO; its clock
 * is moved past the end of an hour whose audit is incomplete (2 accepted
 * events never arrive). Scraping `GET /metrics` over HTTP, the test evaluates
 * the composer's alert condition (metric and threshold from
 * composer/monitoring.ts and lib/metrics.ts, scaled to the shortened SLO) and
 * sees it false at first, true while the partition is still open, and the
 * partition then closed at its deadline with its lag recorded.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { monitoringFor } from '../../composer/monitoring.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, provisionType, publishEvents, waitUntil, writeAudit } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { silentLogger } from '../../lib/logger.ts';
import { closeLagThresholdSeconds, EVENT_TYPE_LABEL, etlMetrics, OUTCOME_LABEL } from '../../lib/metrics.ts';
import { promqlMetricName } from '../../lib/names.ts';
import { periodOf, readManifest, successObjectName } from '../../lib/partitions.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { uniqueName } from '../support/names.ts';
import { sampleValue, scrape } from '../support/prometheus-text.ts';

const HOUR = 3_600_000;
/** The shortened SLO deadline of a high type in this test (really 3 h). */
const DEADLINE_MS = 60_000;

describe('close-lag alert of a high type', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const storage = createStorage({ projectId, apiEndpoint: inject('gcsUrl') });
  const staging = uniqueName('lag', 'staging');
  const data = uniqueName('lag', 'data');
  let workers: EtlWorkers | undefined;

  beforeAll(async () => {
    await storage.createBucket(staging);
    await storage.createBucket(data);
  });
  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
  });

  it('crosses its threshold while the partition is still open, before the deadline closes it', async () => {
    const type = uniqueName('lag', 'hi').replace(/-/g, '_');
    const registry = new MemoryRegistryStore();
    const record = eventTypeRecord(type, [pageViewSchema], { priority: 'high' });
    await registry.putEventType(record, 0);
    const { topic } = await provisionType(pubsub, type);

    // The alert as the composer defines it, with the threshold scaled to the shortened SLO.
    const alert = monitoringFor(record.settings).alerts.find((a) => a.kind === 'partition_close_lag')!;
    expect(alert.threshold).toBe(closeLagThresholdSeconds(3 * 3600));
    const gauge = promqlMetricName(alert.metric);
    expect(gauge).toBe(etlMetrics.partitionCloseLag.name);
    const threshold = closeLagThresholdSeconds(DEADLINE_MS / 1000);
    const fires = (lag: number): boolean => lag > threshold;

    const hour = periodOf(Date.now() - 3 * HOUR, 'hourly');
    // The workers' clock: `offset` ms after the hour's end, running.
    let offset = 5_000;
    const realAtStart = Date.now();
    const now = (): number => hour.endMs + offset + (Date.now() - realAtStart);

    const events = makeEvents(10, (i) => hour.startMs + i * 1000, 'lag');
    const neverArrive = makeEvents(2, (i) => hour.startMs + 100_000 + i, 'lost');
    await writeAudit(storage, staging, type, [...events, ...neverArrive]);
    await publishEvents(topic, type, pageViewSchema, events);

    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      now,
      closeEnabled: false,
      metrics: { port: 0, host: '127.0.0.1' },
      tuning: { flushAgeMs: 200, closeGraceMs: 1000, closeDeadlineMs: { high: DEADLINE_MS, normal: 24 * HOUR, low: 72 * HOUR }, registryPollMs: 500 },
      logger: silentLogger,
    });
    const url = workers.metricsUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const of = { [EVENT_TYPE_LABEL]: type };
    expect(await waitUntil(() => (workers!.stats()[type]?.acked ?? 0) === events.length, 30_000)).toBe(true);
    const pipeline = workers.pipeline(type)!;
    const closed = async (): Promise<boolean> => (await storage.bucket(data).file(successObjectName(type, hour)).exists())[0];

    // Just after the hour: incomplete, open, far below the threshold.
    await pipeline.runCloser();
    let samples = await scrape(url);
    const early = sampleValue(samples, gauge, of);
    expect(early).toBeGreaterThanOrEqual(5);
    expect(fires(early)).toBe(false);
    expect(sampleValue(samples, etlMetrics.oldestOpenPeriodAge.name, of)).toBeGreaterThanOrEqual(3600 + 5);
    expect(sampleValue(samples, etlMetrics.eventsPulled.name, of)).toBe(10);
    expect(sampleValue(samples, etlMetrics.eventsStaged.name, of)).toBe(10);
    expect(sampleValue(samples, etlMetrics.eventsAcked.name, of)).toBe(10);
    expect(sampleValue(samples, etlMetrics.eventsDeadLettered.name, of)).toBe(0);
    expect(sampleValue(samples, `${etlMetrics.stagingLatency.name}_count`, of)).toBe(10);
    expect(await closed()).toBe(false);

    // Past the threshold, before the deadline: the alert fires while the partition is still open.
    offset = (threshold + 5) * 1000;
    await pipeline.runCloser();
    expect(await closed()).toBe(false);
    samples = await scrape(url);
    const late = sampleValue(samples, gauge, of);
    expect(fires(late)).toBe(true);
    expect(late * 1000).toBeLessThan(DEADLINE_MS);

    // At the deadline the closer closes it incomplete; the lag moves to the closed-partition histogram.
    offset = DEADLINE_MS + 1000;
    await pipeline.runCloser();
    expect(await closed()).toBe(true);
    expect((await readManifest(storage, data, type, hour))).toMatchObject({ closedBy: 'deadline', recordCount: 10, audit: { accepted: 12, delivered: 10 } });
    samples = await scrape(url);
    expect(sampleValue(samples, gauge, of)).toBe(0);
    expect(sampleValue(samples, etlMetrics.oldestOpenPeriodAge.name, of)).toBe(0);
    const deadline = { ...of, [OUTCOME_LABEL]: 'deadline' };
    expect(sampleValue(samples, etlMetrics.partitionsClosed.name, deadline)).toBe(1);
    expect(sampleValue(samples, `${etlMetrics.closedPartitionLag.name}_count`, deadline)).toBe(1);
    expect(sampleValue(samples, `${etlMetrics.closedPartitionLag.name}_sum`, deadline)).toBeGreaterThanOrEqual((DEADLINE_MS + 1000) / 1000);
    expect(sampleValue(samples, `${etlMetrics.closeDuration.name}_count`, deadline)).toBe(1);
  });
});
