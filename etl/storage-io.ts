/**
 * The few Cloud Storage operations the ETL builds on, with the error cases
 * it branches on (412 = already there, 404 = gone) made explicit.
 */
import type { Bucket, File } from '@google-cloud/storage';
import { AppError } from '../lib/errors.ts';

export function httpCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | undefined)?.code;
  return typeof c === 'number' ? c : typeof c === 'string' && /^\d+$/.test(c) ? Number(c) : undefined;
}

export const isPreconditionFailed = (err: unknown): boolean => httpCode(err) === 412;
export const isNotFound = (err: unknown): boolean => httpCode(err) === 404;

/** Wraps a storage failure as a retryable STORAGE_FAILED. */
export function storageFailure(what: string, cause: unknown): AppError {
  return new AppError('STORAGE_FAILED', { message: `${what} failed (${httpCode(cause) ?? 'network'})`, cause });
}

export interface ObjectInfo {
  name: string;
  size: number;
  crc32c: string;
  md5Hash: string;
  generation: string;
  metadata: Record<string, string>;
}

function infoOf(file: File): ObjectInfo {
  const m = file.metadata;
  return {
    name: file.name,
    size: Number(m.size ?? 0),
    crc32c: String(m.crc32c ?? ''),
    md5Hash: String(m.md5Hash ?? ''),
    generation: String(m.generation ?? ''),
    metadata: Object.fromEntries(Object.entries(m.metadata ?? {}).map(([k, v]) => [k, String(v)])),
  };
}

/**
 * Writes `bytes` at `name` only if no object is there (`ifGenerationMatch: 0`).
 * `exists` means an object of that name was already there (for content-named
 * objects: the same content, so success).
 */
export async function createIfAbsent(
  bucket: Bucket,
  name: string,
  bytes: Buffer,
  opts: { contentType?: string; metadata?: Record<string, string> } = {},
): Promise<'created' | 'exists'> {
  try {
    await bucket.file(name).save(bytes, {
      resumable: false,
      contentType: opts.contentType ?? 'application/octet-stream',
      metadata: opts.metadata === undefined ? undefined : { metadata: opts.metadata },
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    return 'created';
  } catch (err) {
    if (isPreconditionFailed(err)) return 'exists';
    throw storageFailure(`write ${name}`, err);
  }
}

/** Overwrites `name` only if its generation is still `generation`. */
export async function replaceIfGeneration(bucket: Bucket, name: string, bytes: Buffer, generation: string, contentType = 'application/octet-stream'): Promise<'replaced' | 'changed'> {
  try {
    await bucket.file(name).save(bytes, { resumable: false, contentType, preconditionOpts: { ifGenerationMatch: Number(generation) } });
    return 'replaced';
  } catch (err) {
    if (isPreconditionFailed(err)) return 'changed';
    throw storageFailure(`write ${name}`, err);
  }
}

export async function statObject(bucket: Bucket, name: string): Promise<ObjectInfo | undefined> {
  const file = bucket.file(name);
  try {
    await file.getMetadata();
    return infoOf(file);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageFailure(`stat ${name}`, err);
  }
}

export async function exists(bucket: Bucket, name: string): Promise<boolean> {
  return (await statObject(bucket, name)) !== undefined;
}

export async function download(bucket: Bucket, name: string): Promise<Buffer | undefined> {
  try {
    const [bytes] = await bucket.file(name).download();
    return bytes;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageFailure(`read ${name}`, err);
  }
}

export async function listObjects(bucket: Bucket, prefix: string): Promise<ObjectInfo[]> {
  try {
    const [files] = await bucket.getFiles({ prefix, autoPaginate: true });
    return files.map(infoOf);
  } catch (err) {
    throw storageFailure(`list ${prefix}`, err);
  }
}

/** Deletes `name`; already gone is fine. With `generation`, only that generation. */
export async function deleteObject(bucket: Bucket, name: string, generation?: string): Promise<'deleted' | 'gone' | 'changed'> {
  try {
    await bucket.file(name).delete(generation === undefined ? {} : { ifGenerationMatch: Number(generation) });
    return 'deleted';
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    if (isPreconditionFailed(err)) return 'changed';
    throw storageFailure(`delete ${name}`, err);
  }
}

/** Reads `length` bytes at `offset` of `name` (pinned to `generation` when given). */
export async function readRange(bucket: Bucket, name: string, offset: number, length: number, generation?: string): Promise<Buffer> {
  const file = generation === undefined || generation === '' ? bucket.file(name) : bucket.file(name, { generation: Number(generation) });
  try {
    const [bytes] = await file.download({ start: offset, end: offset + length - 1, validation: false });
    return bytes;
  } catch (err) {
    throw storageFailure(`read ${name} at ${offset}`, err);
  }
}

/** A streaming upload: `write` resolves when the stream takes more, `end` once the object is stored. */
export interface Upload {
  write(chunk: Buffer): void | Promise<void>;
  /** `exists`: the precondition failed (an object of that name was there, or changed). */
  end(): Promise<'created' | 'exists'>;
  /** Abandons the upload (nothing is stored). */
  abort(): void;
}

/**
 * Starts a single-request upload of `name` that only succeeds if the object's
 * generation is `ifGenerationMatch` (`0`: only if absent).
 */
export function openUpload(bucket: Bucket, name: string, opts: { ifGenerationMatch: string | number; contentType?: string; metadata?: Record<string, string> }): Upload {
  const stream = bucket.file(name).createWriteStream({
    resumable: false,
    validation: false, // the caller compares its own checksums with what GCS reports
    contentType: opts.contentType ?? 'application/octet-stream',
    metadata: opts.metadata === undefined ? undefined : { metadata: opts.metadata },
    preconditionOpts: { ifGenerationMatch: Number(opts.ifGenerationMatch) },
  });
  let failure: unknown;
  const done = new Promise<'created' | 'exists'>((resolve, reject) => {
    stream.once('finish', () => resolve('created'));
    stream.once('error', (err) => {
      failure = err;
      if (isPreconditionFailed(err)) resolve('exists');
      else reject(storageFailure(`write ${name}`, err));
    });
  });
  done.catch(() => undefined); // observed by end()
  return {
    write(chunk) {
      if (failure !== undefined) return done.then(() => undefined);
      if (stream.write(chunk)) return;
      return new Promise<void>((resolve) => {
        const go = (): void => {
          stream.off('drain', go);
          stream.off('error', go);
          resolve();
        };
        stream.once('drain', go);
        stream.once('error', go);
      });
    },
    async end() {
      if (failure === undefined) stream.end();
      return done;
    },
    abort() {
      stream.destroy();
    },
  };
}
