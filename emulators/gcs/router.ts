/** Maps a request's method and path to the route handler. */
import { createBucket, deleteBucket, getBucket, listBuckets, patchBucket } from './buckets.ts';
import type { RequestContext } from './context.ts';
import { gcsError } from './gcs-errors.ts';
import { composeObject, deleteObject, downloadObject, getObjectMetadata, listObjects, rewriteObject, updateObject } from './objects.ts';
import { cancelResumable, resumableRequest, startUpload } from './uploads.ts';

/** Splits a raw path into the API it addresses and its decoded segments. */
export function parsePath(rawPath: string): { api: RequestContext['api']; segments: string[] } {
  let api: RequestContext['api'] = 'json';
  let rest = rawPath;
  if (rest.startsWith('/upload/storage/v1/')) {
    api = 'upload';
    rest = rest.slice('/upload/storage/v1'.length);
  } else if (rest.startsWith('/download/storage/v1/')) {
    api = 'download';
    rest = rest.slice('/download/storage/v1'.length);
  } else if (rest.startsWith('/storage/v1/') || rest === '/storage/v1') {
    rest = rest.slice('/storage/v1'.length);
  }
  const segments = rest.split('/').filter((s, i) => i > 0 || s !== '');
  if (segments[segments.length - 1] === '') segments.pop();
  return { api, segments: segments.map(decodeSegment) };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw gcsError('BAD_REQUEST', 'Invalid percent-encoding in the path.', 'invalid');
  }
}

function notFound(ctx: RequestContext): never {
  throw gcsError('NOT_FOUND', `Not Found: ${ctx.method} ${ctx.req.url?.split('?')[0] ?? ''}`, 'notFound');
}

export async function route(ctx: RequestContext): Promise<void> {
  const s = ctx.segments;
  const m = ctx.method;
  if (s[0] !== 'b') return notFound(ctx);
  if (s.length === 1) {
    if (m === 'GET') return listBuckets(ctx);
    if (m === 'POST') return createBucket(ctx);
    return notFound(ctx);
  }
  const bucket = s[1]!;
  if (s.length === 2) {
    if (m === 'GET') return getBucket(ctx, bucket);
    if (m === 'PATCH' || m === 'PUT') return patchBucket(ctx, bucket);
    if (m === 'DELETE') return deleteBucket(ctx, bucket);
    return notFound(ctx);
  }
  if (s[2] !== 'o') return notFound(ctx);
  if (s.length === 3) {
    if (ctx.api === 'upload') {
      if (m === 'POST') return startUpload(ctx, bucket);
      if (m === 'PUT') return resumableRequest(ctx);
      if (m === 'DELETE') return cancelResumable(ctx);
      return notFound(ctx);
    }
    if (m === 'GET') return listObjects(ctx, bucket);
    return notFound(ctx);
  }
  const rest = s.slice(3);
  const copyAt = rest.findIndex((x, i) => (x === 'rewriteTo' || x === 'copyTo') && rest[i + 1] === 'b' && rest[i + 3] === 'o');
  if (copyAt > 0 && rest.length > copyAt + 4) {
    if (m !== 'POST') return notFound(ctx);
    return rewriteObject(
      ctx,
      { bucket, name: rest.slice(0, copyAt).join('/') },
      { bucket: rest[copyAt + 2]!, name: rest.slice(copyAt + 4).join('/') },
      rest[copyAt] as 'rewriteTo' | 'copyTo',
    );
  }
  if (rest.length > 1 && rest[rest.length - 1] === 'compose' && m === 'POST') {
    return composeObject(ctx, bucket, rest.slice(0, -1).join('/'));
  }
  const name = rest.join('/');
  if (m === 'GET') {
    if (ctx.api === 'download' || ctx.query.get('alt') === 'media') return downloadObject(ctx, bucket, name);
    return getObjectMetadata(ctx, bucket, name);
  }
  if (m === 'PATCH') return updateObject(ctx, bucket, name, false);
  if (m === 'PUT') return updateObject(ctx, bucket, name, true);
  if (m === 'DELETE') return deleteObject(ctx, bucket, name);
  return notFound(ctx);
}
