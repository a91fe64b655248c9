/**
 * The capacity command against figures computed by hand for a small case
 * (fixed benchmark results and round prices in a temporary folder), its
 * inputs from specs, its errors; and the 8M events/s over 500 types case from
 * the committed benchmark results, printed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultAssumptions } from './assumptions.ts';
import { runCapacityCommand } from './command.ts';
import { loadMeasurements } from './measurements.ts';
import type { CapacityPlan } from './model.ts';

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function run(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCapacityCommand(argv, { out: (l) => void out.push(l), err: (l) => void err.push(l) });
  return { code, out, err };
}

const figure = (value: number, unit: string): { value: number; unit: string; what: string } => ({ value, unit, what: 'test figure' });
const result = (name: string, figures: Record<string, ReturnType<typeof figure>>): string =>
  JSON.stringify({
    name,
    measuredAt: '2026-11-30T12:00:00.000Z',
    machine: { cpuModel: 'test cpu', cpus: 2, memoryGiB: 8, node: 'v20', platform: 'linux-x64' },
    load: { before: [0.1, 0.1, 0.1], after: [0.2, 0.2, 0.2], freeMemoryGiB: 4 },
    settings: {},
    figures,
  });

const roundPrices = {
  about: 'round test prices',
  recordedOn: '2026-11-30',
  currency: 'USD',
  items: {
    gkeAutopilotVcpuHour: { price: 0.04, unit: 'vCPU-hour', what: 'x' },
    gkeAutopilotMemoryGiBHour: { price: 0.004, unit: 'GiB-hour', what: 'x' },
    cloudRunVcpuSecond: { price: 0.00001, unit: 'vCPU-second', what: 'x' },
    cloudRunMemoryGiBSecond: { price: 0.000001, unit: 'GiB-second', what: 'x' },
    pubsubThroughputTiB: { price: 40, unit: 'TiB', what: 'x' },
    gcsClassA10k: { price: 0.05, unit: '10,000 operations', what: 'x' },
    gcsClassB10k: { price: 0.004, unit: '10,000 operations', what: 'x' },
    gcsStandardGiBMonth: { price: 0.02, unit: 'GiB-month', what: 'x' },
  },
};

describe('capacity command', () => {
  let dir: string;
  let results: string;
  let prices: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'capacity-'));
    results = path.join(dir, 'results');
    prices = path.join(dir, 'prices.json');
    // Written as `npm run bench` writes them.
    mkdirSync(results);
    writeFileSync(path.join(results, 'event-service.json'), result('event-service', { ingestCpuUsPerEvent: figure(20, 'CPU µs/event'), ingestEventBytes: figure(500, 'bytes/event') }));
    writeFileSync(path.join(results, 'etl.json'), result('etl', { etlCpuUsPerEvent: figure(50, 'CPU µs/event') }));
    writeFileSync(
      path.join(results, 'etl-close.json'),
      result('etl-close', {
        closeCpuUsPerRecord_200000: figure(12, 'CPU µs/record'),
        closePeakHeapMb_200000: figure(90, 'MiB'),
        closeCpuUsPerRecord_1000000: figure(10, 'CPU µs/record'),
        closePeakHeapMb_1000000: figure(120, 'MiB'),
      }),
    );
    writeFileSync(prices, JSON.stringify(roundPrices));
    writeFileSync(
      path.join(dir, 'sized.yaml'),
      'name: sized_type\nowner: team-a\npartitioning: daily\nretentionDays: 10\nexpectedEventsPerSecond: 100\nschema: { type: record, name: A, fields: [ { name: a, type: string } ] }\n',
    );
    writeFileSync(path.join(dir, 'unsized.yaml'), 'name: unsized_type\nowner: team-a\nschema: { type: record, name: B, fields: [ { name: b, type: string } ] }\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('two hourly types sharing 3,000 events/s: every figure as computed by hand (docs/capacity.md)', async () => {
    const r = await run('--events-per-second', '3000', '--types', '2', '--retention-days', '30', '--results-dir', results, '--prices', prices, '--json');
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    const { plan } = JSON.parse(r.out.join('\n')) as { plan: CapacityPlan };
    expect(plan.types.map((t) => t.name)).toEqual(['type_1', 'type_2']);
    const t = plan.types[0]!;
    // 1,500 events/s × (50 + 10) µs = 0.09 vCPU; 0.5-vCPU workers at 60 % → ⌈0.09 / 0.3⌉ = 1, ×2 to catch up.
    expect(t.eventsPerSecond).toBe(1500);
    expect(t.etlVcpu).toBeCloseTo(0.09, 10);
    expect([t.minReplicas, t.maxReplicas]).toEqual([1, 2]);
    // The largest hour's close figures: 10 µs/record; heap ⌈120 × 1.5 / 16⌉ × 16 = 192 MB.
    expect(t.heapMb).toBe(192);
    // 1,500 × 3,600 = 5,400,000 records; × 10 µs / 0.5 vCPU = 108 s → 1 shard within 900 s.
    expect(t.recordsPerPeriod).toBe(5_400_000);
    expect(t.closeSecondsOneWorker).toBeCloseTo(108, 9);
    expect(t.shards).toBe(1);
    // Pub/Sub: 15 publish requests/s; (1,500 in + 1,500 delivered) × 500 B × 730 h × 3,600 s = 3.942e12 B / 2^40 = 3.58523 TiB.
    expect(t.pubsub.publishRequestsPerSecond).toBe(15);
    expect(t.pubsub.tibPerMonth).toBeCloseTo(3.585_23, 5);
    // GCS per hour: 3,600 staged files (1,500 records each) written and read; 27 parts + _SUCCESS, written and sealed: 56.
    expect(t.gcsPerHour).toEqual({ classA: 3656, classB: 3600 });
    // 1,500 × 500 B × 0.5 × 86,400 × 30 days = 9.72e11 B / 2^30 = 905.2455 GiB.
    expect(t.storedGiB).toBeCloseTo(905.245_5, 3);
    // Monthly: compute 1 × (0.5 × 0.04 + 1 × 0.004) × 730 = 17.52; Pub/Sub 3.58523 × 40 = 143.41;
    // GCS ops (0.3656 × 0.05 + 0.36 × 0.004) × 730 = 14.3956; storage 905.2455 × 0.02 = 18.1049.
    expect(t.monthlyCost.compute).toBeCloseTo(17.52, 6);
    expect(t.monthlyCost.pubsub).toBeCloseTo(143.41, 2);
    expect(t.monthlyCost.gcsOperations).toBeCloseTo(14.3956, 6);
    expect(t.monthlyCost.gcsStorage).toBeCloseTo(18.1049, 3);
    // Event service: 3,000 × 20 µs = 0.06 vCPU → 1 instance; 1 × 2 types × 3,600 audit writes/hour.
    expect(plan.eventService.instances).toBe(1);
    expect(plan.eventService.auditWritesPerHour).toBe(7200);
    // 1 × (1 × 0.00001 + 0.5 × 0.000001) × 730 × 3,600 = 27.594; audit 0.72 × 0.05 × 730 = 26.28.
    expect(plan.eventService.monthlyCost).toBeCloseTo(27.594 + 26.28, 6);
    // 2 workers × 0.5 + 1 instance × 1 = 2 vCPU for 3,000 events/s.
    expect(plan.totals.vcpu).toBe(2);
    expect(plan.totals.eventsPerSecondPerVcpu).toBe(1500);
    expect(plan.totals.monthlyCost.total).toBeCloseTo(2 * (17.52 + 143.4091 + 14.3956 + 18.1049) + 27.594 + 26.28, 1);
  });

  it('specs: each at its expectedEventsPerSecond, --events-per-second split over those without one; daily periods', async () => {
    const r = await run(path.join(dir, 'sized.yaml'), path.join(dir, 'unsized.yaml'), '--events-per-second', '200', '--results-dir', results, '--prices', prices, '--json');
    expect(r.code).toBe(0);
    const { plan } = JSON.parse(r.out.join('\n')) as { plan: CapacityPlan };
    expect(plan.types.map((t) => [t.name, t.eventsPerSecond, t.recordsPerPeriod])).toEqual([
      ['sized_type', 100, 8_640_000],
      ['unsized_type', 200, 720_000],
    ]);
  });

  it('refuses what it cannot plan, naming it: no volume, a bad number, unknown option, missing results', async () => {
    const noVolume = await run(path.join(dir, 'unsized.yaml'), '--results-dir', results, '--prices', prices);
    expect(noVolume.code).toBe(2);
    expect(noVolume.err.join('\n')).toContain('no expectedEventsPerSecond in unsized_type');
    const bad = await run('--events-per-second', 'lots');
    expect(bad.code).toBe(2);
    expect(bad.err.join('\n')).toContain('error: --events-per-second must be a number ≥ 0, not "lots"');
    const unknown = await run('--events-per-sec', '5');
    expect(unknown.code).toBe(2);
    expect(unknown.err.join('\n')).toContain("Unknown option '--events-per-sec'");
    const missing = await run('--events-per-second', '5', '--results-dir', path.join(dir, 'nowhere'), '--prices', prices);
    expect(missing.code).toBe(2);
    expect(missing.err.join('\n')).toContain(`no benchmark result ${path.join(dir, 'nowhere', 'event-service.json')} (run \`npm run bench event-service\`)`);
    writeFileSync(path.join(dir, 'bad.yaml'), 'name: bad_type\nowner: team-a\nexpectedEventsPerSecond: -5\nschema: { type: record, name: C, fields: [ { name: c, type: string } ] }\n');
    const invalid = await run(path.join(dir, 'bad.yaml'), '--results-dir', results, '--prices', prices);
    expect(invalid.code).toBe(1);
    expect(invalid.err.join('\n')).toContain('expectedEventsPerSecond must be a number from 0 to 100000000, not -5');
    const help = await run('--help');
    expect([help.code, help.out.join('\n').split('\n')[0]]).toEqual([0, 'usage: npm run composer -- capacity [spec-file|dir…] [options]']);
  });

  it('8,000,000 events/s over 500 hourly types, from the committed benchmark results (printed)', async () => {
    const r = await run('--events-per-second', '8000000', '--types', '500');
    expect(r.code).toBe(0);
    process.stdout.write(`\n${r.out.join('\n')}\n`);
    const json = await run('--events-per-second', '8000000', '--types', '500', '--json');
    const { plan } = JSON.parse(json.out.join('\n')) as { plan: CapacityPlan };
    const m = loadMeasurements();
    const a = defaultAssumptions;
    const perType = Math.ceil((16_000 * (m.etlCpuUsPerEvent + m.closeCpuUsPerRecord)) / 1e6 / (a.etlWorkerVcpu * a.targetCpuUtilisation));
    expect(plan.types).toHaveLength(500);
    expect(new Set(plan.types.map((t) => t.eventsPerSecond))).toEqual(new Set([16_000]));
    expect(plan.totals.etlMinReplicas).toBe(500 * perType);
    expect(plan.eventService.instances).toBe(Math.ceil((8_000_000 * m.ingestCpuUsPerEvent) / 1e6 / (a.eventServiceVcpu * a.targetCpuUtilisation)));
    expect(r.out).toContain('  500 types (type_001 … type_500), each: 16,000 events/s');
  });
});
