/**
 * Object uploads under `/upload/storage/v1/b/<bucket>/o`: multipart, media
 * (simple) and resumable (single request or chunked, with status checks).
 */
import type { RequestContext } from './context.ts';
import { DraftWriter, verifyClientHashes } from './draft-writer.ts';
import { errors, gcsError } from './gcs-errors.ts';
import { readJson, sendEmpty, sendJson } from './http-util.ts';
import { applyMetadataPatch, pickWritable, type WritableObjectFields } from './model.ts';
import { boundaryOf, MultipartParser } from './multipart.ts';
import { checkPreconditions, preconditionsFrom } from './preconditions.ts';
import { pickProtection } from './protection.ts';
import { objectResource } from './resources.ts';
import type { UploadSession } from './upload-sessions.ts';

/** POST /upload/storage/v1/b/<bucket>/o */
export async function startUpload(ctx: RequestContext, bucket: string): Promise<void> {
  ctx.store.getBucket(bucket);
  const contentType = ctx.req.headers['content-type'];
  const type = ctx.query.get('uploadType') ?? (boundaryOf(contentType) === undefined ? 'media' : 'multipart');
  if (type === 'multipart') return multipartUpload(ctx, bucket);
  if (type === 'media') return mediaUpload(ctx, bucket);
  if (type === 'resumable') return startResumable(ctx, bucket);
  throw errors.invalid(`Unsupported uploadType: ${type}`);
}

function fieldsFrom(body: unknown): { fields: WritableObjectFields; name?: string } {
  const picked = pickWritable(body);
  const { metadataPatch, ...fields } = picked;
  const metadata = applyMetadataPatch(undefined, metadataPatch);
  const name = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).name : undefined;
  const protection = pickProtection(body);
  const withProtection = Object.keys(protection).length === 0 ? fields : { ...fields, protection };
  return { fields: metadata === undefined ? withProtection : { ...withProtection, metadata }, ...(typeof name === 'string' ? { name } : {}) };
}

function objectName(ctx: RequestContext, fromBody: string | undefined): string {
  const name = ctx.query.get('name') ?? fromBody;
  if (name === undefined || name === '') throw errors.required('Required parameter: name');
  if (Buffer.byteLength(name) > 1024) throw errors.invalid('The object name is too long.');
  // A lone surrogate has no UTF-8 form: stored, it would become U+FFFD and collide with that name.
  if (/\p{Cs}/u.test(name)) throw errors.invalid('The object name is not valid UTF-8 (it holds a lone surrogate).');
  return name;
}

async function commit(ctx: RequestContext, bucket: string, name: string, draft: DraftWriter, fields: WritableObjectFields): Promise<void> {
  const sums = draft.checksums();
  try {
    verifyClientHashes(ctx.req.headers['x-goog-hash'], sums);
  } catch (err) {
    await draft.abort();
    throw err;
  }
  const sealed = await draft.finish(fields);
  const rec = await ctx.store.commitObject(bucket, name, sealed, preconditionsFrom(ctx.query));
  sendJson(ctx.res, 200, objectResource(rec, ctx.baseUrl));
}

async function mediaUpload(ctx: RequestContext, bucket: string): Promise<void> {
  const name = objectName(ctx, undefined);
  const draft = new DraftWriter(ctx.store.createBlob());
  try {
    await draft.writeAll(ctx.body);
  } catch (err) {
    await draft.abort();
    throw err;
  }
  const contentType = ctx.req.headers['content-type'];
  await commit(ctx, bucket, name, draft, contentType === undefined ? {} : { contentType });
}

async function multipartUpload(ctx: RequestContext, bucket: string): Promise<void> {
  const boundary = boundaryOf(ctx.req.headers['content-type']);
  if (boundary === undefined) throw errors.invalid('Multipart upload needs a multipart/related body with a boundary.');
  const parser = new MultipartParser(boundary);
  const draft = new DraftWriter(ctx.store.createBlob());
  let part = 0;
  const metadataBytes: Buffer[] = [];
  let mediaType: string | undefined;
  try {
    for await (const chunk of ctx.body) {
      for (const ev of parser.push(chunk)) {
        if (ev.type === 'part') {
          part++;
          if (part === 2) mediaType = ev.headers['content-type'];
          if (part > 2) throw errors.invalid('Multipart upload has more than two parts.');
        } else if (ev.type === 'data') {
          if (part === 1) {
            metadataBytes.push(ev.chunk);
            if (metadataBytes.reduce((n, b) => n + b.length, 0) > 2 * 1024 * 1024) throw errors.invalid('Metadata part too large.');
          } else await draft.write(ev.chunk);
        }
      }
    }
    if (!parser.finished || part !== 2) throw errors.invalid('Multipart body is incomplete: expected a metadata part and a media part.');
  } catch (err) {
    await draft.abort();
    throw err;
  }
  let meta: unknown = {};
  const text = Buffer.concat(metadataBytes).toString('utf8').trim();
  if (text !== '') {
    try {
      meta = JSON.parse(text);
    } catch {
      await draft.abort();
      throw errors.invalid('Metadata part is not valid JSON.');
    }
  }
  const { fields, name: bodyName } = fieldsFrom(meta);
  let name: string;
  try {
    name = objectName(ctx, bodyName);
  } catch (err) {
    await draft.abort();
    throw err;
  }
  if (fields.contentType === undefined && mediaType !== undefined) fields.contentType = mediaType;
  await commit(ctx, bucket, name, draft, fields);
}

async function startResumable(ctx: RequestContext, bucket: string): Promise<void> {
  const body = await readJson(ctx.body);
  const { fields, name: bodyName } = fieldsFrom(body);
  const name = objectName(ctx, bodyName);
  const uploadType = ctx.req.headers['x-upload-content-type'];
  if (fields.contentType === undefined && typeof uploadType === 'string') fields.contentType = uploadType;
  const preconditions = preconditionsFrom(ctx.query);
  // GCS checks preconditions when the session starts, and again when it completes.
  const failure = checkPreconditions(preconditions, ctx.store.findObject(bucket, name));
  if (failure !== undefined) throw failure;
  const lengthHeader = ctx.req.headers['x-upload-content-length'];
  const total = typeof lengthHeader === 'string' && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  const session = ctx.sessions.create({
    bucket,
    name,
    fields,
    preconditions,
    draft: new DraftWriter(ctx.store.createBlob()),
    ...(total === undefined ? {} : { total }),
  });
  const location = `${ctx.baseUrl}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
  sendEmpty(ctx.res, 200, { Location: location, 'X-GUploader-UploadID': session.id });
}

/** PUT on a session URL: a chunk, the last chunk, or a status check (`bytes *\/*`). */
export async function resumableRequest(ctx: RequestContext): Promise<void> {
  const id = ctx.query.get('upload_id') ?? '';
  const session = ctx.sessions.get(id);
  if (session === undefined) throw gcsError('NOT_FOUND', 'No such upload session.', 'notFound');
  await ctx.sessions.run(session, () => putChunk(ctx, session));
}

/** DELETE on a session URL cancels it (GCS answers 499). */
export async function cancelResumable(ctx: RequestContext): Promise<void> {
  const id = ctx.query.get('upload_id') ?? '';
  const session = ctx.sessions.get(id);
  if (session === undefined) throw gcsError('NOT_FOUND', 'No such upload session.', 'notFound');
  ctx.sessions.delete(id);
  if (session.result === undefined) await session.draft.abort();
  sendEmpty(ctx.res, 499);
}

const CONTENT_RANGE = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\*|\d+)$/;

async function putChunk(ctx: RequestContext, s: UploadSession): Promise<void> {
  if (s.result !== undefined) {
    for await (const _ of ctx.body) {
      // already complete: ignore any bytes, answer with the object
    }
    sendJson(ctx.res, 200, objectResource(s.result, ctx.baseUrl));
    return;
  }
  const header = ctx.req.headers['content-range'];
  const m = header === undefined ? undefined : (CONTENT_RANGE.exec(header.trim()) ?? undefined);
  if (header !== undefined && m === undefined) throw errors.invalid(`Invalid Content-Range: ${header}`);
  const total = m?.[3] === undefined || m[3] === '*' ? undefined : Number(m[3]);
  if (total !== undefined) s.total = total;

  if (m !== undefined && m[1] === undefined) {
    // Status check, or completion with no further bytes (`bytes */N`).
    for await (const _ of ctx.body) {
      // a status check carries no bytes
    }
    if (s.total !== undefined && total !== undefined && s.draft.size === s.total) return finish(ctx, s);
    return incomplete(ctx, s);
  }

  const start = m === undefined ? 0 : Number(m[1]);
  const openEnded = m === undefined || m[2] === '*';
  const lastByte = openEnded ? undefined : Number(m?.[2]);
  if (start > s.draft.size) throw errors.invalid(`Content-Range starts at ${start} but ${s.draft.size} bytes were received so far.`);
  let skip = s.draft.size - start;
  const mark = s.draft.mark();
  let received = 0;
  try {
    for await (const chunk of ctx.body) {
      received += chunk.length;
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      await s.draft.write(skip > 0 ? chunk.subarray(skip) : chunk);
      skip = 0;
    }
  } catch (err) {
    await s.draft.rollback(mark);
    throw err;
  }
  const bad = async (message: string): Promise<never> => {
    await s.draft.rollback(mark);
    throw errors.invalid(message);
  };
  if (lastByte !== undefined && received !== lastByte - start + 1) {
    await bad(`Content-Range says ${lastByte - start + 1} bytes but the request had ${received}.`);
  }
  if (s.total !== undefined && s.draft.size > s.total) await bad(`Upload exceeds its declared size ${s.total}.`);
  if (openEnded || (s.total !== undefined && s.draft.size === s.total)) {
    if (s.total !== undefined && s.draft.size !== s.total) await bad(`Upload ended at ${s.draft.size} bytes, declared ${s.total}.`);
    return finish(ctx, s);
  }
  return incomplete(ctx, s);
}

function incomplete(ctx: RequestContext, s: UploadSession): void {
  const headers: Record<string, string> = {};
  if (s.draft.size > 0) headers.Range = `bytes=0-${s.draft.size - 1}`;
  sendEmpty(ctx.res, 308, headers);
}

async function finish(ctx: RequestContext, s: UploadSession): Promise<void> {
  const sums = s.draft.checksums();
  try {
    verifyClientHashes(ctx.req.headers['x-goog-hash'], sums);
  } catch (err) {
    ctx.sessions.delete(s.id);
    await s.draft.abort();
    throw err;
  }
  const sealed = await s.draft.finish(s.fields);
  try {
    s.result = await ctx.store.commitObject(s.bucket, s.name, sealed, s.preconditions);
  } catch (err) {
    ctx.sessions.delete(s.id);
    throw err;
  }
  sendJson(ctx.res, 200, objectResource(s.result, ctx.baseUrl));
}
