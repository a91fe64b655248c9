/**
 * The capacity model's ties to the rest of the platform: the settings it
 * copies (assumptions.ts) equal the ETL's, the event service's and the
 * worker-group module's defaults; the Terraform export's worker_sizing.json
 * sizes the types that state an expected volume; the workloads stage merges it
 * under ops' overrides.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultAssumptions } from '../../composer/capacity/assumptions.ts';
import { loadMeasurements } from '../../composer/capacity/measurements.ts';
import { planType } from '../../composer/capacity/model.ts';
import { loadPrices } from '../../composer/capacity/prices.ts';
import { WORKER_SIZING_FILE, workerSizingFile } from '../../composer/capacity/sizing.ts';
import { defaultTuning } from '../../etl/config.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { eventTypeRecord } from '../support/etl.ts';
import { loadAll, type HclConfig, type ModuleKey } from '../support/terraform-hcl.ts';

describe('capacity model ↔ platform', () => {
  let configs: Record<ModuleKey, HclConfig>;
  // Parsing every module's HCL takes seconds on a loaded machine: once, with room.
  beforeAll(async () => {
    configs = await loadAll();
  }, 60_000);

  it('copies the ETL, event service and worker-group defaults it depends on', () => {
    expect(defaultAssumptions.flushRecords).toBe(defaultTuning.flushRecords);
    expect(defaultAssumptions.partMaxRecords).toBe(defaultTuning.partMaxRecords);
    expect(defaultAssumptions.auditFlushMs).toBe(withDefaults({ projectId: 'p' }).auditFlushMs);
    const workerType = String(configs.workerGroup.variable.event_type!.type);
    expect(workerType).toContain(`cpu                            = optional(string, "${defaultAssumptions.etlWorkerVcpu * 1000}m")`);
    expect(workerType).toContain(`memory                         = optional(string, "${defaultAssumptions.etlWorkerMemoryGiB}Gi")`);
    expect(workerType).toContain(`heap_mb                        = optional(number, ${defaultAssumptions.etlMinHeapMb})`);
  });

  it('the export sizes each type with an expected volume from the model, and leaves the others to the module', () => {
    const big = eventTypeRecord('big_type');
    big.settings.expectedEventsPerSecond = 200_000;
    const small = eventTypeRecord('small_type');
    small.settings.expectedEventsPerSecond = 10;
    const unsized = eventTypeRecord('unsized_type');
    const file = workerSizingFile([unsized, small, big]);
    expect(file.path).toBe(WORKER_SIZING_FILE);
    const sizing = (JSON.parse(file.content) as { worker_sizing: Record<string, { min_replicas: number; max_replicas: number; heap_mb: number; recommended_shards: number }> }).worker_sizing;
    expect(Object.keys(sizing)).toEqual(['big_type', 'small_type']);
    const m = loadMeasurements();
    const prices = loadPrices();
    for (const r of [big, small]) {
      const plan = planType({ name: r.settings.name, eventsPerSecond: r.settings.expectedEventsPerSecond!, partitioning: 'hourly', retentionDays: 30 }, m, defaultAssumptions, prices);
      expect(sizing[r.settings.name]).toEqual({ min_replicas: plan.minReplicas, max_replicas: plan.maxReplicas, heap_mb: plan.heapMb, recommended_shards: plan.shards });
    }
    expect(sizing.small_type!.min_replicas).toBe(1);
    expect(sizing.big_type!.min_replicas).toBeGreaterThan(sizing.small_type!.min_replicas);
    expect(sizing.big_type!.max_replicas).toBeGreaterThanOrEqual(sizing.big_type!.recommended_shards);
  });

  it('the workloads stage merges the sizing under ops’ worker_overrides', () => {
    expect(String(configs.exampleWorkloads.locals.worker_sizing)).toContain('worker_sizing.json');
    const eventType = String(configs.exampleWorkloads.module.worker_group!.event_type);
    expect(eventType.indexOf('local.worker_sizing')).toBeGreaterThan(-1);
    expect(eventType.indexOf('local.worker_sizing')).toBeLessThan(eventType.indexOf('var.worker_overrides'));
  });
});
