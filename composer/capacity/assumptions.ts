/**
 * Every assumption of the capacity model, in one commented place. The
 * measured figures come from the benchmarks (measurements.ts), the prices from
 * prices.json; these are the choices and the platform's own settings the model
 * needs besides. test/composer/capacity.test.ts checks the ones copied from
 * the ETL's and the event service's defaults against those defaults.
 */
export interface Assumptions {
  /** Share of a vCPU a replica is sized to use at the expected rate; the rest absorbs bursts. */
  targetCpuUtilisation: number;
  /** max replicas = min replicas × this: catch up a backlog (an outage of padlock, a deploy) at twice the expected rate. */
  catchUpFactor: number;
  /** vCPU and memory of one ETL worker (terraform/modules/worker-group `worker.cpu` 500m, `memory` 1Gi). */
  etlWorkerVcpu: number;
  etlWorkerMemoryGiB: number;
  /** The worker's smallest heap (terraform/modules/worker-group validation; etl/README.md: 160 MB). */
  etlMinHeapMb: number;
  /** Heap = max(minimum, the close's measured peak heap × this): the close streams, so its peak does not grow with the hour. */
  heapHeadroom: number;
  /** vCPU and memory of one event-service instance (Cloud Run). */
  eventServiceVcpu: number;
  eventServiceMemoryGiB: number;
  /** An hour's close on one shard must take at most this long (well inside the high priority's 3 h SLO). */
  closeBudgetSeconds: number;
  /** Events per publish request (the event service's publisher batches each HTTP batch of ~100). */
  eventsPerPublishRequest: number;
  /** Subscriptions per topic that receive every message (the ETL's). */
  subscriptionsPerTopic: number;
  /** ETL `flushRecords`: a staged file at most every this many records per worker (etl/config.ts). */
  flushRecords: number;
  /** ETL `partMaxRecords`: records per part file (etl/config.ts). */
  partMaxRecords: number;
  /** Event service `auditFlushMs`: each instance writes each type's hourly count this often (functions/event-service/config.ts). */
  auditFlushMs: number;
  /** Stored (deflate Avro) bytes per event / its JSON bytes. */
  storedBytesRatio: number;
  /** Hours in a billing month. */
  hoursPerMonth: number;
}

export const defaultAssumptions: Assumptions = {
  targetCpuUtilisation: 0.6,
  catchUpFactor: 2,
  etlWorkerVcpu: 0.5,
  etlWorkerMemoryGiB: 1,
  etlMinHeapMb: 160,
  heapHeadroom: 1.5,
  eventServiceVcpu: 1,
  eventServiceMemoryGiB: 0.5,
  closeBudgetSeconds: 900,
  eventsPerPublishRequest: 100,
  subscriptionsPerTopic: 1,
  flushRecords: 1500,
  partMaxRecords: 200_000,
  auditFlushMs: 1000,
  storedBytesRatio: 0.5,
  hoursPerMonth: 730,
};
