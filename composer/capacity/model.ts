/**
 * The capacity model: expected events per second per type, the measured CPU
 * cost of each path (measurements.ts) and the assumptions (assumptions.ts) →
 * replicas, shards, Pub/Sub and Cloud Storage operations, and a monthly cost
 * at list prices (prices.json). Pure; docs/capacity.md derives each formula.
 */
import type { Partitioning } from '../../lib/registry/types.ts';
import type { Assumptions } from './assumptions.ts';
import type { Measurements } from './measurements.ts';
import type { PriceList } from './prices.ts';

export interface TypeLoad {
  name: string;
  eventsPerSecond: number;
  partitioning: Partitioning;
  retentionDays: number;
}

export interface TypePlan {
  name: string;
  eventsPerSecond: number;
  /** vCPU the type's workers use at the expected rate (draining + closing). */
  etlVcpu: number;
  minReplicas: number;
  maxReplicas: number;
  heapMb: number;
  /** Records in one period at the expected rate. */
  recordsPerPeriod: number;
  /** Seconds one worker needs to close a period alone. */
  closeSecondsOneWorker: number;
  /** Recommended shards per period: closes within the budget. */
  shards: number;
  pubsub: { publishRequestsPerSecond: number; messagesPerSecond: number; deliveredPerSecond: number; tibPerMonth: number };
  /** Cloud Storage operations per hour by the ETL for this type. */
  gcsPerHour: { classA: number; classB: number };
  storedGiB: number;
  monthlyCost: { compute: number; pubsub: number; gcsOperations: number; gcsStorage: number; total: number };
}

export interface CapacityPlan {
  totalEventsPerSecond: number;
  types: TypePlan[];
  eventService: { vcpu: number; instances: number; auditWritesPerHour: number; monthlyCost: number };
  totals: {
    etlMinReplicas: number;
    etlMaxReplicas: number;
    vcpu: number;
    eventsPerSecondPerVcpu: number;
    pubsubTiBPerMonth: number;
    gcsClassAPerHour: number;
    gcsClassBPerHour: number;
    storedGiB: number;
    monthlyCost: { compute: number; pubsub: number; gcsOperations: number; gcsStorage: number; total: number };
  };
}

const SECONDS_PER_HOUR = 3600;
const TIB = 2 ** 40;
const GIB = 2 ** 30;

const periodSeconds = (p: Partitioning): number => (p === 'hourly' ? SECONDS_PER_HOUR : 24 * SECONDS_PER_HOUR);

/** The plan of one type (its share of the event service apart). */
export function planType(load: TypeLoad, m: Measurements, a: Assumptions, prices: PriceList): TypePlan {
  const eps = load.eventsPerSecond;
  const p = prices.items;
  const secondsPerMonth = a.hoursPerMonth * SECONDS_PER_HOUR;
  // Closing reads every record once per period, so on average it costs eps × CPU per record.
  const etlVcpu = (eps * (m.etlCpuUsPerEvent + m.closeCpuUsPerRecord)) / 1e6;
  const minReplicas = Math.max(1, Math.ceil(etlVcpu / (a.etlWorkerVcpu * a.targetCpuUtilisation)));
  const recordsPerPeriod = eps * periodSeconds(load.partitioning);
  const closeSecondsOneWorker = (recordsPerPeriod * m.closeCpuUsPerRecord) / 1e6 / a.etlWorkerVcpu;
  const shards = Math.max(1, Math.ceil(closeSecondsOneWorker / a.closeBudgetSeconds));
  const maxReplicas = Math.max(Math.ceil(minReplicas * a.catchUpFactor), shards);
  const heapMb = Math.max(a.etlMinHeapMb, Math.ceil((m.closePeakHeapMb * a.heapHeadroom) / 16) * 16);

  const messagesPerSecond = eps;
  const deliveredPerSecond = eps * a.subscriptionsPerTopic;
  const tibPerMonth = ((messagesPerSecond + deliveredPerSecond) * m.eventBytes * secondsPerMonth) / TIB;

  // Per hour: staged files written (≥ one per worker per flush) and read back once by the close,
  // the close's part files, _SUCCESS and their seals (patches), listings (one per closer pass is small).
  const periodsPerHour = SECONDS_PER_HOUR / periodSeconds(load.partitioning);
  const stagedFilesPerHour = Math.max(minReplicas, Math.ceil((eps * SECONDS_PER_HOUR) / a.flushRecords));
  const partsPerHour = Math.ceil(recordsPerPeriod / a.partMaxRecords) * periodsPerHour;
  const sealedPerHour = (partsPerHour + periodsPerHour) * 2; // write, then the retention patch
  const classA = stagedFilesPerHour + sealedPerHour;
  const classB = stagedFilesPerHour;
  const storedGiB = (eps * m.eventBytes * a.storedBytesRatio * 86400 * load.retentionDays) / GIB;

  const compute = minReplicas * (a.etlWorkerVcpu * p.gkeAutopilotVcpuHour.price + a.etlWorkerMemoryGiB * p.gkeAutopilotMemoryGiBHour.price) * a.hoursPerMonth;
  const pubsub = tibPerMonth * p.pubsubThroughputTiB.price;
  const gcsOperations = ((classA / 1e4) * p.gcsClassA10k.price + (classB / 1e4) * p.gcsClassB10k.price) * a.hoursPerMonth;
  const gcsStorage = storedGiB * p.gcsStandardGiBMonth.price;
  return {
    name: load.name,
    eventsPerSecond: eps,
    etlVcpu,
    minReplicas,
    maxReplicas,
    heapMb,
    recordsPerPeriod,
    closeSecondsOneWorker,
    shards,
    pubsub: { publishRequestsPerSecond: eps / a.eventsPerPublishRequest, messagesPerSecond, deliveredPerSecond, tibPerMonth },
    gcsPerHour: { classA, classB },
    storedGiB,
    monthlyCost: { compute, pubsub, gcsOperations, gcsStorage, total: compute + pubsub + gcsOperations + gcsStorage },
  };
}

/** The plan of every type and of the event service they share. */
export function planCapacity(loads: readonly TypeLoad[], m: Measurements, a: Assumptions, prices: PriceList): CapacityPlan {
  const types = loads.map((l) => planType(l, m, a, prices));
  const total = loads.reduce((s, l) => s + l.eventsPerSecond, 0);
  const p = prices.items;
  const ingestVcpu = (total * m.ingestCpuUsPerEvent) / 1e6;
  const instances = Math.max(1, Math.ceil(ingestVcpu / (a.eventServiceVcpu * a.targetCpuUtilisation)));
  // Every instance that accepts a type's events in an hour writes that type's count every flush.
  const typesWithTraffic = loads.filter((l) => l.eventsPerSecond > 0).length;
  const auditWritesPerHour = instances * typesWithTraffic * ((SECONDS_PER_HOUR * 1000) / a.auditFlushMs);
  const eventServiceCompute =
    instances * (a.eventServiceVcpu * p.cloudRunVcpuSecond.price + a.eventServiceMemoryGiB * p.cloudRunMemoryGiBSecond.price) * a.hoursPerMonth * SECONDS_PER_HOUR;
  const auditCost = (auditWritesPerHour / 1e4) * p.gcsClassA10k.price * a.hoursPerMonth;
  const sum = (f: (t: TypePlan) => number): number => types.reduce((s, t) => s + f(t), 0);
  const compute = sum((t) => t.monthlyCost.compute) + eventServiceCompute;
  const pubsub = sum((t) => t.monthlyCost.pubsub);
  const gcsOperations = sum((t) => t.monthlyCost.gcsOperations) + auditCost;
  const gcsStorage = sum((t) => t.monthlyCost.gcsStorage);
  const vcpu = sum((t) => t.minReplicas) * a.etlWorkerVcpu + instances * a.eventServiceVcpu;
  return {
    totalEventsPerSecond: total,
    types,
    eventService: { vcpu: ingestVcpu, instances, auditWritesPerHour, monthlyCost: eventServiceCompute + auditCost },
    totals: {
      etlMinReplicas: sum((t) => t.minReplicas),
      etlMaxReplicas: sum((t) => t.maxReplicas),
      vcpu,
      eventsPerSecondPerVcpu: vcpu === 0 ? 0 : total / vcpu,
      pubsubTiBPerMonth: sum((t) => t.pubsub.tibPerMonth),
      gcsClassAPerHour: sum((t) => t.gcsPerHour.classA) + auditWritesPerHour,
      gcsClassBPerHour: sum((t) => t.gcsPerHour.classB),
      storedGiB: sum((t) => t.storedGiB),
      monthlyCost: { compute, pubsub, gcsOperations, gcsStorage, total: compute + pubsub + gcsOperations + gcsStorage },
    },
  };
}
