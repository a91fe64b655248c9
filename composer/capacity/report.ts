/** The capacity plan as the text the CLI prints. */
import path from 'node:path';
import type { Assumptions } from './assumptions.ts';
import type { Measurements } from './measurements.ts';
import type { CapacityPlan, TypePlan } from './model.ts';
import type { PriceList } from './prices.ts';

const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');
const n1 = (x: number): string => x.toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const n2 = (x: number): string => x.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 });

/** Types whose plans are the same but for the name print as one row. */
function groups(types: readonly TypePlan[]): { names: string[]; plan: TypePlan }[] {
  const out = new Map<string, { names: string[]; plan: TypePlan }>();
  for (const t of types) {
    const { name: _name, ...rest } = t;
    const key = JSON.stringify(rest);
    const g = out.get(key);
    if (g === undefined) out.set(key, { names: [t.name], plan: t });
    else g.names.push(t.name);
  }
  return [...out.values()];
}

export function formatPlan(plan: CapacityPlan, m: Measurements, a: Assumptions, prices: PriceList): string[] {
  const lines: string[] = [];
  lines.push(`capacity for ${n0(plan.totalEventsPerSecond)} events/s over ${plan.types.length} type(s)`);
  lines.push(
    `measured: ingest ${n1(m.ingestCpuUsPerEvent)} CPU µs/event, ETL drain ${n1(m.etlCpuUsPerEvent)} CPU µs/event, ` +
      `close ${n1(m.closeCpuUsPerRecord)} CPU µs/record (hour of ${n0(m.closeLargestHour)}), close peak heap ${n0(m.closePeakHeapMb)} MiB, ${n0(m.eventBytes)} B/event`,
  );
  for (const s of m.sources) {
    lines.push(`  ${path.relative(process.cwd(), s.file)}: ${s.measuredAt}, ${s.machine.cpus} × ${s.machine.cpuModel}, ${s.machine.memoryGiB} GiB, node ${s.machine.node}, load ${s.load.before.join('/')}`);
  }
  lines.push(`prices: ${prices.currency} list prices recorded ${prices.recordedOn} (composer/capacity/prices.json; update before relying on costs)`);
  lines.push(
    `assumptions: ${a.targetCpuUtilisation * 100}% CPU target, workers of ${a.etlWorkerVcpu} vCPU/${a.etlWorkerMemoryGiB} GiB, ` +
      `event service instances of ${a.eventServiceVcpu} vCPU, close budget ${a.closeBudgetSeconds} s per shard, catch-up ×${a.catchUpFactor}`,
  );
  lines.push('');
  lines.push('per type:');
  for (const g of groups(plan.types)) {
    const t = g.plan;
    const who = g.names.length === 1 ? t.name : `${g.names.length} types (${g.names[0]} … ${g.names[g.names.length - 1]}), each`;
    lines.push(`  ${who}: ${n0(t.eventsPerSecond)} events/s`);
    lines.push(
      `    ETL ${n2(t.etlVcpu)} vCPU → replicas min ${t.minReplicas} max ${t.maxReplicas}, heap ${t.heapMb} MB; ` +
        `${n0(t.recordsPerPeriod)} records/period, close ${n0(t.closeSecondsOneWorker)} s on one worker → shards ${t.shards}`,
    );
    lines.push(
      `    Pub/Sub ${n1(t.pubsub.publishRequestsPerSecond)} publish requests/s, ${n0(t.pubsub.messagesPerSecond)} messages/s in, ${n0(t.pubsub.deliveredPerSecond)}/s delivered, ${n2(t.pubsub.tibPerMonth)} TiB/month; ` +
        `GCS ${n0(t.gcsPerHour.classA)} class A + ${n0(t.gcsPerHour.classB)} class B ops/hour, ${n0(t.storedGiB)} GiB stored`,
    );
    lines.push(
      `    monthly ${n0(t.monthlyCost.total)} (compute ${n0(t.monthlyCost.compute)}, Pub/Sub ${n0(t.monthlyCost.pubsub)}, GCS ops ${n0(t.monthlyCost.gcsOperations)}, storage ${n0(t.monthlyCost.gcsStorage)})`,
    );
  }
  const e = plan.eventService;
  const tot = plan.totals;
  lines.push('');
  lines.push(`event service: ${n1(e.vcpu)} vCPU → ${e.instances} instance(s); ${n0(e.auditWritesPerHour)} audit writes/hour (class A); monthly ${n0(e.monthlyCost)}`);
  lines.push(
    `total: ETL replicas min ${n0(tot.etlMinReplicas)} max ${n0(tot.etlMaxReplicas)}; ${n0(tot.vcpu)} vCPU at the expected rate → ${n0(tot.eventsPerSecondPerVcpu)} events/s per vCPU across services; ` +
      `Pub/Sub ${n1(tot.pubsubTiBPerMonth)} TiB/month; GCS ${n0(tot.gcsClassAPerHour)} class A + ${n0(tot.gcsClassBPerHour)} class B ops/hour; ${n0(tot.storedGiB)} GiB stored at full retention`,
  );
  const c = tot.monthlyCost;
  lines.push(
    `monthly cost (${prices.currency}, list prices): ${n0(c.total)} = compute ${n0(c.compute)} + Pub/Sub ${n0(c.pubsub)} + GCS operations ${n0(c.gcsOperations)} + GCS storage ${n0(c.gcsStorage)}`,
  );
  return lines;
}
