/**
 * The ETL's Prometheus metrics (prom-client), named and described by
 * lib/metrics.ts `etlMetrics`, one registry per worker host. The counters of
 * each pipeline (`PipelineMetrics`) are read when scraped; the stager and the
 * closer report what only they see through their type's `TypeTelemetry`
 * (staged records, closes, the open periods of each closer pass). The
 * close-lag gauges are computed at scrape time from the worker's clock, so
 * they rise between closer passes as the alert needs.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EVENT_TYPE_LABEL, etlMetrics, OUTCOME_LABEL, type EtlMetricDefinition } from '../lib/metrics.ts';
import { parsePeriodKey, type Period } from '../lib/partitions.ts';
import type { PipelineMetrics } from './metrics.ts';

/** What the stager and closer of one type report. */
export interface TypeTelemetry {
  /** A staged file holding `records` was written. */
  staged(records: readonly { receiveTime: number }[]): void;
  /** This worker closed `period`; `startedMs` is `performance.now()` when the close began. */
  closed(period: Period, outcome: 'complete' | 'deadline', startedMs: number): void;
  /** The periods a closer pass found open (staged files or accepted counts, no `_SUCCESS`): the pass's full view. */
  openPeriods(periodKeys: Iterable<string>): void;
}

export interface EtlTelemetryOptions {
  /** The worker's clock (epoch ms): the close lag is measured against it. */
  now: () => number;
  /** The hosted types and their pipeline counters, read at each scrape. */
  pipelines: () => Iterable<readonly [string, PipelineMetrics]>;
  /** Also expose Node's process metrics (`etl/main.ts`; off in tests, which host several workers per process). */
  processMetrics?: boolean;
}

interface OpenState {
  /** Start and end of the oldest open period, epoch ms. */
  oldest: { startMs: number; endMs: number } | undefined;
}

const labelsOf = (m: EtlMetricDefinition): string[] => [EVENT_TYPE_LABEL, ...m.labels];

export class EtlTelemetry {
  readonly registry = new Registry();
  private readonly open = new Map<string, OpenState>();
  private readonly stagingLatency: Histogram;
  private readonly closeDuration: Histogram;
  private readonly closedLag: Histogram;
  private readonly partitionsClosed: Counter;

  constructor(private readonly opts: EtlTelemetryOptions) {
    const registers = [this.registry];
    const counterOf = (m: EtlMetricDefinition, read: (p: PipelineMetrics) => number): void => {
      const pipelines = opts.pipelines;
      new Counter({
        name: m.name,
        help: m.help,
        labelNames: labelsOf(m),
        registers,
        collect() {
          // Absolute values: a pipeline restarted with fresh counters shows as a counter reset.
          this.reset();
          for (const [eventType, metrics] of pipelines()) this.inc({ [EVENT_TYPE_LABEL]: eventType }, read(metrics));
        },
      });
    };
    counterOf(etlMetrics.eventsPulled, (p) => p.received);
    counterOf(etlMetrics.eventsStaged, (p) => p.stagedRecords);
    counterOf(etlMetrics.eventsAcked, (p) => p.acked);
    counterOf(etlMetrics.eventsDeadLettered, (p) => p.deadLettered);
    const histogramOf = (m: EtlMetricDefinition & { buckets: readonly number[] }): Histogram =>
      new Histogram({ name: m.name, help: m.help, labelNames: labelsOf(m), buckets: [...m.buckets], registers });
    this.stagingLatency = histogramOf(etlMetrics.stagingLatency);
    this.closeDuration = histogramOf(etlMetrics.closeDuration);
    this.closedLag = histogramOf(etlMetrics.closedPartitionLag);
    this.partitionsClosed = new Counter({
      name: etlMetrics.partitionsClosed.name,
      help: etlMetrics.partitionsClosed.help,
      labelNames: labelsOf(etlMetrics.partitionsClosed),
      registers,
    });
    const open = this.open;
    const gaugeOf = (m: EtlMetricDefinition, value: (oldest: { startMs: number; endMs: number }, now: number) => number): void => {
      new Gauge({
        name: m.name,
        help: m.help,
        labelNames: labelsOf(m),
        registers,
        collect() {
          this.reset();
          const now = opts.now();
          for (const [eventType] of opts.pipelines()) {
            const oldest = open.get(eventType)?.oldest;
            this.set({ [EVENT_TYPE_LABEL]: eventType }, oldest === undefined ? 0 : Math.max(0, value(oldest, now)) / 1000);
          }
        },
      });
    };
    gaugeOf(etlMetrics.partitionCloseLag, (oldest, now) => now - oldest.endMs);
    gaugeOf(etlMetrics.oldestOpenPeriodAge, (oldest, now) => now - oldest.startMs);
    if (opts.processMetrics === true) collectDefaultMetrics({ register: this.registry });
  }

  /** The hooks of one type's stager and closer. */
  forType(eventType: string): TypeTelemetry {
    const type = { [EVENT_TYPE_LABEL]: eventType };
    return {
      staged: (records) => {
        const now = this.opts.now();
        for (const r of records) this.stagingLatency.observe(type, Math.max(0, now - r.receiveTime) / 1000);
      },
      closed: (period, outcome, startedMs) => {
        const labels = { ...type, [OUTCOME_LABEL]: outcome };
        this.partitionsClosed.inc(labels);
        this.closeDuration.observe(labels, Math.max(0, performance.now() - startedMs) / 1000);
        this.closedLag.observe(labels, Math.max(0, this.opts.now() - period.endMs) / 1000);
        // Closed now: no longer the oldest open period, whatever the last pass saw.
        const state = this.open.get(eventType);
        if (state?.oldest !== undefined && state.oldest.startMs === period.startMs) state.oldest = undefined;
      },
      openPeriods: (keys) => {
        let oldest: OpenState['oldest'];
        for (const key of keys) {
          let p: Period;
          try {
            p = parsePeriodKey(key);
          } catch {
            continue;
          }
          if (oldest === undefined || p.startMs < oldest.startMs) oldest = { startMs: p.startMs, endMs: p.endMs };
        }
        this.open.set(eventType, { oldest });
      },
    };
  }

  /** The exposition text of every metric (what `GET /metrics` answers). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
