/**
 * Avro single-object encoding: `C3 01`, the writer schema's CRC-64-AVRO
 * fingerprint (8 bytes, little-endian), then the Avro binary datum.
 *
 * Before avsc decodes a datum we walk it once against the writer schema with
 * hard bounds (`checkDatumBounds`): a hostile datum can otherwise declare an
 * array of 2^62 zero-width items and make the decoder allocate or loop for
 * ever. The walk reads only lengths and counts, never builds values.
 */
import avro from 'avsc';
import { fingerprintFromSingleObjectBytes } from '../../lib/avro/fingerprint.ts';

export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01]);
const HEADER_LENGTH = 10;

export interface SingleObject {
  /** Writer schema fingerprint, 16 hex digits (as in the registry). */
  fingerprint: string;
  datum: Buffer;
}

/** Splits a single-object body; undefined when it does not start with the magic and a full fingerprint. */
export function parseSingleObject(body: Buffer): SingleObject | undefined {
  if (body.length < HEADER_LENGTH || body[0] !== 0xc3 || body[1] !== 0x01) return undefined;
  return { fingerprint: fingerprintFromSingleObjectBytes(body.subarray(2, HEADER_LENGTH)), datum: body.subarray(HEADER_LENGTH) };
}

/** Builds a single-object body (producers, tests and benchmarks). */
export function toSingleObject(fingerprintBytes: Buffer, datum: Buffer): Buffer {
  return Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytes, datum]);
}

class OutOfBounds extends Error {}

/** Most items one datum may hold in all its arrays and maps together, whatever their width. */
const MAX_ITEMS = 1_000_000;

/**
 * Checks that `datum` is exactly one well-formed value of `type` as far as
 * lengths, counts, union indexes and enum indexes go, within `MAX_ITEMS`.
 * Returns a problem description, or undefined when the datum is safe to decode.
 */
export function checkDatumBounds(type: avro.Type, datum: Buffer): string | undefined {
  const state = { pos: 0, items: 0 };
  try {
    walk(type, datum, state);
  } catch (err) {
    if (err instanceof OutOfBounds) return err.message;
    if (err instanceof RangeError) return 'nested too deeply';
    throw err;
  }
  if (state.pos !== datum.length) return `${datum.length - state.pos} trailing bytes after the datum`;
  return undefined;
}

function readLong(buf: Buffer, state: { pos: number }): number {
  let n = 0;
  let shift = 1;
  let b: number;
  let bytes = 0;
  do {
    if (state.pos >= buf.length) throw new OutOfBounds('datum truncated');
    b = buf[state.pos++]!;
    if (++bytes > 10) throw new OutOfBounds('varint longer than 10 bytes');
    n += (b & 0x7f) * shift;
    shift *= 128;
  } while (b & 0x80);
  // zig-zag; precision loss beyond 2^53 only matters for values we reject as too large anyway.
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

function skip(buf: Buffer, state: { pos: number }, len: number): void {
  if (len < 0) throw new OutOfBounds('negative length');
  if (state.pos + len > buf.length) throw new OutOfBounds('datum truncated');
  state.pos += len;
}

function walk(type: avro.Type, buf: Buffer, state: { pos: number; items: number }): void {
  switch (type.typeName) {
    case 'null':
      return;
    case 'boolean':
      return skip(buf, state, 1);
    case 'int':
    case 'long':
      readLong(buf, state);
      return;
    case 'float':
      return skip(buf, state, 4);
    case 'double':
      return skip(buf, state, 8);
    case 'string':
    case 'bytes':
      return skip(buf, state, readLong(buf, state));
    case 'fixed':
      return skip(buf, state, (type as avro.types.FixedType).size);
    case 'enum': {
      const i = readLong(buf, state);
      if (i < 0 || i >= (type as avro.types.EnumType).symbols.length) throw new OutOfBounds('enum index out of range');
      return;
    }
    case 'array':
    case 'map': {
      const isMap = type.typeName === 'map';
      const inner = isMap ? (type as avro.types.MapType).valuesType : (type as avro.types.ArrayType).itemsType;
      for (;;) {
        let n = readLong(buf, state);
        if (n === 0) return;
        if (n < 0) {
          n = -n;
          readLong(buf, state); // block size in bytes
        }
        state.items += n;
        if (state.items > MAX_ITEMS) throw new OutOfBounds(`more than ${MAX_ITEMS} array or map items`);
        for (let i = 0; i < n; i++) {
          if (isMap) skip(buf, state, readLong(buf, state));
          walk(inner, buf, state);
        }
      }
    }
    case 'record':
    case 'error':
      for (const f of (type as avro.types.RecordType).fields) walk(f.type, buf, state);
      return;
    default: {
      if (type.typeName.startsWith('union')) {
        const branches = (type as avro.types.WrappedUnionType).types;
        const i = readLong(buf, state);
        const branch = branches[i];
        if (branch === undefined) throw new OutOfBounds('union branch index out of range');
        return walk(branch, buf, state);
      }
      if (type.typeName.startsWith('logical:')) {
        return walk((type as unknown as { underlyingType: avro.Type }).underlyingType, buf, state);
      }
      throw new OutOfBounds(`unsupported Avro type ${type.typeName}`);
    }
  }
}
