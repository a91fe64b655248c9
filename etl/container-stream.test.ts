import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AppError } from '../lib/errors.ts';
import { readContainer, writeContainer, type Codec } from '../lib/avro/container.ts';
import { ContainerBlockReader, ContainerStreamWriter, type RangeReader } from './container-stream.ts';

const schema = { type: 'record', name: 'R', fields: [{ name: 'b', type: 'bytes' }] };
const sync = Buffer.alloc(16, 9);

/** A range reader over bytes in memory that counts its reads. */
function rangesOf(bytes: Buffer): RangeReader & { reads: number } {
  const read = (async (offset: number, length: number) => {
    read.reads++;
    return bytes.subarray(offset, offset + length);
  }) as RangeReader & { reads: number };
  read.reads = 0;
  return read;
}

async function streamed(records: Buffer[], codec: Codec, blockBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const w = new ContainerStreamWriter({ schema, syncMarker: sync, codec, blockBytes, metadata: { 'x.k': 'v' } }, async (c) => {
    chunks.push(Buffer.from(c));
  });
  for (const r of records) await w.append(r);
  await w.end();
  return Buffer.concat(chunks);
}

async function blocksOf(bytes: Buffer, chunkBytes: number) {
  const reader = new ContainerBlockReader('f.avro', bytes.length, rangesOf(bytes), chunkBytes);
  await reader.open();
  const blocks = [];
  for (let b = await reader.next(); b !== undefined; b = await reader.next()) blocks.push({ count: b.count, data: Buffer.from(b.data) });
  return { blocks, reader };
}

const recordsArb = fc.array(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { maxLength: 200 });

describe('streamed Avro containers', () => {
  it('write exactly the bytes writeContainer writes (parts stay deterministic)', async () => {
    await fc.assert(
      fc.asyncProperty(recordsArb, fc.constantFrom<Codec>('null', 'deflate'), fc.integer({ min: 1, max: 4096 }), async (records, codec, blockBytes) => {
        const expected = writeContainer(records, { schema, syncMarker: sync, codec, blockBytes, metadata: { 'x.k': 'v' } });
        expect(await streamed(records, codec, blockBytes)).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('read back block by block through small ranges, as readContainer does', async () => {
    await fc.assert(
      fc.asyncProperty(recordsArb, fc.constantFrom<Codec>('null', 'deflate'), fc.integer({ min: 1, max: 100 }), async (records, codec, chunkBytes) => {
        const bytes = writeContainer(records, { schema, syncMarker: sync, codec, blockBytes: 500, metadata: { 'x.k': 'v' } });
        const whole = readContainer(bytes);
        const { blocks, reader } = await blocksOf(bytes, chunkBytes);
        expect(blocks).toEqual(whole.blocks);
        expect(reader.schema).toEqual(schema);
        expect(reader.metadata).toEqual({ 'x.k': 'v' });
        expect(reader.codec).toBe(codec);
      }),
      { numRuns: 60 },
    );
  });

  it('reads a large file through a bounded number of bytes at a time', async () => {
    const records = Array.from({ length: 20_000 }, (_, i) => Buffer.from(`record-${i}-`.repeat(5)));
    const bytes = writeContainer(records, { schema, syncMarker: sync, codec: 'deflate', blockBytes: 16 * 1024 });
    const read = rangesOf(bytes);
    let largest = 0;
    const reader = new ContainerBlockReader('big.avro', bytes.length, async (o, l) => {
      largest = Math.max(largest, l);
      return read(o, l);
    }, 4096);
    await reader.open();
    let n = 0;
    for (let b = await reader.next(); b !== undefined; b = await reader.next()) n += b.count;
    expect(n).toBe(records.length);
    expect(largest).toBeLessThanOrEqual(16 * 1024);
    expect(read.reads).toBeGreaterThan(bytes.length / (16 * 1024));
  });

  it('names the file in the error when it is corrupt or shorter than listed', async () => {
    const bytes = writeContainer([Buffer.from('abc'), Buffer.from('def')], { schema, syncMarker: sync, codec: 'null', blockBytes: 1 });
    const corrupt = Buffer.from(bytes);
    corrupt[corrupt.length - 1] = corrupt.at(-1)! ^ 0xff;
    await expect(blocksOf(corrupt, 8)).rejects.toThrow(/f\.avro: corrupt block or sync marker/);
    const short = new ContainerBlockReader('short.avro', bytes.length + 10, rangesOf(bytes), 8);
    await short.open();
    const drain = async (): Promise<void> => {
      while ((await short.next()) !== undefined);
    };
    await expect(drain()).rejects.toThrow(AppError);
    await expect(blocksOf(Buffer.from('not avro at all'), 4)).rejects.toThrow(/not an Avro container file/);
  });
});
