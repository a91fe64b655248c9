/**
 * One name and one threshold per metric (issue 19): lib/metrics.ts against
 * what the ETL serves (its Prometheus registry), what the composer's
 * monitoring definitions alert on, and what the Terraform renders (the
 * export's alert inputs, the event-type module's PromQL, the worker group's
 * scrape of the ETL's port and path).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { monitoringFor, sloHoursByPriority } from '../../composer/monitoring.ts';
import { toTerraformEventType } from '../../composer/terraform-export.ts';
import { EtlTelemetry } from '../../etl/metrics-prometheus.ts';
import { newMetrics } from '../../etl/metrics.ts';
import { eventTypeRecord } from '../support/etl.ts';
import { closeLagThresholdSeconds, EVENT_TYPE_LABEL, ETL_METRICS_PORT, etlMetrics, METRICS_PATH, prometheusMetricType } from '../../lib/metrics.ts';
import { promqlMetricName } from '../../lib/names.ts';
import type { Priority } from '../../lib/registry/types.ts';
import { loadAll, type Block, type HclConfig, type ModuleKey } from '../support/terraform-hcl.ts';

let configs: Record<ModuleKey, HclConfig>;
beforeAll(async () => {
  configs = await loadAll();
});

const priorities: Priority[] = ['high', 'normal', 'low'];

describe('ETL metric names: one source for the ETL, the composer and Terraform', () => {
  it('the ETL serves exactly the metrics of lib/metrics.ts, with their kinds and the event_type label', async () => {
    const telemetry = new EtlTelemetry({ now: () => 0, pipelines: () => [['a_type', newMetrics()]] });
    const served = await telemetry.registry.getMetricsAsJSON();
    const byName = new Map(served.map((m) => [m.name, m]));
    expect([...byName.keys()].sort()).toEqual(Object.values(etlMetrics).map((m) => m.name).sort());
    for (const m of Object.values(etlMetrics)) {
      expect(String(byName.get(m.name)?.type), m.name).toBe(m.kind);
      expect(byName.get(m.name)?.help).toBe(m.help);
    }
    // Series read from the pipelines carry the type.
    expect(byName.get(etlMetrics.eventsPulled.name)?.values[0]?.labels).toEqual({ [EVENT_TYPE_LABEL]: 'a_type' });
  });

  it.each(priorities)('%s: every composer alert on an ETL Prometheus metric names one of lib/metrics.ts, and the export renders it under that name', (priority) => {
    const record = { ...eventTypeRecord('a_type', undefined, { priority }) };
    const definition = monitoringFor(record.settings);
    const exported = toTerraformEventType(record).alerts;
    const prometheus = new Map(Object.values(etlMetrics).map((m) => [prometheusMetricType(m), m]));
    const onEtl = definition.alerts.filter((a) => a.metric.startsWith('prometheus.googleapis.com/'));
    expect(onEtl.map((a) => a.kind)).toContain('partition_close_lag');
    for (const a of onEtl) {
      const metric = prometheus.get(a.metric);
      expect(metric, a.metric).toBeDefined();
      expect(exported[a.kind]).toMatchObject({ metric: a.metric, promql_metric: metric!.name, threshold: a.threshold, duration_seconds: a.durationSeconds });
      expect(promqlMetricName(a.metric)).toBe(metric!.name);
    }
    const lag = exported.partition_close_lag!;
    expect(lag.threshold).toBe(closeLagThresholdSeconds(sloHoursByPriority[priority] * 3600));
  });

  it('the event-type module selects an ETL gauge by its Prometheus name and the event_type label', () => {
    const queries = String(configs.eventType.locals.alert_queries);
    expect(queries).toContain('startswith(a.metric, "prometheus.googleapis.com/")');
    expect(queries).toContain(`max(\${a.promql_metric}{${EVENT_TYPE_LABEL}=\\"\${a.resource}\\"}) > \${a.threshold}`);
  });

  it('the worker group serves the metrics on the port and path the PodMonitoring scrapes, both lib/metrics.ts', () => {
    const wg = configs.workerGroup;
    expect(wg.locals.metrics_port).toBe(ETL_METRICS_PORT);
    expect(wg.locals.metrics_path).toBe(METRICS_PATH);
    const deployment = wg.resource.kubernetes_deployment_v1!.worker!;
    const container = ((((deployment.spec as Block[])[0]!.template as Block[])[0]!.spec as Block[])[0]!.container as Block[])[0]!;
    const env = (container.env as Block[]).find((e) => e.name === 'ETL_METRICS_PORT');
    expect(env?.value).toBe('${tostring(local.metrics_port)}');
    expect((container.port as Block[])[0]).toMatchObject({ name: 'metrics', container_port: '${local.metrics_port}' });
    const monitoring = wg.resource.kubernetes_manifest!.worker_metrics!.manifest as Block;
    expect(monitoring).toMatchObject({ apiVersion: 'monitoring.googleapis.com/v1', kind: 'PodMonitoring' });
    expect((monitoring.spec as Block).endpoints).toEqual([{ port: 'metrics', path: '${local.metrics_path}', interval: '60s' }]);
  });
});
