/** The REST API's routes: `/bigquery/v2/projects/{p}/…` (the prefix is optional, as BIGQUERY_EMULATOR_HOST clients omit it). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JSON_TYPE, readJson, sendEmpty, sendJson } from '../gcs/http-util.ts';
import { Catalog, partitionsOf } from './catalog.ts';
import { errors } from './errors.ts';
import type { JobRunner } from './jobs.ts';
import type { JobRecord } from './model.ts';
import { parseQuery } from './query.ts';
import { datasetResource, jobResource, tableResource } from './resources.ts';
import { selectFields, timestampFormatOf, toJsonRow, type TimestampFormat } from './rows.ts';
import type { TableField } from './schema.ts';
import type { Row } from './values.ts';

export interface ApiContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  segments: string[];
  query: URLSearchParams;
  baseUrl: string;
  catalog: Catalog;
  jobs: JobRunner;
}

/** Most rows, and about the most JSON, one page of tabledata.list or getQueryResults carries. */
const MAX_PAGE_ROWS = 100_000;
const MAX_PAGE_BYTES = 10 * 1024 * 1024;
const MAX_LIST_ITEMS = 1_000;

/** Splits a path into decoded segments after `/bigquery/v2` (if present). */
export function parsePath(rawPath: string): string[] {
  let rest = rawPath;
  if (rest.startsWith('/upload/')) throw errors.invalid('Media uploads (table.load of a local file, createWriteStream) are not supported by the emulator; load from gs:// URIs.');
  if (rest.startsWith('/bigquery/v2/')) rest = rest.slice('/bigquery/v2'.length);
  const segments = rest.split('/').filter((s) => s !== '');
  return segments.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw errors.invalid('Invalid percent-encoding in the path.');
    }
  });
}

export async function route(ctx: ApiContext): Promise<void> {
  const s = ctx.segments;
  const m = ctx.method;
  const notFound = (): never => {
    throw errors.notFound(`${m} ${ctx.req.url?.split('?')[0] ?? ''}`);
  };
  if (s[0] !== 'projects' || s.length < 3) return notFound();
  const p = s[1]!;
  const body = async (): Promise<Record<string, unknown>> => readJson(ctx.req);
  switch (s[2]) {
    case 'datasets': {
      if (s.length === 3) {
        if (m === 'GET') return listDatasets(ctx, p);
        if (m === 'POST') return sendJson(ctx.res, 200, datasetResource(ctx.catalog.insertDataset(p, await body()), ctx.baseUrl));
        return notFound();
      }
      const d = s[3]!;
      if (s.length === 4) {
        if (m === 'GET') return sendJson(ctx.res, 200, datasetResource(ctx.catalog.getDataset(p, d), ctx.baseUrl));
        if (m === 'PATCH' || m === 'PUT') return sendJson(ctx.res, 200, datasetResource(ctx.catalog.patchDataset(p, d, await body()), ctx.baseUrl));
        if (m === 'DELETE') {
          ctx.catalog.deleteDataset(p, d, ctx.query.get('deleteContents') === 'true');
          return sendEmpty(ctx.res, 204);
        }
        return notFound();
      }
      if (s[4] !== 'tables') return notFound();
      if (s.length === 5) {
        if (m === 'GET') return listTables(ctx, p, d);
        if (m === 'POST') return sendJson(ctx.res, 200, tableResource(ctx.catalog.insertTable(p, d, await body()), ctx.baseUrl));
        return notFound();
      }
      const t = s[5]!;
      if (s.length === 6) {
        if (m === 'GET') {
          const { table, partition } = ctx.catalog.getTable(p, d, t);
          return sendJson(ctx.res, 200, tableResource(table, ctx.baseUrl, partition));
        }
        if (m === 'PATCH' || m === 'PUT') return sendJson(ctx.res, 200, tableResource(ctx.catalog.patchTable(p, d, t, await body(), m === 'PUT'), ctx.baseUrl));
        if (m === 'DELETE') {
          ctx.catalog.deleteTable(p, d, t);
          return sendEmpty(ctx.res, 204);
        }
        return notFound();
      }
      if (s.length === 7 && s[6] === 'data' && m === 'GET') return listTableData(ctx, p, d, t);
      if (s.length === 7 && s[6] === 'insertAll') throw errors.invalid('Streaming inserts (tabledata.insertAll) are not supported by the emulator; use a load job.');
      return notFound();
    }
    case 'jobs': {
      if (s.length === 3) {
        if (m === 'POST') return sendJson(ctx.res, 200, jobResource(ctx.jobs.insert(p, await body()), ctx.baseUrl));
        if (m === 'GET') return listJobs(ctx, p);
        return notFound();
      }
      const j = s[3]!;
      if (s.length === 4 && m === 'GET') return sendJson(ctx.res, 200, jobResource(ctx.jobs.get(p, j), ctx.baseUrl));
      if (s.length === 5 && s[4] === 'cancel' && m === 'POST') {
        return sendJson(ctx.res, 200, { kind: 'bigquery#jobCancelResponse', job: jobResource(ctx.jobs.cancel(p, j), ctx.baseUrl) });
      }
      return notFound();
    }
    case 'queries': {
      if (s.length === 3 && m === 'POST') return jobsQuery(ctx, p, await body());
      if (s.length === 4 && m === 'GET') return queryResults(ctx, ctx.jobs.get(p, s[3]!));
      return notFound();
    }
    default:
      return notFound();
  }
}

/** Page tokens are row offsets, opaque to clients. */
function pageStart(query: URLSearchParams): number {
  const token = query.get('pageToken');
  const index = query.get('startIndex');
  if (token !== null && token !== '') {
    const n = Number(Buffer.from(token, 'base64url').toString('utf8'));
    if (!Number.isSafeInteger(n) || n < 0) throw errors.invalid('Invalid page token.');
    return n;
  }
  if (index !== null && index !== '') {
    if (!/^\d{1,15}$/.test(index)) throw errors.invalid(`Invalid startIndex ${index}.`);
    return Number(index);
  }
  return 0;
}

function pageSize(query: URLSearchParams, max: number): number {
  const v = query.get('maxResults');
  if (v === null || v === '') return max;
  if (!/^\d{1,10}$/.test(v)) throw errors.invalid(`Invalid maxResults ${v}.`);
  return Math.min(Math.max(Number(v), 0), max);
}

const token = (n: number): string => Buffer.from(String(n)).toString('base64url');

function listDatasets(ctx: ApiContext, p: string): void {
  const all = ctx.catalog.listDatasets(p);
  const start = pageStart(ctx.query);
  const size = pageSize(ctx.query, MAX_LIST_ITEMS);
  const page = all.slice(start, start + size);
  sendJson(ctx.res, 200, {
    kind: 'bigquery#datasetList',
    etag: token(all.length),
    ...(page.length === 0 ? {} : { datasets: page.map((ds) => ({ kind: 'bigquery#dataset', id: `${ds.projectId}:${ds.datasetId}`, datasetReference: { projectId: ds.projectId, datasetId: ds.datasetId }, location: ds.location })) }),
    ...(start + size < all.length ? { nextPageToken: token(start + size) } : {}),
  });
}

function listTables(ctx: ApiContext, p: string, d: string): void {
  const all = ctx.catalog.listTables(p, d);
  const start = pageStart(ctx.query);
  const size = pageSize(ctx.query, MAX_LIST_ITEMS);
  const page = all.slice(start, start + size);
  sendJson(ctx.res, 200, {
    kind: 'bigquery#tableList',
    etag: token(all.length),
    totalItems: all.length,
    ...(page.length === 0
      ? {}
      : {
          tables: page.map((t) => ({
            kind: 'bigquery#table',
            id: `${t.meta.projectId}:${t.meta.datasetId}.${t.meta.tableId}`,
            tableReference: { projectId: t.meta.projectId, datasetId: t.meta.datasetId, tableId: t.meta.tableId },
            type: 'TABLE',
            creationTime: t.meta.creationTime,
            ...(t.meta.timePartitioning === undefined ? {} : { timePartitioning: t.meta.timePartitioning }),
            ...(t.meta.clustering === undefined ? {} : { clustering: t.meta.clustering }),
          })),
        }),
    ...(start + size < all.length ? { nextPageToken: token(start + size) } : {}),
  });
}

function listJobs(ctx: ApiContext, p: string): void {
  const all = ctx.jobs.list(p);
  const start = pageStart(ctx.query);
  const size = pageSize(ctx.query, MAX_LIST_ITEMS);
  const page = all.slice(start, start + size);
  sendJson(ctx.res, 200, {
    kind: 'bigquery#jobList',
    etag: token(all.length),
    jobs: page.map((j) => {
      const r = jobResource(j, ctx.baseUrl);
      return { kind: r.kind, id: r.id, jobReference: r.jobReference, state: j.state, configuration: r.configuration, status: r.status, statistics: r.statistics, user_email: r.user_email };
    }),
    ...(start + size < all.length ? { nextPageToken: token(start + size) } : {}),
  });
}

/**
 * One page of rows under `fields`: up to maxResults rows and about
 * MAX_PAGE_BYTES of JSON (at least one row), as BigQuery caps its pages;
 * `rows` is already serialized.
 */
function rowsPage(ctx: ApiContext, rows: readonly Row[], fields: readonly TableField[], fmt: TimestampFormat): { totalRows: string; rows?: RawJson; pageToken?: string } {
  const start = pageStart(ctx.query);
  const size = pageSize(ctx.query, MAX_PAGE_ROWS);
  const last = Math.min(start + size, rows.length);
  const out: string[] = [];
  let bytes = 0;
  let i = start;
  for (; i < last && (out.length === 0 || bytes < MAX_PAGE_BYTES); i++) {
    const json = JSON.stringify(toJsonRow(fields, rows[i]!, fmt));
    bytes += json.length + 1;
    out.push(json);
  }
  return { totalRows: String(rows.length), ...(out.length === 0 ? {} : { rows: new RawJson(`[${out.join(',')}]`) }), ...(i < rows.length ? { pageToken: token(i) } : {}) };
}

/** JSON text spliced into a response as is (rows serialized once, while the page's size is counted). */
class RawJson {
  constructor(readonly text: string) {}
}

/** sendJson for bodies holding RawJson values. */
function sendWithRows(res: ServerResponse, body: Record<string, unknown>): void {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(body)) parts.push(`${JSON.stringify(k)}:${v instanceof RawJson ? v.text : JSON.stringify(v)}`);
  const data = Buffer.from(`{${parts.join(',')}}`);
  res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Content-Length': data.length });
  res.end(data);
}

function listTableData(ctx: ApiContext, p: string, d: string, t: string): void {
  const { table, partition } = ctx.catalog.getTable(p, d, t);
  const fields = selectFields(table.meta.schema, ctx.query.get('selectedFields'));
  const fmt = timestampFormatOf(ctx.query);
  const parts = partitionsOf(table, partition);
  const rows = parts.length === 1 ? parts[0]!.rows : parts.flatMap((x) => x.rows);
  const page = rowsPage(ctx, rows, fields, fmt);
  sendWithRows(ctx.res, { kind: 'bigquery#tableDataList', etag: token(Number(table.meta.lastModifiedTime)), ...page });
}

async function jobsQuery(ctx: ApiContext, p: string, body: Record<string, unknown>): Promise<void> {
  const plan = parseQuery(p, body);
  const job = ctx.jobs.insert(p, {
    jobReference: { location: body.location },
    configuration: { query: { query: body.query, useLegacySql: false, ...(body.queryParameters === undefined ? {} : { queryParameters: body.queryParameters }), ...(body.defaultDataset === undefined ? {} : { defaultDataset: body.defaultDataset }) } },
  }, false);
  await ctx.jobs.runQueryNow(job, plan);
  if (job.errorResult !== undefined) throw errors.invalidQuery(job.errorResult.message);
  const fmt: TimestampFormat = (body.formatOptions as { useInt64Timestamp?: unknown } | undefined)?.useInt64Timestamp === true ? 'INT64' : 'FLOAT64';
  const maxResults = typeof body.maxResults === 'number' ? body.maxResults : undefined;
  if (maxResults !== undefined) ctx.query.set('maxResults', String(maxResults));
  sendWithRows(ctx.res, queryResponse(ctx, job, fmt, 'bigquery#queryResponse'));
}

function queryResults(ctx: ApiContext, job: JobRecord): void {
  if (job.configuration.query === undefined) throw errors.invalid(`Job ${job.jobId} is not a query job.`);
  if (job.state !== 'DONE') {
    sendJson(ctx.res, 200, { kind: 'bigquery#getQueryResultsResponse', jobReference: { projectId: job.projectId, jobId: job.jobId, location: job.location }, jobComplete: false });
    return;
  }
  if (job.errorResult !== undefined) throw errors.invalidQuery(job.errorResult.message);
  if (job.result === undefined) throw errors.notFound(`Results of job ${job.projectId}:${job.location}.${job.jobId} (query results are kept in memory only)`);
  sendWithRows(ctx.res, queryResponse(ctx, job, timestampFormatOf(ctx.query), 'bigquery#getQueryResultsResponse'));
}

function queryResponse(ctx: ApiContext, job: JobRecord, fmt: TimestampFormat, kind: string): Record<string, unknown> {
  const result = job.result!;
  return {
    kind,
    schema: { fields: result.schema },
    jobReference: { projectId: job.projectId, jobId: job.jobId, location: job.location },
    ...rowsPage(ctx, result.rows, result.schema, fmt),
    totalBytesProcessed: '0',
    jobComplete: true,
    cacheHit: false,
  };
}
