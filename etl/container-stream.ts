/**
 * Avro object-container files read and written a block at a time, so a file
 * of any size passes through a fixed amount of memory: the reader pulls byte
 * ranges on demand and holds one block; the writer holds one block and hands
 * finished bytes to a sink (an upload stream). The writer's bytes are exactly
 * `writeContainer`'s for the same records and options (deterministic parts).
 */
import zlib from 'node:zlib';
import { AppError } from '../lib/errors.ts';
import { AvroBinaryError, encodeBytes, encodeLong, readLong } from '../lib/avro/binary.ts';
import type { Codec, ContainerOptions } from '../lib/avro/container.ts';

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]);
const SYNC_SIZE = 16;

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export type RangeReader = (offset: number, length: number) => Promise<Buffer>;

/** One block of records: their count and the decompressed bytes. */
export interface ContainerBlock {
  count: number;
  data: Buffer;
}

/**
 * Pulls a container file's blocks one by one through `read`, `chunkBytes` at
 * a time with one read ahead (so the parser seldom waits), holding those two
 * chunks and the current block. Throws DECODE_FAILED (naming `name`) on
 * anything malformed.
 */
export class ContainerBlockReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Where the next read starts. */
  private fileOffset = 0;
  private ahead: Promise<Buffer> | undefined;
  private sync: Buffer = Buffer.alloc(0);
  codec: Codec = 'null';
  schema: unknown;
  metadata: Record<string, string> = {};

  constructor(
    private readonly name: string,
    private readonly size: number,
    private readonly read: RangeReader,
    private readonly chunkBytes = 32 * 1024,
  ) {}

  private fail(what: string): never {
    throw new AppError('DECODE_FAILED', { message: `${this.name}: ${what}` });
  }

  /** Starts reading the next chunk, if any: one read is kept ahead of the parser. */
  private readAhead(): void {
    if (this.ahead !== undefined || this.fileOffset >= this.size) return;
    const length = Math.min(this.chunkBytes, this.size - this.fileOffset);
    const read = this.read(this.fileOffset, length).then((chunk) => {
      if (chunk.length !== length) this.fail('shorter than its listed size');
      return chunk;
    });
    read.catch(() => undefined); // surfaces when awaited
    this.ahead = read;
    this.fileOffset += length;
  }

  /** Makes at least `n` bytes available from `pos` (fewer only at the end of the file). */
  private async fill(n: number): Promise<void> {
    while (this.buf.length - this.pos < n) {
      this.readAhead();
      if (this.ahead === undefined) return;
      const chunk = await this.ahead;
      this.ahead = undefined;
      const rest = this.buf.subarray(this.pos);
      this.buf = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
      this.pos = 0;
    }
    this.readAhead();
  }

  private async long(): Promise<number> {
    await this.fill(10);
    let r: ReturnType<typeof readLong>;
    try {
      r = readLong(this.buf, this.pos);
    } catch (err) {
      if (err instanceof AvroBinaryError) this.fail(err.message);
      throw err;
    }
    if (typeof r.value !== 'number') this.fail('a count or length beyond 2^53');
    this.pos = r.offset;
    return r.value;
  }

  private async bytes(n: number): Promise<Buffer> {
    if (n < 0) this.fail('negative length');
    await this.fill(n);
    if (this.buf.length - this.pos < n) this.fail('truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Reads the header (magic, metadata, sync marker). */
  async open(): Promise<void> {
    if (!(await this.bytes(4)).equals(MAGIC)) this.fail('not an Avro container file');
    const metadata: Record<string, string> = {};
    for (;;) {
      let count = await this.long();
      if (count === 0) break;
      if (count < 0) {
        count = -count;
        await this.long(); // block size, unused
      }
      for (let i = 0; i < count; i++) {
        const key = (await this.bytes(await this.long())).toString('utf8');
        metadata[key] = (await this.bytes(await this.long())).toString('utf8');
      }
    }
    this.sync = Buffer.from(await this.bytes(SYNC_SIZE));
    const codec = metadata['avro.codec'] ?? 'null';
    if (codec !== 'null' && codec !== 'deflate') this.fail(`unsupported codec ${codec}`);
    this.codec = codec;
    const schemaText = metadata['avro.schema'];
    if (schemaText === undefined) this.fail('container has no schema');
    this.schema = JSON.parse(schemaText) as unknown;
    delete metadata['avro.schema'];
    delete metadata['avro.codec'];
    this.metadata = metadata;
  }

  /** The next block, or undefined at the end of the file. */
  async next(opts: { decompress: boolean } = { decompress: true }): Promise<ContainerBlock | undefined> {
    await this.fill(1);
    if (this.pos >= this.buf.length) return undefined;
    const count = await this.long();
    const size = await this.long();
    if (count < 0 || size < 0) this.fail('corrupt block header');
    const data = await this.bytes(size);
    if (!(await this.bytes(SYNC_SIZE)).equals(this.sync)) this.fail('corrupt block or sync marker');
    if (!opts.decompress) return { count, data };
    return { count, data: this.codec === 'deflate' ? zlib.inflateRawSync(data) : data };
  }
}

/** Where a streaming writer's bytes go; a returned promise is awaited (backpressure). */
export type ByteSink = (chunk: Buffer) => void | Promise<void>;

/**
 * Writes a container file block by block into `sink`. Call `append` per
 * record (await it when it returns a promise) and `end` once.
 */
export class ContainerStreamWriter {
  private block: Buffer;
  private size = 0;
  private count = 0;
  private readonly codec: Codec;
  private readonly blockBytes: number;
  private started = false;
  records = 0;

  constructor(
    private readonly opts: ContainerOptions,
    private readonly sink: ByteSink,
  ) {
    if (opts.syncMarker.length !== SYNC_SIZE) throw new AppError('INTERNAL', { message: 'sync marker must be 16 bytes' });
    this.codec = opts.codec ?? 'deflate';
    this.blockBytes = opts.blockBytes ?? 256 * 1024;
    this.block = Buffer.allocUnsafe(this.blockBytes + 4096);
  }

  private header(): Buffer {
    const meta = [
      ['avro.codec', Buffer.from(this.codec)],
      ['avro.schema', Buffer.from(JSON.stringify(this.opts.schema))],
      ...Object.entries(this.opts.metadata ?? {}).map(([k, v]): [string, Buffer] => [k, Buffer.from(v)]),
    ].sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0)) as [string, Buffer][];
    const parts: Buffer[] = [MAGIC, encodeLong(meta.length)];
    for (const [k, v] of meta) parts.push(encodeBytes(Buffer.from(k)), encodeBytes(v));
    parts.push(encodeLong(0), this.opts.syncMarker);
    return Buffer.concat(parts);
  }

  /** Adds one record's Avro binary. */
  append(record: Buffer): void | Promise<void> {
    const first = this.reserve(record.length);
    record.copy(this.block, this.size);
    this.size += record.length;
    return this.added(first);
  }

  /**
   * Adds one record made of `src[aFrom, aTo)` then `src[bFrom, bTo)`, copied
   * straight into the block (the close's hot path: no Buffer per record).
   */
  appendRanges(src: Buffer, aFrom: number, aTo: number, bFrom: number, bTo: number): void | Promise<void> {
    const first = this.reserve(aTo - aFrom + (bTo - bFrom));
    this.size = copyRange(src, aFrom, aTo, this.block, this.size);
    this.size = copyRange(src, bFrom, bTo, this.block, this.size);
    return this.added(first);
  }

  /** Writes the header before the first record and makes room for `length` more bytes. */
  private reserve(length: number): void | Promise<void> {
    const first = this.started ? undefined : this.sink(this.header());
    this.started = true;
    if (this.size + length > this.block.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.block.length * 2, this.size + length));
      this.block.copy(grown, 0, 0, this.size);
      this.block = grown;
    }
    return first;
  }

  /** Counts the record just copied in and flushes a full block. */
  private added(first: void | Promise<void>): void | Promise<void> {
    this.count++;
    this.records++;
    if (this.size < this.blockBytes) return first;
    const flushed = this.flush();
    if (first === undefined) return flushed;
    return Promise.resolve(first).then(() => flushed);
  }

  private flush(): void | Promise<void> {
    if (this.count === 0) return;
    const raw = this.block.subarray(0, this.size);
    const data = this.codec === 'deflate' ? zlib.deflateRawSync(raw) : raw; // concat copies it out of the reused block
    const out = Buffer.concat([encodeLong(this.count), encodeLong(data.length), data, this.opts.syncMarker]);
    this.count = 0;
    this.size = 0;
    return this.sink(out);
  }

  /** Writes the last block (and the header of an empty file). */
  async end(): Promise<void> {
    if (!this.started) await this.sink(this.header());
    this.started = true;
    await this.flush();
  }
}

/** Copies `src[from, to)` into `dst` at `pos`; returns the end. Short ranges byte by byte: `Buffer#copy` makes a view per call. */
function copyRange(src: Buffer, from: number, to: number, dst: Buffer, pos: number): number {
  if (to - from > 64) return pos + src.copy(dst, pos, from, to);
  for (let i = from; i < to; i++) dst[pos++] = src[i]!;
  return pos;
}
