/** What the emulator keeps: datasets, tables with their partitions, and jobs. */
import type { BqErrorProto } from './errors.ts';
import type { TimePartitioning } from './partitioning.ts';
import type { TableField } from './schema.ts';
import type { Row } from './values.ts';

export interface DatasetRecord {
  projectId: string;
  datasetId: string;
  location: string;
  creationTime: string;
  lastModifiedTime: string;
  description?: string;
  friendlyName?: string;
  labels?: Record<string, string>;
}

export interface TableMeta {
  projectId: string;
  datasetId: string;
  tableId: string;
  schema: TableField[];
  timePartitioning?: TimePartitioning;
  requirePartitionFilter?: boolean;
  clustering?: { fields: string[] };
  description?: string;
  friendlyName?: string;
  labels?: Record<string, string>;
  /** Milliseconds since the epoch, as a decimal string (BigQuery's form). */
  expirationTime?: string;
  creationTime: string;
  lastModifiedTime: string;
}

export interface Partition {
  id: string;
  rows: Row[];
  /** Logical size of the rows (numBytes). */
  bytes: number;
  lastModifiedTime: number;
}

export interface TableState {
  meta: TableMeta;
  /** Partition id → partition ('' for an unpartitioned table). Replaced whole on each commit. */
  partitions: Map<string, Partition>;
  /** Ids of the jobs whose rows are in this table (so a restart never applies a job twice). */
  committedJobs: string[];
}

export type JobState = 'PENDING' | 'RUNNING' | 'DONE';

export interface JobRecord {
  projectId: string;
  jobId: string;
  location: string;
  /** The configuration as the caller sent it (echoed back by jobs.get). */
  configuration: Record<string, unknown>;
  state: JobState;
  errorResult?: BqErrorProto;
  errors?: BqErrorProto[];
  creationTime: number;
  startTime?: number;
  endTime?: number;
  statistics?: Record<string, unknown>;
  /** Set by jobs.cancel; the run stops before it commits. */
  cancelled?: boolean;
  /** For query jobs: the result, kept in memory only. */
  result?: { schema: TableField[]; rows: Row[] };
}
