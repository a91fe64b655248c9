/**
 * Fault injection, in process and over the admin endpoint, and the official
 * client's recovery from it (retries on idempotent operations, resumable
 * uploads that survive a cut connection).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Bucket, Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createStorage } from '../../../lib/gcp/clients.ts';
import { uniqueName } from '../../support/names.ts';
import { clearFaults, injectFault, listFaults, removeFault } from '../../../emulators/gcs/admin-client.ts';
import { startGcsEmulator, type GcsEmulator } from '../../../emulators/gcs/index.ts';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64');
/**
 * Writes made idempotent with a precondition. (A write without one makes the
 * v7 client turn `retryOptions.autoRetry` off on its shared Storage object,
 * so later calls on that instance are not retried either.)
 */
const createOnly = { preconditionOpts: { ifGenerationMatch: 0 } };

describe('GCS emulator fault injection', () => {
  let emulator: GcsEmulator;
  let storage: Storage;
  let bucket: Bucket;

  beforeAll(async () => {
    process.env.METADATA_SERVER_DETECTION = 'none';
    emulator = await startGcsEmulator({ port: 0 });
    storage = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url });
    [bucket] = await storage.createBucket(uniqueName('faults', 'bucket'));
  });
  afterEach(() => emulator.faults.clear());
  afterAll(() => emulator.close());

  const fired = (id: string): number | undefined => emulator.faults.list().find((r) => r.id === id)?.fired;

  it('the client retries 503s on idempotent reads (metadata get and download)', async () => {
    const data = randomBytes(50_000);
    await bucket.file('retry/read.bin').save(data, { resumable: false, ...createOnly });
    emulator.faults.add({ methods: ['GET'], path: '/o/retry%2Fread\\.bin(\\?|$)', times: 2, status: 503 });
    const [meta] = await bucket.file('retry/read.bin').getMetadata();
    expect(meta.md5Hash).toBe(md5(data));
    expect(emulator.faults.list()).toEqual([]); // both failures were consumed
    emulator.faults.add({ methods: ['GET'], path: 'alt=media', times: 1, status: 503 });
    const [back] = await bucket.file('retry/read.bin').download();
    expect(back.equals(data)).toBe(true);
  });

  it('the client retries 503s and 429s on uploads made idempotent by ifGenerationMatch', async () => {
    const a = emulator.faults.add({ methods: ['POST'], path: '^/upload/', times: 1, status: 503 });
    const b = emulator.faults.add({ methods: ['POST'], path: '^/upload/', times: 1, status: 429 });
    const data = randomBytes(10_000);
    await bucket.file('retry/upload.bin').save(data, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    expect(fired(a) ?? 'consumed').toBe('consumed');
    expect(fired(b) ?? 'consumed').toBe('consumed');
    expect((await bucket.file('retry/upload.bin').download())[0].equals(data)).toBe(true);
  });

  it('does not retry a non-idempotent upload: the injected status reaches the caller', async () => {
    emulator.faults.add({ methods: ['POST'], path: '^/upload/', times: 1, status: 503 });
    // Its own client: this write switches the client's auto-retry off (see createOnly).
    const own = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url }).bucket(bucket.name);
    const err = await own
      .file('retry/no-precondition.bin')
      .save('x', { resumable: false })
      .then(
        () => undefined,
        (e: unknown) => e as { code?: number },
      );
    expect(err?.code).toBe(503);
    expect((await bucket.file('retry/no-precondition.bin').exists())[0]).toBe(false);
  });

  it('the client retries a 503 on a resumable chunk and the object is intact', async () => {
    emulator.faults.add({ methods: ['PUT'], path: '^/upload/.*upload_id=', times: 1, status: 503 });
    const data = randomBytes(3 * MiB);
    await pipeline(Readable.from([data]), bucket.file('retry/chunked.bin').createWriteStream({ resumable: true, chunkSize: MiB, ...createOnly }));
    const [meta] = await bucket.file('retry/chunked.bin').getMetadata();
    expect(meta.md5Hash).toBe(md5(data));
    expect(meta.size).toBe(String(data.length));
  });

  it('a chunked resumable upload survives a connection cut mid-chunk (server keeps only whole chunks)', async () => {
    const rule = emulator.faults.add({ methods: ['PUT'], path: '^/upload/.*upload_id=', cut: 'request', cutAfterBytes: MiB + 1234, times: 1 });
    const data = randomBytes(8 * MiB);
    await pipeline(Readable.from([data]), bucket.file('cut/upload.bin').createWriteStream({ resumable: true, chunkSize: 2 * MiB, ...createOnly }));
    expect(fired(rule) ?? 'consumed').toBe('consumed');
    const [meta] = await bucket.file('cut/upload.bin').getMetadata();
    expect(meta).toMatchObject({ md5Hash: md5(data), size: String(data.length) });
    expect((await bucket.file('cut/upload.bin').download())[0].equals(data)).toBe(true);
  });

  it('cuts a download after K body bytes: the client sees fewer bytes than Content-Length and an aborted connection', async () => {
    // Raw HTTP: the v7 client's download() never settles when the connection
    // drops mid-body (a client limitation; see README), so it is not used here.
    const data = randomBytes(2 * MiB);
    await bucket.file('cut/download.bin').save(data, { resumable: false, ...createOnly });
    emulator.faults.add({ methods: ['GET'], path: 'alt=media', cut: 'response', cutAfterBytes: 300_000, times: 1 });
    const outcome = await new Promise<{ length: string | undefined; received: number; aborted: boolean }>((resolve, reject) => {
      http
        .get(`${emulator.url}/storage/v1/b/${bucket.name}/o/${encodeURIComponent('cut/download.bin')}?alt=media`, (res) => {
          let received = 0;
          let aborted = false;
          res.on('data', (c: Buffer) => (received += c.length));
          res.on('aborted', () => (aborted = true));
          res.on('error', () => {});
          res.on('close', () => resolve({ length: res.headers['content-length'], received, aborted }));
        })
        .on('error', reject);
    });
    expect(outcome).toEqual({ length: String(data.length), received: 300_000, aborted: true });
    // The rule is spent: the next download is whole.
    expect((await bucket.file('cut/download.bin').download())[0].equals(data)).toBe(true);
  });

  it('cutAfterBytes 0 resets the connection before any response', async () => {
    emulator.faults.add({ methods: ['GET'], path: '/o/reset-me', cut: 'response', cutAfterBytes: 0, times: 1 });
    await expect(fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/reset-me`)).rejects.toThrow();
  });

  it('probability rules: every idempotent upload lands although 20% of writes fail with 503', async () => {
    const rule = emulator.faults.add({ methods: ['POST', 'PUT'], probability: 0.2, status: 503 });
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.from(`object ${i} ${randomBytes(8).toString('hex')}`));
    // With the default 3 retries, 1 run in ~16 lost an upload to four 503s in a row (40 × 0.2^4); with 10, about 1 in a million.
    const patient = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url, maxRetries: 10 }).bucket(bucket.name);
    await Promise.all(
      payloads.map((p, i) => patient.file(`prob/${i}`).save(p, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })),
    );
    expect(fired(rule)).toBeGreaterThan(0);
    emulator.faults.clear();
    const [files] = await bucket.getFiles({ prefix: 'prob/' });
    expect(files.length).toBe(payloads.length);
    for (const [i, p] of payloads.entries()) {
      expect((await bucket.file(`prob/${i}`).download())[0].equals(p)).toBe(true);
    }
  });

  it('latency rules delay matching requests and count what they hit', async () => {
    const rule = emulator.faults.add({ methods: ['GET'], path: '^/storage/v1/b/[^/]+$', latencyMs: 50 });
    await bucket.getMetadata();
    await bucket.getMetadata();
    expect(fired(rule)).toBe(2);
  });

  it('is controllable over HTTP with the admin client', async () => {
    const id = await injectFault(emulator.url, { methods: ['GET'], path: '/o/admin-target', status: 500, times: 5 });
    expect(await listFaults(emulator.url)).toEqual([expect.objectContaining({ id, status: 500, times: 5, fired: 0 })]);
    const res = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/admin-target`);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: number; errors: { reason: string }[] } };
    expect(body.error.code).toBe(500);
    expect((await listFaults(emulator.url))[0]).toMatchObject({ fired: 1, times: 4 });
    await removeFault(emulator.url, id);
    expect(await listFaults(emulator.url)).toEqual([]);
    await injectFault(emulator.url, { probability: 0.5, status: 503 });
    await clearFaults(emulator.url);
    expect(await listFaults(emulator.url)).toEqual([]);
    await expect(injectFault(emulator.url, { status: 503, probability: 2 })).rejects.toThrow(/probability/);
    await expect(injectFault(emulator.url, { methods: ['GET'] })).rejects.toThrow(/400/);
  });
});
