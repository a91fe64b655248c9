/**
 * Reads an Avro object container file held in memory: the header (writer
 * schema, codec, sync marker) and then its records, block by block. Codecs:
 * `null` and `deflate` (what avsc and our ETL write). Records are decoded
 * with {@link avroType} so longs are exact.
 */
import zlib from 'node:zlib';
import type avro from 'avsc';
import { avroType } from '../../lib/avro/long.ts';
import { errors } from './errors.ts';

const MAGIC = Buffer.from('Obj\x01', 'latin1');
/** Largest inflated block: writers use kilobytes to a few megabytes; this bounds a deflate bomb. */
const MAX_BLOCK_BYTES = 64 * 1024 * 1024;

export interface AvroFile {
  /** The writer schema, as parsed JSON. */
  schema: unknown;
  /** Calls `onRecord` for each record in file order. */
  forEachRecord(onRecord: (record: unknown) => void): void;
}

/** Parses a container file's header; throws a 400 `invalid` naming `uri` if it is not one. */
export function openAvroFile(uri: string, bytes: Buffer): AvroFile {
  const bad = (why: string): Error => errors.invalid(`Error while reading data, error message: The Apache Avro library failed to parse the header with the following error: ${why} File: ${uri}`);
  if (bytes.length < 4 || !bytes.subarray(0, 4).equals(MAGIC)) throw bad('Invalid data file. Magic does not match');
  const reader = new Reader(bytes, 4);
  const meta = new Map<string, Buffer>();
  try {
    for (let n = reader.long(); n !== 0; n = reader.long()) {
      if (n < 0) {
        reader.long(); // block size in bytes, not needed
        n = -n;
      }
      for (let i = 0; i < n; i++) meta.set(reader.bytes().toString('utf8'), reader.bytes());
    }
  } catch {
    throw bad('truncated header');
  }
  const sync = bytes.subarray(reader.pos, reader.pos + 16);
  if (sync.length !== 16) throw bad('truncated header');
  reader.pos += 16;
  const schemaBytes = meta.get('avro.schema');
  if (schemaBytes === undefined) throw bad('no avro.schema in the header');
  let schema: unknown;
  try {
    schema = JSON.parse(schemaBytes.toString('utf8'));
  } catch {
    throw bad('avro.schema is not JSON');
  }
  const codec = meta.get('avro.codec')?.toString('utf8') ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') throw errors.invalid(`Avro codec ${codec} is not supported by the emulator (null and deflate are). File: ${uri}`);
  let type: avro.Type;
  try {
    type = avroType(schema);
  } catch (err) {
    throw bad(`invalid schema: ${err instanceof Error ? err.message : String(err)}`);
  }
  const start = reader.pos;
  return {
    schema,
    forEachRecord(onRecord) {
      const blocks = new Reader(bytes, start);
      while (blocks.pos < bytes.length) {
        const corrupt = (why: string): Error => errors.invalid(`Error while reading data, error message: Avro parsing error in file ${uri} at byte ${blocks.pos}: ${why}`);
        let count: number;
        let size: number;
        try {
          count = blocks.long();
          size = blocks.long();
        } catch {
          throw corrupt('truncated block header');
        }
        if (count < 0 || size < 0 || blocks.pos + size + 16 > bytes.length) throw corrupt('truncated block');
        const raw = bytes.subarray(blocks.pos, blocks.pos + size);
        blocks.pos += size;
        if (!bytes.subarray(blocks.pos, blocks.pos + 16).equals(sync)) throw corrupt('sync marker does not match');
        blocks.pos += 16;
        let data: Buffer;
        try {
          data = codec === 'deflate' ? zlib.inflateRawSync(raw, { maxOutputLength: MAX_BLOCK_BYTES }) : raw;
        } catch {
          throw corrupt(`deflate data is corrupt or inflates beyond ${MAX_BLOCK_BYTES} bytes`);
        }
        let pos = 0;
        for (let i = 0; i < count; i++) {
          let decoded: { value: unknown; offset: number };
          try {
            decoded = type.decode(data, pos);
          } catch {
            throw corrupt('record cannot be decoded with the writer schema');
          }
          if (decoded.offset < 0) throw corrupt('block holds fewer records than its count');
          pos = decoded.offset;
          onRecord(decoded.value);
        }
        if (pos !== data.length) throw corrupt('block holds more bytes than its records');
      }
    },
  };
}

/** Zig-zag varints of the header and block framing (small values: numbers are exact). */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
  ) {}

  long(): number {
    let n = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated');
      n += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      shift *= 128;
    }
    throw new Error('varint too long');
  }

  bytes(): Buffer {
    const len = this.long();
    if (len < 0 || this.pos + len > this.buf.length) throw new Error('truncated');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
}
