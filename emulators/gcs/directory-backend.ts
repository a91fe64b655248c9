/**
 * Directory backend, so the local platform keeps its data across restarts.
 *
 * Layout under `dir`:
 *   buckets/<bucket>/bucket.json          the bucket record
 *   buckets/<bucket>/objects/<sha1>.json  the live record of one object (sha1 of its name)
 *   blobs/<id>                            the bytes of one object generation
 *   tmp/                                  records being written
 *
 * A new generation's bytes go to a fresh blob file that nothing refers to
 * yet; then its record is written to tmp/ and renamed over the old record
 * (atomic), then the old blob is deleted. A reader holding the old record
 * either has the old file open (still readable after unlink) or gets
 * BlobGoneError and looks again. Small blobs are buffered and written in one
 * call; larger ones stream to disk, so an object is never held whole in memory.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, unlink, writeFile, copyFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobGoneError, type Backend, type BlobWriter } from './backend.ts';
import type { BucketRecord, ObjectRecord } from './model.ts';

/** Blobs up to this size are written with one call when finished. */
const SPILL_BYTES = 1024 * 1024;

export function createDirectoryBackend(dir: string): Backend {
  const bucketsDir = path.join(dir, 'buckets');
  const blobsDir = path.join(dir, 'blobs');
  const tmpDir = path.join(dir, 'tmp');
  const blobPath = (id: string): string => path.join(blobsDir, id);
  const objectPath = (bucket: string, name: string): string =>
    path.join(bucketsDir, bucket, 'objects', `${createHash('sha1').update(name).digest('hex')}.json`);

  const writeAtomically = async (target: string, data: string): Promise<void> => {
    const tmp = path.join(tmpDir, randomUUID());
    await writeFile(tmp, data);
    await rename(tmp, target);
  };

  const ignoreMissing = (err: unknown): void => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  };

  const createBlob = (): BlobWriter => {
    const id = randomUUID();
    let pending: Buffer[] = [];
    let size = 0;
    let handle: FileHandle | undefined;
    return {
      get size() {
        return size;
      },
      async write(chunk) {
        if (handle === undefined) {
          pending.push(chunk);
          size += chunk.length;
          if (size <= SPILL_BYTES) return;
          handle = await open(blobPath(id), 'w');
          const all = pending;
          pending = [];
          await handle.writev(all, 0);
          return;
        }
        const at = size;
        size += chunk.length;
        await handle.write(chunk, 0, chunk.length, at);
      },
      async truncate(to) {
        if (to >= size) return;
        if (handle === undefined) {
          const kept: Buffer[] = [];
          let n = 0;
          for (const c of pending) {
            if (n >= to) break;
            const take = Math.min(c.length, to - n);
            kept.push(c.subarray(0, take));
            n += take;
          }
          pending = kept;
        } else {
          await handle.truncate(to);
        }
        size = to;
      },
      async finish() {
        if (handle === undefined) {
          await writeFile(blobPath(id), pending.length === 1 ? pending[0]! : Buffer.concat(pending));
          pending = [];
        } else {
          await handle.close();
          handle = undefined;
        }
        return id;
      },
      async abort() {
        pending = [];
        if (handle !== undefined) {
          await handle.close().catch(() => {});
          handle = undefined;
          await unlink(blobPath(id)).catch(ignoreMissing);
        }
      },
    };
  };

  return {
    async load() {
      await Promise.all([mkdir(bucketsDir, { recursive: true }), mkdir(blobsDir, { recursive: true })]);
      await rm(tmpDir, { recursive: true, force: true });
      await mkdir(tmpDir, { recursive: true });
      const buckets: BucketRecord[] = [];
      const objects: ObjectRecord[] = [];
      for (const name of await readdir(bucketsDir)) {
        let bucket: BucketRecord;
        try {
          bucket = JSON.parse(await readFile(path.join(bucketsDir, name, 'bucket.json'), 'utf8')) as BucketRecord;
        } catch {
          continue; // a bucket whose creation did not finish
        }
        buckets.push(bucket);
        const objectsDir = path.join(bucketsDir, name, 'objects');
        const files = (await readdir(objectsDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json'));
        for (let i = 0; i < files.length; i += 64) {
          const batch = files.slice(i, i + 64);
          const recs = await Promise.all(batch.map(async (f) => JSON.parse(await readFile(path.join(objectsDir, f), 'utf8')) as ObjectRecord));
          objects.push(...recs);
        }
      }
      // Blobs no record refers to are leftovers of uploads cut by a crash or a replacement.
      const live = new Set(objects.map((o) => o.blob));
      for (const f of await readdir(blobsDir)) {
        if (!live.has(f)) await unlink(blobPath(f)).catch(ignoreMissing);
      }
      return { buckets, objects };
    },
    createBlob,
    async readBlob(blob, start, end) {
      let fh: FileHandle;
      try {
        fh = await open(blobPath(blob), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobGoneError(blob);
        throw err;
      }
      if (end < start) {
        await fh.close();
        return Readable.from([], { objectMode: false });
      }
      return fh.createReadStream({ start, end, highWaterMark: 256 * 1024 });
    },
    async copyBlob(blob) {
      const id = randomUUID();
      try {
        await copyFile(blobPath(blob), blobPath(id), fsConstants.COPYFILE_FICLONE);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobGoneError(blob);
        throw err;
      }
      return id;
    },
    async deleteBlob(blob) {
      await unlink(blobPath(blob)).catch(ignoreMissing);
    },
    async saveBucket(bucket) {
      await mkdir(path.join(bucketsDir, bucket.name, 'objects'), { recursive: true });
      await writeAtomically(path.join(bucketsDir, bucket.name, 'bucket.json'), JSON.stringify(bucket));
    },
    async deleteBucket(name) {
      await rm(path.join(bucketsDir, name), { recursive: true, force: true });
    },
    async saveObject(object) {
      await writeAtomically(objectPath(object.bucket, object.name), JSON.stringify(object));
    },
    async deleteObject(bucket, name) {
      await unlink(objectPath(bucket, name)).catch(ignoreMissing);
    },
    async close() {},
  };
}
