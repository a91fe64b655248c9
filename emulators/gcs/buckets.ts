/** Bucket routes of the JSON API: insert, get, list, patch, delete. */
import type { RequestContext } from './context.ts';
import { errors } from './gcs-errors.ts';
import { intParam, readJson, sendEmpty, sendJson } from './http-util.ts';
import { applyMetadataPatch } from './model.ts';
import { preconditionsFrom } from './preconditions.ts';
import { bucketResource } from './resources.ts';

function labelsOf(body: Record<string, unknown>): Record<string, string | null> | undefined {
  const l = body.labels;
  if (typeof l !== 'object' || l === null) return undefined;
  const out: Record<string, string | null> = Object.create(null);
  for (const [k, v] of Object.entries(l as Record<string, unknown>)) out[k] = v === null ? null : String(v);
  return out;
}

export async function createBucket(ctx: RequestContext): Promise<void> {
  const body = await readJson(ctx.body);
  const name = body.name;
  if (typeof name !== 'string' || name === '') throw errors.required('Required parameter: name');
  const labels = applyMetadataPatch(undefined, labelsOf(body));
  const rec = await ctx.store.createBucket(name, {
    ...(typeof body.location === 'string' ? { location: body.location } : {}),
    ...(typeof body.storageClass === 'string' ? { storageClass: body.storageClass } : {}),
    ...(labels === undefined ? {} : { labels }),
    objectRetention: ctx.query.get('enableObjectRetention') === 'true',
  });
  sendJson(ctx.res, 200, bucketResource(rec, ctx.baseUrl));
}

export function getBucket(ctx: RequestContext, name: string): void {
  sendJson(ctx.res, 200, bucketResource(ctx.store.getBucket(name), ctx.baseUrl));
}

export function listBuckets(ctx: RequestContext): void {
  const prefix = ctx.query.get('prefix') ?? '';
  const max = Math.min(intParam(ctx.query, 'maxResults') ?? 1000, 1000);
  const token = ctx.query.get('pageToken');
  const after = token === null || token === '' ? undefined : Buffer.from(token, 'base64url').toString('utf8');
  const all = ctx.store.listBuckets().filter((b) => b.name.startsWith(prefix) && (after === undefined || b.name > after));
  const page = all.slice(0, Math.max(max, 1));
  const body: Record<string, unknown> = { kind: 'storage#buckets' };
  if (page.length > 0) body.items = page.map((b) => bucketResource(b, ctx.baseUrl));
  if (all.length > page.length) body.nextPageToken = Buffer.from(page[page.length - 1]!.name).toString('base64url');
  sendJson(ctx.res, 200, body);
}

export async function patchBucket(ctx: RequestContext, name: string): Promise<void> {
  const body = await readJson(ctx.body);
  const rec = await ctx.store.patchBucket(name, labelsOf(body), preconditionsFrom(ctx.query));
  sendJson(ctx.res, 200, bucketResource(rec, ctx.baseUrl));
}

export async function deleteBucket(ctx: RequestContext, name: string): Promise<void> {
  await ctx.store.deleteBucket(name);
  sendEmpty(ctx.res, 204);
}
