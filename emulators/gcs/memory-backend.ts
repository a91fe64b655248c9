/** In-memory backend: blobs are lists of the chunks received, records live only in the store. */
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { BlobGoneError, type Backend, type BlobWriter } from './backend.ts';

export function createMemoryBackend(): Backend {
  const blobs = new Map<string, Buffer[]>();

  const createBlob = (): BlobWriter => {
    let chunks: Buffer[] = [];
    let size = 0;
    return {
      get size() {
        return size;
      },
      async write(chunk) {
        chunks.push(chunk);
        size += chunk.length;
      },
      async truncate(to) {
        if (to >= size) return;
        const kept: Buffer[] = [];
        let n = 0;
        for (const c of chunks) {
          if (n >= to) break;
          const take = Math.min(c.length, to - n);
          kept.push(take === c.length ? c : c.subarray(0, take));
          n += take;
        }
        chunks = kept;
        size = to;
      },
      async finish() {
        const id = randomUUID();
        blobs.set(id, chunks);
        return id;
      },
      async abort() {
        chunks = [];
        size = 0;
      },
    };
  };

  return {
    async load() {
      return { buckets: [], objects: [] };
    },
    createBlob,
    readBlob(blob, start, end) {
      // Take the chunks now, before any await, so a replacement cannot race us.
      const chunks = blobs.get(blob);
      if (chunks === undefined) return Promise.reject(new BlobGoneError(blob));
      return Promise.resolve(Readable.from(slices(chunks, start, end), { objectMode: false }));
    },
    async copyBlob(blob) {
      const chunks = blobs.get(blob);
      if (chunks === undefined) throw new BlobGoneError(blob);
      const id = randomUUID();
      // Chunks are never mutated, so the copy can share them.
      blobs.set(id, chunks);
      return id;
    },
    async deleteBlob(blob) {
      blobs.delete(blob);
    },
    async saveBucket() {},
    async deleteBucket() {},
    async saveObject() {},
    async deleteObject() {},
    async close() {
      blobs.clear();
    },
  };
}

function* slices(chunks: readonly Buffer[], start: number, end: number): Generator<Buffer> {
  let offset = 0;
  for (const c of chunks) {
    const cEnd = offset + c.length; // exclusive
    if (cEnd > start && offset <= end) {
      const from = Math.max(start - offset, 0);
      const to = Math.min(end + 1 - offset, c.length);
      if (to > from) yield from === 0 && to === c.length ? c : c.subarray(from, to);
    }
    offset = cEnd;
    if (offset > end) return;
  }
}
