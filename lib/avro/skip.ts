/**
 * Walking Avro binary without building values: `compileSkipper(type)` gives a
 * function that checks one datum of `type` at a position and returns where
 * it ends, throwing `MalformedDatumError` on anything malformed (truncated, a
 * union or enum index out of range, a negative length, a varint wider than
 * 64 bits, a boolean other than 0/1, more than `MAX_DATUM_ITEMS` items: a
 * walk of a new datum calls `startDatum` first, as `isExactDatum` does). The
 * ETL uses it where only the shape of a message matters (the identity path
 * keeps the bytes), and the encrypting scan (lib/privacy/encoded-scan.ts) to
 * step over subtrees without personal data, so neither allocates a value per
 * field.
 */
import type avro from 'avsc';
import { AppError } from '../errors.ts';

/** Checks one datum starting at `pos`, returns the position after it. */
export type Skipper = (buf: Buffer, pos: number) => number;

/**
 * Reads the varint at `pos`; its zigzag-decoded value is left in `varint.value`
 * (exact when |value| ≤ 2^53; the skipper only needs lengths, counts and
 * indexes, which must be small) and the position after it is returned. One
 * shared cell instead of a result object per call: the hot path allocates nothing.
 */
export const varint = { value: 0 };

/** What is wrong with a datum that does not match its type. */
export type DatumProblem = 'truncated' | 'longer than 10 bytes' | 'wider than 64 bits' | 'invalid length' | 'invalid union or enum index' | 'invalid boolean' | 'too many items';

/** A datum that does not match its type (DECODE_FAILED). */
export class MalformedDatumError extends AppError {
  readonly problem: DatumProblem;

  constructor(problem: DatumProblem) {
    super('DECODE_FAILED', { message: `malformed Avro datum: ${problem}`, details: { problem } });
    this.name = 'MalformedDatumError';
    this.problem = problem;
  }
}

function malformed(problem: DatumProblem): MalformedDatumError {
  return new MalformedDatumError(problem);
}

export function readVarint(buf: Buffer, pos: number): number {
  let raw = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw malformed('truncated');
    const b = buf[pos++]!;
    if (i === 9 && b > 1) throw malformed('wider than 64 bits');
    raw += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      // zigzag: even → n/2, odd → -(n+1)/2 (floating point: exact for the small values callers use).
      varint.value = raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
      return pos;
    }
    scale *= 128;
  }
  throw malformed('longer than 10 bytes');
}

/** A length or count: a non-negative varint within the buffer's reach. */
function readLengthAt(buf: Buffer, pos: number): number {
  const next = readVarint(buf, pos);
  if (varint.value < 0 || !Number.isSafeInteger(varint.value)) throw malformed('invalid length');
  return next;
}

function skipBytes(buf: Buffer, pos: number): number {
  const start = readLengthAt(buf, pos);
  const end = start + varint.value;
  if (end > buf.length) throw malformed('truncated');
  return end;
}

function fixedSkipper(size: number): Skipper {
  return (buf, pos) => {
    if (pos + size > buf.length) throw malformed('truncated');
    return pos + size;
  };
}

/**
 * Most items one datum's arrays and maps may hold together, whatever their
 * width (the event service's bound too). Items of zero width (`null`, an empty
 * record) take no bytes, so without it a 9-byte message could declare 2^52 of
 * them and keep a walk, or a decoder, busy for days.
 */
export const MAX_DATUM_ITEMS = 1_000_000;
let itemsLeft = MAX_DATUM_ITEMS;

/** Starts walking a new datum: its arrays and maps get the whole `MAX_DATUM_ITEMS` again. */
export function startDatum(): void {
  itemsLeft = MAX_DATUM_ITEMS;
}

/** Counts an array or map block's items against the datum's bound (`startDatum`). */
export function takeItems(count: number): void {
  itemsLeft -= count;
  if (itemsLeft < 0) throw malformed('too many items');
}

/** Array and map blocks: a count (negative: followed by the block's byte size), items, …, 0. */
function blocksSkipper(item: Skipper): Skipper {
  return (buf, pos) => {
    for (;;) {
      pos = readVarint(buf, pos);
      let count = varint.value;
      if (count === 0) return pos;
      if (!Number.isSafeInteger(count)) throw malformed('invalid length');
      if (count < 0) {
        count = -count;
        pos = readLengthAt(buf, pos);
      }
      takeItems(count);
      for (let i = 0; i < count; i++) pos = item(buf, pos);
    }
  };
}

const cache = new WeakMap<avro.Type, Skipper>();

/** The skipper of an avsc type (built with `avroType`, lib/avro/long.ts); cached per type object. */
export function compileSkipper(type: avro.Type): Skipper {
  const known = cache.get(type);
  if (known !== undefined) return known;
  // Recursive records reach themselves: the entry is set before the fields are compiled.
  const slot: { skip?: Skipper } = {};
  cache.set(type, (buf, pos) => slot.skip!(buf, pos));
  slot.skip = build(type);
  cache.set(type, slot.skip);
  return slot.skip;
}

function build(type: avro.Type): Skipper {
  const t = type as avro.Type & {
    fields?: { type: avro.Type }[];
    itemsType?: avro.Type;
    valuesType?: avro.Type;
    types?: avro.Type[];
    size?: number;
    symbols?: string[];
    underlyingType?: avro.Type;
  };
  const name = t.typeName;
  if (name.startsWith('logical:')) return compileSkipper(t.underlyingType!);
  switch (name) {
    case 'null':
      return (_buf, pos) => pos;
    case 'boolean':
      return (buf, pos) => {
        if (pos >= buf.length) throw malformed('truncated');
        if (buf[pos]! > 1) throw malformed('invalid boolean');
        return pos + 1;
      };
    case 'int':
    case 'long':
    case 'abstract:long':
      return readVarint;
    case 'float':
      return fixedSkipper(4);
    case 'double':
      return fixedSkipper(8);
    case 'string':
    case 'bytes':
      return skipBytes;
    case 'fixed':
      return fixedSkipper(t.size!);
    case 'enum': {
      const symbols = t.symbols!.length;
      return (buf, pos) => {
        const next = readVarint(buf, pos);
        if (varint.value < 0 || varint.value >= symbols) throw malformed('invalid union or enum index');
        return next;
      };
    }
    case 'array':
      return blocksSkipper(compileSkipper(t.itemsType!));
    case 'map': {
      const value = compileSkipper(t.valuesType!);
      return blocksSkipper((buf, pos) => value(buf, skipBytes(buf, pos)));
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const branches = t.types!.map(compileSkipper);
      return (buf, pos) => {
        const next = readVarint(buf, pos);
        const branch = branches[varint.value];
        if (branch === undefined) throw malformed('invalid union or enum index');
        return branch(buf, next);
      };
    }
    case 'record':
    case 'error': {
      const fields = t.fields!.map((f) => compileSkipper(f.type));
      return (buf, pos) => {
        for (let i = 0; i < fields.length; i++) pos = fields[i]!(buf, pos);
        return pos;
      };
    }
    default:
      throw new Error(`no skipper for Avro type ${name}`);
  }
}

/** True when `buf` holds exactly one datum of the skipper's type (within `MAX_DATUM_ITEMS`). */
export function isExactDatum(skip: Skipper, buf: Buffer): boolean {
  startDatum();
  try {
    return skip(buf, 0) === buf.length;
  } catch (err) {
    if (err instanceof MalformedDatumError) return false;
    throw err;
  }
}

/**
 * The value `buf` holds if it is exactly one datum of `type`, else undefined.
 * Walked first: avsc's decoder has no bound, so a hostile datum could make it
 * allocate or loop for ever.
 */
export function decodeExactDatum(type: avro.Type, buf: Buffer): { value: unknown } | undefined {
  if (!isExactDatum(compileSkipper(type), buf)) return undefined;
  try {
    return { value: type.decode(buf, 0).value as unknown };
  } catch {
    return undefined; // a value avsc refuses (e.g. a logical type's): not one datum it can deliver
  }
}
