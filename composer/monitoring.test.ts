import { describe, expect, it } from 'vitest';
import { metricNames } from '../lib/names.ts';
import { monitoringFor } from './monitoring.ts';

const gcs = ['gcs'] as const;

describe('monitoringFor', () => {
  it('sets the SLO by priority and pages low priority only in working hours', () => {
    expect(monitoringFor({ name: 'a_type', priority: 'high', storage: [...gcs] })).toMatchObject({ sloHours: 3, alerts: [{ threshold: 5400, notify: 'always', severity: 'CRITICAL' }, { severity: 'WARNING' }, { threshold: 0, severity: 'CRITICAL' }] });
    expect(monitoringFor({ name: 'a_type', priority: 'normal', storage: [...gcs] }).sloHours).toBe(24);
    expect(monitoringFor({ name: 'a_type', priority: 'normal', storage: [...gcs] }).alerts[0]!.severity).toBe('ERROR');
    const low = monitoringFor({ name: 'a_type', priority: 'low', storage: ['gcs', 'bigquery'] });
    expect(low.sloHours).toBe(72);
    expect(low.alerts.every((a) => a.notify === 'working-hours')).toBe(true);
    expect(low.alerts.map((a) => a.resource)).toEqual(['events-a_type-etl', 'events-a_type-dead-letter-sub', 'a_type', 'a_type']);
  });

  it('alerts on metrics the platform emits: Pub/Sub subscription metrics and the log-based metrics of the ETL', () => {
    const metrics = monitoringFor({ name: 'a_type', priority: 'high', storage: ['bigquery'] }).alerts.map((a) => a.metric);
    const logBased = new Set(Object.values(metricNames).map((m) => `logging.googleapis.com/user/${m}`));
    for (const m of metrics) expect(m.startsWith('pubsub.googleapis.com/subscription/') || logBased.has(m), m).toBe(true);
    expect(metrics.some((m) => m.startsWith('custom.googleapis.com/'))).toBe(false);
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
