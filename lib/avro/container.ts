/**
 * Avro object-container files, written and read synchronously from
 * already-encoded record bytes. Deterministic: the sync marker is given and
 * the header's metadata keys are sorted, so the same records give the same
 * bytes on every run (idempotent close). Codecs: `null` and `deflate`.
 */
import zlib from 'node:zlib';
import { encodeBytes, encodeLong, readBytes, readLength, readLong } from './binary.ts';
import { AppError } from '../errors.ts';

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]);

export type Codec = 'null' | 'deflate';

export interface ContainerOptions {
  /** Writer schema of the records (JSON). */
  schema: unknown;
  /** 16 bytes. */
  syncMarker: Buffer;
  codec?: Codec;
  /** Extra header metadata (UTF-8 values). */
  metadata?: Record<string, string>;
  /** Uncompressed bytes per block before starting a new one. */
  blockBytes?: number;
  /** zlib level of the `deflate` codec (default: zlib's, 6). */
  level?: number;
}

/** The bytes of a container file holding `records` (each one record's Avro binary). */
export function writeContainer(records: readonly Buffer[], opts: ContainerOptions): Buffer {
  if (opts.syncMarker.length !== 16) throw new AppError('INTERNAL', { message: 'sync marker must be 16 bytes' });
  const codec = opts.codec ?? 'deflate';
  const blockBytes = opts.blockBytes ?? 256 * 1024;
  const meta: [string, Buffer][] = [
    ['avro.codec', Buffer.from(codec)],
    ['avro.schema', Buffer.from(JSON.stringify(opts.schema))],
    ...Object.entries(opts.metadata ?? {}).map(([k, v]): [string, Buffer] => [k, Buffer.from(v)]),
  ].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) as [string, Buffer][];
  const parts: Buffer[] = [MAGIC, encodeLong(meta.length)];
  for (const [k, v] of meta) parts.push(encodeBytes(Buffer.from(k)), encodeBytes(v));
  parts.push(encodeLong(0), opts.syncMarker);

  let block: Buffer[] = [];
  let size = 0;
  const flush = (): void => {
    if (block.length === 0) return;
    const raw = Buffer.concat(block, size);
    const data = codec === 'deflate' ? zlib.deflateRawSync(raw, opts.level === undefined ? {} : { level: opts.level }) : raw;
    parts.push(encodeLong(block.length), encodeLong(data.length), data, opts.syncMarker);
    block = [];
    size = 0;
  };
  for (const r of records) {
    block.push(r);
    size += r.length;
    if (size >= blockBytes) flush();
  }
  flush();
  return Buffer.concat(parts);
}

export interface ContainerContents {
  schema: unknown;
  codec: Codec;
  metadata: Record<string, string>;
  /** Decompressed blocks and their record counts; records are decoded by the caller's type. */
  blocks: { count: number; data: Buffer }[];
}

/** Parses a container file; throws DECODE_FAILED on anything malformed. */
export function readContainer(buf: Buffer): ContainerContents {
  try {
    return parseContainer(buf);
  } catch (err) {
    if (err instanceof AppError) throw err;
    // Varints, the schema's JSON, a deflate stream: whatever is malformed, the file is.
    throw new AppError('DECODE_FAILED', { message: `malformed container file: ${err instanceof Error ? err.message : String(err)}`, cause: err });
  }
}

function parseContainer(buf: Buffer): ContainerContents {
  if (buf.length < 4 || !buf.subarray(0, 4).equals(MAGIC)) throw new AppError('DECODE_FAILED', { message: 'not an Avro container file' });
  let pos = 4;
  const metadata: Record<string, string> = {};
  for (;;) {
    const n = readLong(buf, pos);
    pos = n.offset;
    if (n.value === 0) break;
    if (typeof n.value !== 'number') throw new AppError('DECODE_FAILED', { message: 'invalid metadata block count' });
    let count = n.value;
    if (count < 0) {
      count = -count;
      pos = readLength(buf, pos).offset; // block size, unused
    }
    for (let i = 0; i < count; i++) {
      const key = readBytes(buf, pos);
      const value = readBytes(buf, key.offset);
      metadata[key.value.toString('utf8')] = value.value.toString('utf8');
      pos = value.offset;
    }
  }
  if (pos + 16 > buf.length) throw new AppError('DECODE_FAILED', { message: 'truncated header' });
  const sync = buf.subarray(pos, pos + 16);
  pos += 16;
  const codec = (metadata['avro.codec'] ?? 'null') as Codec;
  if (codec !== 'null' && codec !== 'deflate') throw new AppError('DECODE_FAILED', { message: `unsupported codec ${codec}` });
  const schemaText = metadata['avro.schema'];
  if (schemaText === undefined) throw new AppError('DECODE_FAILED', { message: 'container has no schema' });
  const blocks: { count: number; data: Buffer }[] = [];
  while (pos < buf.length) {
    const c = readLength(buf, pos);
    const data = readBytes(buf, c.offset);
    const end = data.offset;
    if (end + 16 > buf.length || !buf.subarray(end, end + 16).equals(sync)) {
      throw new AppError('DECODE_FAILED', { message: 'corrupt block or sync marker' });
    }
    blocks.push({ count: c.value, data: codec === 'deflate' ? zlib.inflateRawSync(data.value) : Buffer.from(data.value) });
    pos = end + 16;
  }
  delete metadata['avro.schema'];
  delete metadata['avro.codec'];
  return { schema: JSON.parse(schemaText) as unknown, codec, metadata, blocks };
}

/** Decodes every record of a container with `decode` (returns the value and the next offset). */
export function decodeRecords<T>(contents: ContainerContents, decode: (buf: Buffer, pos: number) => { value: T; offset: number }): T[] {
  const out: T[] = [];
  for (const block of contents.blocks) {
    let pos = 0;
    for (let i = 0; i < block.count; i++) {
      const r = decode(block.data, pos);
      if (r.offset < 0) throw new AppError('DECODE_FAILED', { message: 'truncated record' });
      out.push(r.value);
      pos = r.offset;
    }
  }
  return out;
}
