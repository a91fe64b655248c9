import { describe, expect, it } from 'vitest';
import { metricNames } from '../lib/names.ts';
import { monitoringFor } from './monitoring.ts';

describe('monitoringFor', () => {
  it('sets the SLO by priority and pages low priority only in working hours', () => {
    expect(monitoringFor({ name: 'a_type', priority: 'high' })).toMatchObject({ sloHours: 3, alerts: [{ threshold: 5400, notify: 'always', severity: 'CRITICAL' }, { severity: 'WARNING' }, { threshold: 0, severity: 'CRITICAL' }] });
    expect(monitoringFor({ name: 'a_type', priority: 'normal' }).sloHours).toBe(24);
    expect(monitoringFor({ name: 'a_type', priority: 'normal' }).alerts[0]!.severity).toBe('ERROR');
    const low = monitoringFor({ name: 'a_type', priority: 'low' });
    expect(low.sloHours).toBe(72);
    expect(low.alerts.every((a) => a.notify === 'working-hours')).toBe(true);
    expect(low.alerts.map((a) => a.resource)).toEqual(['events-a_type-etl', 'events-a_type-dead-letter-sub', 'a_type']);
  });

  it('alerts on metrics the platform emits: Pub/Sub subscription metrics and the log-based metric of the ETL', () => {
    const metrics = monitoringFor({ name: 'a_type', priority: 'high' }).alerts.map((a) => a.metric);
    for (const m of metrics) expect(m.startsWith('pubsub.googleapis.com/subscription/') || m === `logging.googleapis.com/user/${metricNames.partitionsClosedAtDeadline}`, m).toBe(true);
    expect(metrics.some((m) => m.startsWith('custom.googleapis.com/'))).toBe(false);
  });
});
