/**
 * Avro's binary primitives (specification, "Binary Encoding"): the base-128
 * varint, the zig-zag `long` over its whole 64-bit range (at most 10 bytes;
 * anything longer or wider is refused), `bytes`/`string` as a length then the
 * bytes, and the single-object encoding's header. Every hand-written encoder
 * and decoder of the platform uses these.
 */
import { fingerprintFromSingleObjectBytes, fingerprintToSingleObjectBytes } from './fingerprint.ts';
import { normalizeLong, type AvroLong } from './long.ts';
import { AppError } from '../errors.ts';

/** A zig-zag varint of a 64-bit value takes at most this many bytes. */
export const MAX_LONG_BYTES = 10;

/** What is wrong with malformed binary input, for callers that word their own refusal. */
export type AvroBinaryProblem = 'truncated' | 'longer than 10 bytes' | 'wider than 64 bits' | 'invalid length';

/** Malformed binary input (DECODE_FAILED): truncated, a varint beyond 64 bits, or a length that is negative or beyond what a buffer holds. */
export class AvroBinaryError extends AppError {
  readonly problem: AvroBinaryProblem;

  constructor(message: string, problem: AvroBinaryProblem) {
    super('DECODE_FAILED', { message, details: { problem } });
    this.name = 'AvroBinaryError';
    this.problem = problem;
  }
}

/** Below this magnitude, zig-zag and varint arithmetic on doubles is exact. */
const FAST_LIMIT = 2 ** 52;
const MASK64 = (1n << 64n) - 1n;

/** The base-128 varint of an unsigned integer below 2^64 (Avro's, and protobuf's), least significant group first. */
export function encodeVarint(n: number | bigint): Buffer {
  if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) {
    const out: number[] = [];
    let v = n;
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    return Buffer.from(out);
  }
  let v = BigInt(n);
  if (v < 0n || v > MASK64) throw new RangeError('varint out of range');
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** Avro `long` (or `int`): zig-zag, then varint. */
export function encodeLong(n: AvroLong): Buffer {
  if (typeof n === 'number' && Math.abs(n) < FAST_LIMIT) return encodeVarint(n >= 0 ? n * 2 : -n * 2 - 1);
  const v = BigInt(n);
  return encodeVarint(((v << 1n) ^ (v >> 63n)) & MASK64);
}

/** Bytes `writeLong` takes for a length or count `n` (a non-negative safe integer below 2^52), to size a buffer before writing. */
export function longLength(n: number): number {
  let bytes = 1;
  for (let z = n * 2; z >= 0x80; z = Math.floor(z / 0x80)) bytes++;
  return bytes;
}

/** Writes an Avro `long` at `pos` (room for {@link MAX_LONG_BYTES} assumed); returns the next offset. */
export function writeLong(buf: Buffer, pos: number, n: AvroLong): number {
  if (typeof n === 'number' && Math.abs(n) < FAST_LIMIT) {
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    while (z >= 0x80) {
      buf[pos++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    buf[pos++] = z;
    return pos;
  }
  const bytes = encodeLong(n);
  return pos + bytes.copy(buf, pos);
}

/** Reads an Avro `long` at `pos`: a safe integer as `number`, beyond as `bigint`. */
export function readLong(buf: Uint8Array, pos: number): { value: AvroLong; offset: number } {
  // Fast path: up to 7 bytes (49 bits) add up exactly in a double.
  let z = 0;
  let scale = 1;
  let i = pos;
  for (let k = 0; k < 7; k++) {
    if (i >= buf.length) throw new AvroBinaryError('truncated long', 'truncated');
    const b = buf[i++]!;
    z += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return { value: z % 2 === 0 ? z / 2 : -(z + 1) / 2, offset: i };
    scale *= 0x80;
  }
  // Beyond 49 bits, carry on from the 7 groups read above in BigInt.
  let big = BigInt(z);
  let shift = 49n;
  for (let k = 7; ; k++) {
    if (i >= buf.length) throw new AvroBinaryError('truncated long', 'truncated');
    const b = buf[i++]!;
    if (k === MAX_LONG_BYTES - 1) {
      if (b & 0x80) throw new AvroBinaryError('long longer than 10 bytes', 'longer than 10 bytes');
      // 9 groups hold 63 bits: the 10th may add only the 64th.
      if (b > 1) throw new AvroBinaryError('long wider than 64 bits', 'wider than 64 bits');
    }
    big |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) break;
  }
  return { value: normalizeLong((big >> 1n) ^ -(big & 1n)), offset: i };
}

/** A count or length: a `long` that must be a non-negative safe integer (what a buffer can hold). */
export function readLength(buf: Uint8Array, pos: number): { value: number; offset: number } {
  const r = readLong(buf, pos);
  if (typeof r.value !== 'number' || r.value < 0) throw new AvroBinaryError('invalid length', 'invalid length');
  return { value: r.value, offset: r.offset };
}

/** Avro `bytes` (and `string` of UTF-8): length, then the bytes. */
export function encodeBytes(b: Uint8Array): Buffer {
  return Buffer.concat([encodeLong(b.length), b]);
}

/** Reads Avro `bytes` at `pos` (a view into `buf`, not a copy). */
export function readBytes(buf: Buffer, pos: number): { value: Buffer; offset: number } {
  const len = readLength(buf, pos);
  const end = len.offset + len.value;
  if (end > buf.length) throw new AvroBinaryError('truncated bytes', 'truncated');
  return { value: buf.subarray(len.offset, end), offset: end };
}

/** The single-object encoding's marker, before the 8-byte fingerprint. */
export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01]);
export const SINGLE_OBJECT_HEADER_LENGTH = 10;

/** `C3 01` and the writer schema's fingerprint (16 hex digits), little-endian. */
export function singleObjectHeader(fingerprint: string): Buffer {
  return Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintToSingleObjectBytes(fingerprint)]);
}

/** The fingerprint and the datum of a single-object body; undefined when it does not start with the marker and a full fingerprint. */
export function parseSingleObject(body: Buffer): { fingerprint: string; datum: Buffer } | undefined {
  if (body.length < SINGLE_OBJECT_HEADER_LENGTH || body[0] !== 0xc3 || body[1] !== 0x01) return undefined;
  return { fingerprint: fingerprintFromSingleObjectBytes(body.subarray(2, SINGLE_OBJECT_HEADER_LENGTH)), datum: body.subarray(SINGLE_OBJECT_HEADER_LENGTH) };
}
