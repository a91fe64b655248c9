import { describe, expect, it } from 'vitest';
import { monitoringFor } from './monitoring.ts';

describe('monitoringFor', () => {
  it('sets the SLO by priority and pages low priority only in working hours', () => {
    expect(monitoringFor({ name: 'a_type', priority: 'high' })).toMatchObject({ sloHours: 3, alerts: [{ threshold: 5400, notify: 'always', severity: 'critical' }, {}, { threshold: 10800 }] });
    expect(monitoringFor({ name: 'a_type', priority: 'normal' }).sloHours).toBe(24);
    const low = monitoringFor({ name: 'a_type', priority: 'low' });
    expect(low.sloHours).toBe(72);
    expect(low.alerts.every((a) => a.notify === 'working-hours')).toBe(true);
    expect(low.alerts.map((a) => a.resource)).toEqual(['events-a_type-etl', 'events-a_type-dead-letter-sub', 'a_type/']);
  });
});
