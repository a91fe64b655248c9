/** Object routes of the JSON API: get, download, list, patch/update, delete, compose, rewrite/copy. */
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from './context.ts';
import { DraftWriter } from './draft-writer.ts';
import { errors, gcsError } from './gcs-errors.ts';
import { generationParam, intParam, parseRange, readJson, sendEmpty, sendJson } from './http-util.ts';
import { applyMetadataPatch, pickWritable, writableFieldNames, type ObjectRecord, type WritableObjectFields } from './model.ts';
import { checkPreconditions, preconditionsFrom, preconditionsFromJson } from './preconditions.ts';
import { pickProtection } from './protection.ts';
import { etagOf, objectResource } from './resources.ts';

/** GCS's limit on compose sources. */
export const MAX_COMPOSE_SOURCES = 32;

export function getObjectMetadata(ctx: RequestContext, bucket: string, name: string): void {
  const rec = ctx.store.getObject(bucket, name, generationParam(ctx.query));
  const failure = checkPreconditions(preconditionsFrom(ctx.query), rec);
  if (failure !== undefined) throw failure;
  sendJson(ctx.res, 200, objectResource(rec, ctx.baseUrl));
}

export async function downloadObject(ctx: RequestContext, bucket: string, name: string): Promise<void> {
  const pre = preconditionsFrom(ctx.query);
  let partial = false;
  const opened = await ctx.store.openObject(bucket, name, generationParam(ctx.query), (rec) => {
    const failure = checkPreconditions(pre, rec);
    if (failure !== undefined) throw failure;
    const range = parseRange(ctx.req.headers.range, rec.size);
    if (range === 'unsatisfiable') {
      throw gcsError('RANGE_NOT_SATISFIABLE', 'The requested range cannot be satisfied.', 'requestedRangeNotSatisfiable');
    }
    partial = range !== undefined;
    return range ?? { start: 0, end: rec.size - 1 };
  });
  const { record: rec, start, end, stream } = opened;
  const headers: Record<string, string | number> = {
    'Content-Type': rec.contentType ?? 'application/octet-stream',
    'Content-Length': Math.max(end - start + 1, 0),
    'Accept-Ranges': 'bytes',
    'X-Goog-Hash': `crc32c=${rec.crc32c},md5=${rec.md5Hash}`,
    'X-Goog-Generation': rec.generation,
    'X-Goog-Metageneration': String(rec.metageneration),
    'X-Goog-Stored-Content-Length': String(rec.size),
    'X-Goog-Stored-Content-Encoding': rec.contentEncoding ?? 'identity',
    'X-Goog-Storage-Class': 'STANDARD',
    ETag: etagOf(rec),
    'Last-Modified': new Date(rec.updated).toUTCString(),
  };
  if (partial) headers['Content-Range'] = `bytes ${start}-${end}/${rec.size}`;
  if (rec.contentEncoding !== undefined) headers['Content-Encoding'] = rec.contentEncoding;
  if (rec.contentDisposition !== undefined) headers['Content-Disposition'] = rec.contentDisposition;
  if (rec.contentLanguage !== undefined) headers['Content-Language'] = rec.contentLanguage;
  if (rec.cacheControl !== undefined) headers['Cache-Control'] = rec.cacheControl;
  ctx.res.writeHead(partial ? 206 : 200, headers);
  try {
    await pipeline(stream, ctx.res);
  } catch {
    // The client went away (or a fault cut the connection); the stream is cleaned up by pipeline.
  }
}

export function listObjects(ctx: RequestContext, bucket: string): void {
  const q = ctx.query;
  const opt = (k: string): string | undefined => q.get(k) ?? undefined;
  const max = intParam(q, 'maxResults');
  const result = ctx.store.listObjects(bucket, {
    prefix: opt('prefix'),
    delimiter: opt('delimiter'),
    startOffset: opt('startOffset'),
    endOffset: opt('endOffset'),
    pageToken: opt('pageToken'),
    includeTrailingDelimiter: q.get('includeTrailingDelimiter') === 'true',
    ...(max === undefined ? {} : { maxResults: max }),
  });
  const body: Record<string, unknown> = { kind: 'storage#objects' };
  if (result.prefixes.length > 0) body.prefixes = result.prefixes;
  if (result.items.length > 0) body.items = result.items.map((o) => objectResource(o, ctx.baseUrl));
  if (result.nextPageToken !== undefined) body.nextPageToken = result.nextPageToken;
  sendJson(ctx.res, 200, body);
}

export async function updateObject(ctx: RequestContext, bucket: string, name: string, replace: boolean): Promise<void> {
  const body = await readJson(ctx.body);
  const patch = { ...pickWritable(body), protection: pickProtection(body) };
  const override = ctx.query.get('overrideUnlockedRetention') === 'true';
  const rec = await ctx.store.updateObject(bucket, name, generationParam(ctx.query), patch, preconditionsFrom(ctx.query), replace, override);
  sendJson(ctx.res, 200, objectResource(rec, ctx.baseUrl));
}

export async function deleteObject(ctx: RequestContext, bucket: string, name: string): Promise<void> {
  await ctx.store.deleteObject(bucket, name, generationParam(ctx.query), preconditionsFrom(ctx.query));
  sendEmpty(ctx.res, 204);
}

/** POST …/o/<dest>/compose: concatenates up to 32 objects of the bucket into `dest`. */
export async function composeObject(ctx: RequestContext, bucket: string, name: string): Promise<void> {
  const body = await readJson(ctx.body);
  const sources = body.sourceObjects;
  if (!Array.isArray(sources) || sources.length === 0) throw errors.required('Required parameter: sourceObjects');
  if (sources.length > MAX_COMPOSE_SOURCES) {
    throw errors.invalid(`The number of source components provided (${sources.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES})`);
  }
  ctx.store.getBucket(bucket);
  const plan = sources.map((s: unknown) => {
    if (typeof s !== 'object' || s === null || typeof (s as { name?: unknown }).name !== 'string') {
      throw errors.required('Required parameter: sourceObjects[].name');
    }
    const src = s as { name: string; generation?: unknown; objectPreconditions?: unknown };
    return {
      name: src.name,
      generation: src.generation === undefined ? undefined : String(src.generation),
      pre: preconditionsFromJson(src.objectPreconditions),
    };
  });
  const draft = new DraftWriter(ctx.store.createBlob());
  let components = 0;
  try {
    for (const src of plan) {
      const opened = await ctx.store.openObject(bucket, src.name, src.generation, (rec) => {
        const failure = checkPreconditions(src.pre, rec);
        if (failure !== undefined) throw failure;
        return { start: 0, end: rec.size - 1 };
      });
      components += opened.record.componentCount ?? 1;
      await draft.writeAll(opened.stream);
    }
  } catch (err) {
    await draft.abort();
    throw err;
  }
  if (components > 1024) {
    await draft.abort();
    throw errors.invalid('The composite object would have more than 1024 components.');
  }
  const dest = typeof body.destination === 'object' && body.destination !== null ? body.destination : {};
  const picked = pickWritable(dest);
  const { metadataPatch, ...fields } = picked;
  const metadata = applyMetadataPatch(undefined, metadataPatch);
  const sealed = await draft.finish(metadata === undefined ? fields : { ...fields, metadata }, components);
  const rec = await ctx.store.commitObject(bucket, name, sealed, preconditionsFrom(ctx.query));
  sendJson(ctx.res, 200, objectResource(rec, ctx.baseUrl));
}

/**
 * POST …/o/<src>/rewriteTo/b/<db>/o/<dest> (or copyTo): copies an object in
 * one call (never returns a rewriteToken). Fields in the body override the source's.
 */
export async function rewriteObject(
  ctx: RequestContext,
  from: { bucket: string; name: string },
  to: { bucket: string; name: string },
  kind: 'rewriteTo' | 'copyTo',
): Promise<void> {
  const body = await readJson(ctx.body);
  ctx.store.getBucket(to.bucket);
  const sourcePre = preconditionsFrom(ctx.query, true);
  const { record: src, blob } = await ctx.store.copyObjectBytes(from.bucket, from.name, generationParam(ctx.query, 'sourceGeneration'), (rec) => {
    const failure = checkPreconditions(sourcePre, rec);
    if (failure !== undefined) throw failure;
  });
  const patch = pickWritable(body);
  const fields: WritableObjectFields = {};
  for (const f of writableFieldNames) {
    const v = patch[f] ?? src[f];
    if (v !== undefined) fields[f] = v;
  }
  const metadata = applyMetadataPatch(src.metadata, patch.metadataPatch);
  if (metadata !== undefined) fields.metadata = metadata;
  const rec: ObjectRecord = await ctx.store.commitObject(
    to.bucket,
    to.name,
    { blob, size: src.size, crc32c: src.crc32c, md5Hash: src.md5Hash, fields, ...(src.componentCount === undefined ? {} : { componentCount: src.componentCount }) },
    preconditionsFrom(ctx.query),
  );
  const resource = objectResource(rec, ctx.baseUrl);
  if (kind === 'copyTo') {
    sendJson(ctx.res, 200, resource);
    return;
  }
  sendJson(ctx.res, 200, {
    kind: 'storage#rewriteResponse',
    totalBytesRewritten: String(rec.size),
    objectSize: String(rec.size),
    done: true,
    resource,
  });
}
