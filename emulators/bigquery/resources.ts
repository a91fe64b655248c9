/** The JSON resources the API answers with: datasets, tables (whole or one partition) and jobs. */
import { createHash } from 'node:crypto';
import { partitionsOf, tableName } from './catalog.ts';
import type { DatasetRecord, JobRecord, TableState } from './model.ts';

function etag(value: unknown): string {
  return createHash('md5').update(JSON.stringify(value)).digest('base64');
}

export function datasetResource(ds: DatasetRecord, baseUrl: string): Record<string, unknown> {
  const body = {
    kind: 'bigquery#dataset',
    id: `${ds.projectId}:${ds.datasetId}`,
    selfLink: `${baseUrl}/bigquery/v2/projects/${encodeURIComponent(ds.projectId)}/datasets/${encodeURIComponent(ds.datasetId)}`,
    datasetReference: { projectId: ds.projectId, datasetId: ds.datasetId },
    location: ds.location,
    creationTime: ds.creationTime,
    lastModifiedTime: ds.lastModifiedTime,
    ...(ds.description === undefined ? {} : { description: ds.description }),
    ...(ds.friendlyName === undefined ? {} : { friendlyName: ds.friendlyName }),
    ...(ds.labels === undefined ? {} : { labels: ds.labels }),
    type: 'DEFAULT',
  };
  return { ...body, etag: etag(body) };
}

/** A table, or with `partition` one of its partitions (numRows/numBytes of that partition). */
export function tableResource(table: TableState, baseUrl: string, partition?: string): Record<string, unknown> {
  const m = table.meta;
  const parts = partitionsOf(table, partition);
  let rows = 0;
  let bytes = 0;
  let modified = Number(m.lastModifiedTime);
  for (const p of parts) {
    rows += p.rows.length;
    bytes += p.bytes;
    if (partition !== undefined) modified = p.lastModifiedTime;
  }
  const tableId = partition === undefined ? m.tableId : `${m.tableId}$${partition}`;
  const body = {
    kind: 'bigquery#table',
    id: tableName({ ...m, tableId }),
    selfLink: `${baseUrl}/bigquery/v2/projects/${encodeURIComponent(m.projectId)}/datasets/${encodeURIComponent(m.datasetId)}/tables/${encodeURIComponent(tableId)}`,
    tableReference: { projectId: m.projectId, datasetId: m.datasetId, tableId },
    schema: { fields: m.schema },
    ...(m.timePartitioning === undefined ? {} : { timePartitioning: m.timePartitioning }),
    ...(m.requirePartitionFilter === undefined ? {} : { requirePartitionFilter: m.requirePartitionFilter }),
    ...(m.clustering === undefined ? {} : { clustering: m.clustering }),
    ...(m.description === undefined ? {} : { description: m.description }),
    ...(m.friendlyName === undefined ? {} : { friendlyName: m.friendlyName }),
    ...(m.labels === undefined ? {} : { labels: m.labels }),
    ...(m.expirationTime === undefined ? {} : { expirationTime: m.expirationTime }),
    numRows: String(rows),
    numBytes: String(bytes),
    numLongTermBytes: '0',
    creationTime: m.creationTime,
    lastModifiedTime: String(modified),
    type: 'TABLE',
    location: 'US',
  };
  return { ...body, etag: etag(body) };
}

export function jobResource(job: JobRecord, baseUrl: string): Record<string, unknown> {
  const jobType = Object.keys(job.configuration).find((k) => k === 'load' || k === 'query' || k === 'copy' || k === 'extract')?.toUpperCase();
  const status: Record<string, unknown> = { state: job.state };
  if (job.errorResult !== undefined) status.errorResult = job.errorResult;
  if (job.errors !== undefined) status.errors = job.errors;
  return {
    kind: 'bigquery#job',
    etag: etag([job.jobId, job.state, job.endTime ?? 0]),
    id: `${job.projectId}:${job.location}.${job.jobId}`,
    selfLink: `${baseUrl}/bigquery/v2/projects/${encodeURIComponent(job.projectId)}/jobs/${encodeURIComponent(job.jobId)}?location=${job.location}`,
    user_email: 'emulator@localhost',
    jobReference: { projectId: job.projectId, jobId: job.jobId, location: job.location },
    configuration: { ...job.configuration, ...(jobType === undefined ? {} : { jobType }) },
    status,
    statistics: {
      creationTime: String(job.creationTime),
      ...(job.startTime === undefined ? {} : { startTime: String(job.startTime) }),
      ...(job.endTime === undefined ? {} : { endTime: String(job.endTime) }),
      ...(job.statistics ?? {}),
    },
    principal_subject: 'user:emulator@localhost',
    jobCreationReason: { code: 'REQUESTED' },
  };
}
