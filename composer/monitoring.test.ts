import { describe, expect, it } from 'vitest';
import { metricNames } from '../lib/names.ts';
import { closeLagThresholdSeconds, etlMetrics, prometheusMetricType } from '../lib/metrics.ts';
import { monitoringFor } from './monitoring.ts';

const gcs = ['gcs'] as const;

describe('monitoringFor', () => {
  it('sets the SLO by priority and pages low priority only in working hours', () => {
    expect(monitoringFor({ name: 'a_type', priority: 'high', storage: [...gcs] })).toMatchObject({
      sloHours: 3,
      alerts: [{ threshold: 5400, notify: 'always', severity: 'CRITICAL' }, { severity: 'WARNING' }, { kind: 'partition_close_lag', threshold: 7200, severity: 'CRITICAL' }, { threshold: 0, severity: 'CRITICAL' }],
    });
    expect(monitoringFor({ name: 'a_type', priority: 'normal', storage: [...gcs] }).sloHours).toBe(24);
    expect(monitoringFor({ name: 'a_type', priority: 'normal', storage: [...gcs] }).alerts[0]!.severity).toBe('ERROR');
    const low = monitoringFor({ name: 'a_type', priority: 'low', storage: ['gcs', 'bigquery'] });
    expect(low.sloHours).toBe(72);
    expect(low.alerts.every((a) => a.notify === 'working-hours')).toBe(true);
    expect(low.alerts.map((a) => a.resource)).toEqual(['events-a_type-etl', 'events-a_type-dead-letter-sub', 'a_type', 'a_type', 'a_type']);
  });

  it('alerts on metrics the platform emits: Pub/Sub subscription metrics, the log-based metrics and the Prometheus metrics of the ETL', () => {
    const metrics = monitoringFor({ name: 'a_type', priority: 'high', storage: ['bigquery'] }).alerts.map((a) => a.metric);
    const logBased = new Set(Object.values(metricNames).map((m) => `logging.googleapis.com/user/${m}`));
    const prometheus = new Set(Object.values(etlMetrics).map(prometheusMetricType));
    for (const m of metrics) expect(m.startsWith('pubsub.googleapis.com/subscription/') || logBased.has(m) || prometheus.has(m), m).toBe(true);
    expect(metrics.some((m) => m.startsWith('custom.googleapis.com/'))).toBe(false);
  });

  it('the close-lag alert of every priority fires before its SLO is missed, on the lag of the oldest unclosed partition', () => {
    for (const priority of ['high', 'normal', 'low'] as const) {
      const def = monitoringFor({ name: 'a_type', priority, storage: ['gcs'] });
      const lag = def.alerts.find((a) => a.kind === 'partition_close_lag')!;
      expect(lag.metric).toBe(prometheusMetricType(etlMetrics.partitionCloseLag));
      expect(lag.threshold).toBe(closeLagThresholdSeconds(def.sloHours * 3600));
      // Crossing the threshold, plus the time it must hold, plus a scrape and an evaluation (60 s each), is before the SLO.
      expect(lag.threshold + lag.durationSeconds + 120).toBeLessThan(def.sloHours * 3600);
    }
    expect(monitoringFor({ name: 'a_type', priority: 'high', storage: ['gcs'] }).alerts.find((a) => a.kind === 'partition_close_lag')!.threshold).toBe(2 * 3600);
  });

  it('a type stored in BigQuery alerts when its loader stops on a permanent failure; a GCS-only type has no such alert', () => {
    const kinds = (storage: ('gcs' | 'bigquery')[]): string[] => monitoringFor({ name: 'a_type', priority: 'normal', storage }).alerts.map((a) => a.kind);
    expect(kinds(['gcs'])).not.toContain('bigquery_loading_stopped');
    expect(kinds(['bigquery'])).toContain('bigquery_loading_stopped');
    const stopped = monitoringFor({ name: 'a_type', priority: 'high', storage: ['gcs', 'bigquery'] }).alerts.find((a) => a.kind === 'bigquery_loading_stopped');
    // Any stop counts, at once, with the type's SLO severity: nothing reaches BigQuery until the worker restarts.
    expect(stopped).toMatchObject({
      name: 'a_type-bigquery-loading-stopped',
      metric: `logging.googleapis.com/user/${metricNames.bigQueryLoadingStopped}`,
      resource: 'a_type',
      threshold: 0,
      durationSeconds: 0,
      severity: 'CRITICAL',
      notify: 'always',
    });
  });
});
