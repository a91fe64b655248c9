/**
 * Conformance of the GCS emulator with what the official
 * `@google-cloud/storage` client does, over real HTTP on loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Bucket, Storage } from '@google-cloud/storage';
import { Storage as StorageClient } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorage } from '../../../lib/gcp/clients.ts';
import { uniqueName } from '../../support/names.ts';
import { crc32cToBase64, crc32cUpdate } from '../../../lib/crc32c.ts';
import { startGcsEmulator, type GcsEmulator } from '../../../emulators/gcs/index.ts';

const MiB = 1024 * 1024;

function sums(data: Buffer): { crc32c: string; md5Hash: string } {
  return { crc32c: crc32cToBase64(crc32cUpdate(0, data)), md5Hash: createHash('md5').update(data).digest('base64') };
}

/** The HTTP status of a client error (`code`, or `status` for gaxios errors of resumable uploads). */
function statusOf(err: unknown): unknown {
  const e = err as { code?: unknown; status?: unknown };
  return typeof e.code === 'number' ? e.code : e.status;
}

async function expectStatus(p: Promise<unknown>, status: number): Promise<unknown> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected HTTP ${status}`).toBeDefined();
  expect(statusOf(err)).toBe(status);
  return err;
}

/** Streams `size` pseudo-random bytes in 1 MiB pieces, hashing them on the way. */
function randomSource(size: number): { stream: Readable; sums: () => { crc32c: string; md5Hash: string } } {
  let crc = 0;
  const md5 = createHash('md5');
  let left = size;
  const block = randomBytes(MiB);
  let n = 0;
  const stream = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const len = Math.min(MiB, left);
      const chunk = Buffer.from(block.subarray(0, len));
      chunk.writeUInt32BE(n++, 0); // every piece differs
      crc = crc32cUpdate(crc, chunk);
      md5.update(chunk);
      left -= len;
      this.push(chunk);
    },
  });
  return { stream, sums: () => ({ crc32c: crc32cToBase64(crc), md5Hash: md5.copy().digest('base64') }) };
}

/** Downloads through the client (which verifies CRC32C), returning size and checksums. */
async function downloadSums(bucket: Bucket, name: string): Promise<{ size: number; crc32c: string; md5Hash: string }> {
  let crc = 0;
  let size = 0;
  const md5 = createHash('md5');
  await pipeline(
    bucket.file(name).createReadStream(),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        crc = crc32cUpdate(crc, chunk);
        md5.update(chunk);
        size += chunk.length;
        cb();
      },
    }),
  );
  return { size, crc32c: crc32cToBase64(crc), md5Hash: md5.digest('base64') };
}

describe('GCS emulator: official client conformance (memory mode)', () => {
  let emulator: GcsEmulator;
  let storage: Storage;
  let bucket: Bucket;

  beforeAll(async () => {
    process.env.METADATA_SERVER_DETECTION = 'none';
    emulator = await startGcsEmulator({ port: 0 });
    storage = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url });
    [bucket] = await storage.createBucket(uniqueName('gcs', 'main'));
  });
  afterAll(async () => {
    await emulator.close();
  });

  describe('buckets', () => {
    it('creates, gets, lists and deletes a bucket; 409 on a second create', async () => {
      const name = uniqueName('gcs', 'bucket');
      const [b, response] = await storage.createBucket(name);
      const meta = response as { name?: string; metageneration?: string };
      expect(meta.name).toBe(name);
      expect(meta.metageneration).toBe('1');
      await expectStatus(storage.createBucket(name), 409);
      const [got] = await b.getMetadata();
      expect(got.name).toBe(name);
      const [all] = await storage.getBuckets();
      expect(all.map((x) => x.name)).toContain(name);
      const [exists] = await b.exists();
      expect(exists).toBe(true);
      await b.delete();
      expect((await b.exists())[0]).toBe(false);
      await expectStatus(b.getMetadata(), 404);
    });

    it('refuses to delete a bucket that holds objects (409)', async () => {
      const [b] = await storage.createBucket(uniqueName('gcs', 'notempty'));
      await b.file('x').save('x', { resumable: false });
      await expectStatus(b.delete(), 409);
      await b.file('x').delete();
      await b.delete();
    });

    it('answers 404 for a missing bucket with GCS error JSON', async () => {
      const res = await fetch(`${emulator.url}/storage/v1/b/${uniqueName('gcs', 'missing')}`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: number; message: string; errors: { reason: string; message: string; domain: string }[] } };
      expect(body.error.code).toBe(404);
      expect(body.error.errors[0]).toMatchObject({ reason: 'notFound', domain: 'global' });
      expect(typeof body.error.message).toBe('string');
    });
  });

  describe('uploads and downloads', () => {
    it('multipart upload: checksums are GCS-correct and the download round-trips', async () => {
      const data = randomBytes(100_000);
      const file = bucket.file('multipart/one.bin');
      await file.save(data, { resumable: false, contentType: 'application/x-test', metadata: { metadata: { team: 'core' } } });
      const [meta] = await file.getMetadata();
      expect(meta).toMatchObject({ ...sums(data), size: String(data.length), contentType: 'application/x-test', metageneration: '1' });
      expect(meta.metadata).toEqual({ team: 'core' });
      expect(meta.generation).toMatch(/^\d+$/);
      expect(typeof meta.generation).toBe('string');
      const [back] = await file.download();
      expect(back.equals(data)).toBe(true);
    });

    it('resumable upload in one request', async () => {
      const data = randomBytes(3 * MiB + 17);
      const file = bucket.file('resumable/single.bin');
      await file.save(data, { resumable: true });
      const [meta] = await file.getMetadata();
      expect(meta).toMatchObject({ ...sums(data), size: String(data.length) });
      expect((await file.download())[0].equals(data)).toBe(true);
    });

    it('uploads an empty object', async () => {
      for (const resumable of [false, true]) {
        const file = bucket.file(`empty-${resumable}`);
        await file.save(Buffer.alloc(0), { resumable });
        const [meta] = await file.getMetadata();
        expect(meta).toMatchObject({ size: '0', ...sums(Buffer.alloc(0)) });
        expect((await file.download())[0].length).toBe(0);
      }
    });

    it('64 MiB resumable upload in 8 MiB chunks (308 + Range between chunks); checksums round-trip', async () => {
      const chunkPuts = emulator.faults.add({ methods: ['PUT'], path: '^/upload/', latencyMs: 0 });
      const size = 64 * MiB;
      const src = randomSource(size);
      const file = bucket.file('big/64mib.bin');
      await pipeline(src.stream, file.createWriteStream({ resumable: true, chunkSize: 8 * MiB, contentType: 'application/octet-stream' }));
      const puts = emulator.faults.list().find((r) => r.id === chunkPuts)?.fired;
      emulator.faults.remove(chunkPuts);
      expect(puts).toBe(8);
      const [meta] = await file.getMetadata();
      expect(meta).toMatchObject({ ...src.sums(), size: String(size) });
      expect(await downloadSums(bucket, 'big/64mib.bin')).toEqual({ size, ...src.sums() });
    }, 120_000);

    it('resumable protocol: 308 with Range after a chunk, status check with bytes */*, 200 once complete', async () => {
      const file = bucket.file('resumable/raw.bin');
      const [uri] = await file.createResumableUpload({ metadata: { contentType: 'text/plain' } });
      const data = randomBytes(512 * 1024);
      const first = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': `bytes 0-${256 * 1024 - 1}/*` }, body: data.subarray(0, 256 * 1024) });
      expect(first.status).toBe(308);
      expect(first.headers.get('range')).toBe(`bytes=0-${256 * 1024 - 1}`);
      const status = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
      expect(status.status).toBe(308);
      expect(status.headers.get('range')).toBe(`bytes=0-${256 * 1024 - 1}`);
      const last = await fetch(uri, {
        method: 'PUT',
        headers: { 'Content-Range': `bytes ${256 * 1024}-${data.length - 1}/${data.length}` },
        body: data.subarray(256 * 1024),
      });
      expect(last.status).toBe(200);
      const resource = (await last.json()) as Record<string, unknown>;
      expect(resource).toMatchObject({ name: 'resumable/raw.bin', size: String(data.length), contentType: 'text/plain', ...sums(data) });
      const after = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
      expect(after.status).toBe(200);
      expect((await file.download())[0].equals(data)).toBe(true);
    });

    it('rejects a final chunk whose X-Goog-Hash does not match (400) and stores nothing', async () => {
      const file = bucket.file('resumable/badhash.bin');
      const [uri] = await file.createResumableUpload();
      const res = await fetch(uri, {
        method: 'PUT',
        headers: { 'Content-Range': 'bytes 0-4/5', 'X-Goog-Hash': `crc32c=${sums(Buffer.from('other')).crc32c}` },
        body: Buffer.from('hello'),
      });
      expect(res.status).toBe(400);
      expect((await file.exists())[0]).toBe(false);
    });

    it('createWriteStream, simple and resumable, then ranged downloads', async () => {
      const data = randomBytes(2 * MiB + 5);
      for (const resumable of [false, true]) {
        const name = `stream/${resumable ? 'resumable' : 'simple'}.bin`;
        await pipeline(Readable.from([data.subarray(0, MiB), data.subarray(MiB)]), bucket.file(name).createWriteStream({ resumable }));
        const [meta] = await bucket.file(name).getMetadata();
        expect(meta).toMatchObject({ ...sums(data), size: String(data.length) });
      }
      const file = bucket.file('stream/simple.bin');
      const [mid] = await file.download({ start: 1000, end: 1999 });
      expect(mid.equals(data.subarray(1000, 2000))).toBe(true);
      const [tail] = await file.download({ end: -100 } as { end: number });
      expect(tail.equals(data.subarray(data.length - 100))).toBe(true);
      const [from] = await file.download({ start: data.length - 10 });
      expect(from.equals(data.subarray(data.length - 10))).toBe(true);
      const res = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/${encodeURIComponent('stream/simple.bin')}?alt=media`, {
        headers: { Range: `bytes=${data.length + 5}-` },
      });
      expect(res.status).toBe(416);
    });

    it('serves download headers the client validates (x-goog-hash, stored encoding, generation)', async () => {
      const data = Buffer.from('header check');
      await bucket.file('h.txt').save(data, { resumable: false });
      const res = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/h.txt?alt=media`);
      expect(res.status).toBe(200);
      const s = sums(data);
      expect(res.headers.get('x-goog-hash')).toBe(`crc32c=${s.crc32c},md5=${s.md5Hash}`);
      expect(res.headers.get('x-goog-stored-content-encoding')).toBe('identity');
      expect(res.headers.get('x-goog-generation')).toMatch(/^\d+$/);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    });
  });

  describe('metadata, generations and preconditions', () => {
    it('patches metadata, bumping the metageneration (strings), with ifMetagenerationMatch', async () => {
      const file = bucket.file('meta/a.txt');
      await file.save('a', { resumable: false, metadata: { metadata: { keep: '1', drop: '2' } } });
      const [before] = await file.getMetadata();
      const [after] = await file.setMetadata({ contentType: 'text/csv', metadata: { drop: null, added: 'x' } }, { ifMetagenerationMatch: 1 });
      expect(after).toMatchObject({ metageneration: '2', generation: before.generation, contentType: 'text/csv', crc32c: before.crc32c });
      expect(after.metadata).toEqual({ keep: '1', added: 'x' });
      await expectStatus(file.setMetadata({ cacheControl: 'no-cache' }, { ifMetagenerationMatch: 1 }), 412);
    });

    it('ifGenerationMatch: 0 creates only; a wrong generation is 412 conditionNotMet; the right one replaces', async () => {
      const file = bucket.file('pre/a.txt');
      await file.save('v1', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
      const [m1] = await file.getMetadata();
      const err = (await expectStatus(file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }), 412)) as { errors?: { reason: string }[] };
      expect(JSON.stringify(err)).toContain('conditionNotMet');
      await expectStatus(file.save('v2', { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }), 412);
      await expectStatus(file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: Number(m1.generation) + 1 } }), 412);
      await file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: m1.generation as unknown as number } });
      const [m2] = await file.getMetadata();
      expect(BigInt(m2.generation as string)).toBeGreaterThan(BigInt(m1.generation as string));
      expect(m2.metageneration).toBe('1');
      expect((await file.download())[0].toString()).toBe('v2');
    });

    it('ifGenerationNotMatch and ifMetagenerationMatch on upload', async () => {
      const file = bucket.file('pre/b.txt');
      await file.save('v1', { resumable: false });
      const [m1] = await file.getMetadata();
      const raw = (q: string): Promise<Response> =>
        fetch(`${emulator.url}/upload/storage/v1/b/${bucket.name}/o?uploadType=media&name=pre%2Fb.txt&${q}`, { method: 'POST', body: 'v2' });
      expect((await raw(`ifGenerationNotMatch=${m1.generation}`)).status).toBe(412);
      expect((await raw('ifMetagenerationMatch=7')).status).toBe(412);
      expect((await raw('ifMetagenerationMatch=1')).status).toBe(200);
    });

    it('deletes objects; 404 for a missing one; 412 on a wrong ifGenerationMatch', async () => {
      const file = bucket.file('del/a.txt');
      await file.save('a', { resumable: false });
      const [m] = await file.getMetadata();
      await expectStatus(file.delete({ ifGenerationMatch: Number(m.generation) + 1 }), 412);
      await file.delete({ ifGenerationMatch: m.generation as unknown as number });
      expect((await file.exists())[0]).toBe(false);
      await expectStatus(file.delete(), 404);
      await expectStatus(bucket.file('del/never').getMetadata(), 404);
      await expectStatus(bucket.file('del/never').download(), 404);
    });
  });

  describe('listing', () => {
    let lb: Bucket;
    const names = ['a.txt', 'dir/x.txt', 'dir/y.txt', 'dir/sub/z.txt', 'e/1', 'e/2', 'f.txt', 'g/h/i'];
    beforeAll(async () => {
      [lb] = await storage.createBucket(uniqueName('gcs', 'list'));
      await Promise.all(names.map((n) => lb.file(n).save(n, { resumable: false })));
    });

    it('lists everything in name order', async () => {
      const [files] = await lb.getFiles();
      expect(files.map((f) => f.name)).toEqual([...names].sort());
    });

    it('prefix and delimiter return prefixes', async () => {
      const [files, , api] = await lb.getFiles({ delimiter: '/', autoPaginate: false });
      expect(files.map((f) => f.name)).toEqual(['a.txt', 'f.txt']);
      expect((api as { prefixes: string[] }).prefixes).toEqual(['dir/', 'e/', 'g/']);
      const [sub, , api2] = await lb.getFiles({ prefix: 'dir/', delimiter: '/', autoPaginate: false });
      expect(sub.map((f) => f.name)).toEqual(['dir/x.txt', 'dir/y.txt']);
      expect((api2 as { prefixes: string[] }).prefixes).toEqual(['dir/sub/']);
    });

    it('pages with maxResults and pageToken', async () => {
      const seen: string[] = [];
      type Query = { maxResults: number; autoPaginate: false; pageToken?: string };
      let query: Query | null = { maxResults: 3, autoPaginate: false };
      let pages = 0;
      while (query !== null && pages < 10) {
        const response = await lb.getFiles(query);
        const files = response[0];
        const next: unknown = response[1];
        expect(files.length).toBeLessThanOrEqual(3);
        seen.push(...files.map((f) => f.name));
        query = (next as Query | null) ?? null;
        pages++;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual([...names].sort());
    });

    it('startOffset (inclusive) and endOffset (exclusive)', async () => {
      const [files] = await lb.getFiles({ startOffset: 'dir/y.txt', endOffset: 'f.txt' });
      expect(files.map((f) => f.name)).toEqual(['dir/y.txt', 'e/1', 'e/2']);
    });
  });

  describe('copy, rewrite and compose', () => {
    it('copies an object, keeping checksums; 404 for a missing source; 412 on destination preconditions', async () => {
      const data = randomBytes(300_000);
      await bucket.file('copy/src.bin').save(data, { resumable: false, contentType: 'image/png', metadata: { metadata: { a: '1' } } });
      const [other] = await storage.createBucket(uniqueName('gcs', 'copydst'));
      const [copied] = await bucket.file('copy/src.bin').copy(other.file('dst.bin'));
      const [meta] = await copied.getMetadata();
      expect(meta).toMatchObject({ ...sums(data), size: String(data.length), contentType: 'image/png', metadata: { a: '1' } });
      expect((await copied.download())[0].equals(data)).toBe(true);
      await expectStatus(bucket.file('copy/missing').copy(other.file('x')), 404);
      await expectStatus(bucket.file('copy/src.bin').copy(other.file('dst.bin'), { preconditionOpts: { ifGenerationMatch: 0 } }), 412);
      await bucket.file('copy/src.bin').move(bucket.file('copy/moved.bin'));
      expect((await bucket.file('copy/src.bin').exists())[0]).toBe(false);
      expect((await bucket.file('copy/moved.bin').download())[0].equals(data)).toBe(true);
    });

    it('composes 32 sources with correct checksums; 33 is refused; 412 on destination preconditions', async () => {
      const parts = Array.from({ length: 33 }, (_, i) => randomBytes(1000 + i));
      await Promise.all(parts.map((p, i) => bucket.file(`compose/part-${String(i).padStart(2, '0')}`).save(p, { resumable: false })));
      const sources = parts.map((_, i) => bucket.file(`compose/part-${String(i).padStart(2, '0')}`));
      const [combined] = await bucket.combine(sources.slice(0, 32), 'compose/all.bin');
      const whole = Buffer.concat(parts.slice(0, 32));
      const [meta] = await combined.getMetadata();
      expect(meta).toMatchObject({ ...sums(whole), size: String(whole.length), componentCount: 32 });
      expect((await combined.download())[0].equals(whole)).toBe(true);
      await expectStatus(bucket.combine(sources, 'compose/too-many.bin'), 400);
      await expectStatus(bucket.combine(sources.slice(0, 2), bucket.file('compose/all.bin', { preconditionOpts: { ifGenerationMatch: 0 } })), 412);
      await expectStatus(bucket.combine([bucket.file('compose/none')], 'compose/x.bin'), 404);
    });
  });

  describe('STORAGE_EMULATOR_HOST (routes without /storage/v1)', () => {
    it('works through the client configured by the environment variable', async () => {
      const before = process.env.STORAGE_EMULATOR_HOST;
      process.env.STORAGE_EMULATOR_HOST = emulator.url;
      try {
        const viaEnv = new StorageClient({ projectId: 'test-project' });
        const b = viaEnv.bucket(bucket.name);
        await b.file('env/a.txt').save('via env', { resumable: false });
        await b.file('env/b.txt').save('via env resumable', { resumable: true });
        expect((await b.file('env/a.txt').download())[0].toString()).toBe('via env');
        const [files] = await b.getFiles({ prefix: 'env/' });
        expect(files.map((f) => f.name)).toEqual(['env/a.txt', 'env/b.txt']);
      } finally {
        if (before === undefined) delete process.env.STORAGE_EMULATOR_HOST;
        else process.env.STORAGE_EMULATOR_HOST = before;
      }
    });
  });
});

describe('GCS emulator: directory mode', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gcs-emulator-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps buckets, objects, generations and metadata across a restart', async () => {
    const big = randomBytes(3 * MiB);
    const first = await startGcsEmulator({ dir });
    let generation: string;
    try {
      const s = createStorage({ projectId: 'test-project', apiEndpoint: first.url });
      const [b] = await s.createBucket('persist-bucket');
      await b.file('small.txt').save('small', { resumable: false, metadata: { metadata: { k: 'v' } } });
      await b.file('big.bin').save(big, { resumable: true });
      await b.file('gone.txt').save('x', { resumable: false });
      await b.file('gone.txt').delete();
      await b.file('small.txt').save('small v2', { resumable: false, metadata: { metadata: { k: 'v2' } } });
      [{ generation }] = (await b.file('small.txt').getMetadata()) as unknown as [{ generation: string }];
    } finally {
      await first.close();
    }
    const second = await startGcsEmulator({ dir });
    try {
      const s = createStorage({ projectId: 'test-project', apiEndpoint: second.url });
      const b = s.bucket('persist-bucket');
      const [files] = await b.getFiles();
      expect(files.map((f) => f.name)).toEqual(['big.bin', 'small.txt']);
      const [meta] = await b.file('small.txt').getMetadata();
      expect(meta).toMatchObject({ generation, metadata: { k: 'v2' } });
      expect((await b.file('small.txt').download())[0].toString()).toBe('small v2');
      expect((await b.file('big.bin').download())[0].equals(big)).toBe(true);
      await expectStatus(s.createBucket('persist-bucket'), 409);
      // New generations stay above the ones stored before the restart.
      await b.file('small.txt').save('v3', { resumable: false });
      const [m3] = await b.file('small.txt').getMetadata();
      expect(BigInt(m3.generation as string)).toBeGreaterThan(BigInt(generation));
    } finally {
      await second.close();
    }
  });

  it('a reader never sees a half-written object while it is being replaced', async () => {
    const emulator = await startGcsEmulator({ dir });
    try {
      const s = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url });
      const [b] = await s.createBucket(uniqueName('gcs', 'atomic'));
      const versions = [randomBytes(2 * MiB), randomBytes(2 * MiB), randomBytes(2 * MiB)];
      const known = new Set(versions.map((v) => sums(v).crc32c));
      await b.file('hot.bin').save(versions[0]!, { resumable: false });
      let writing = true;
      const writer = (async () => {
        for (let i = 1; i <= 12; i++) await b.file('hot.bin').save(versions[i % 3]!, { resumable: false });
        writing = false;
      })();
      let reads = 0;
      while (writing || reads < 5) {
        const got = await downloadSums(b, 'hot.bin'); // the client also checks x-goog-hash against the bytes
        expect(got.size).toBe(2 * MiB);
        expect(known.has(got.crc32c)).toBe(true);
        reads++;
        if (reads > 200) break;
      }
      await writer;
    } finally {
      await emulator.close();
    }
  });
});
