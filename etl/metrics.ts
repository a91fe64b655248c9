/** Counters of one type's pipeline (exported through `stats()` and logs). */
export interface PipelineMetrics {
  received: number;
  acked: number;
  nacked: number;
  stagedFiles: number;
  stagedRecords: number;
  deadLettered: number;
  lateEvents: number;
  lateDuplicatesDropped: number;
  storageFailures: number;
  transformFailures: number;
  partitionsClosed: number;
  closeFailures: number;
}

export function newMetrics(): PipelineMetrics {
  return {
    received: 0,
    acked: 0,
    nacked: 0,
    stagedFiles: 0,
    stagedRecords: 0,
    deadLettered: 0,
    lateEvents: 0,
    lateDuplicatesDropped: 0,
    storageFailures: 0,
    transformFailures: 0,
    partitionsClosed: 0,
    closeFailures: 0,
  };
}
