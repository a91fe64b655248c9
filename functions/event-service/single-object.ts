/**
 * Avro single-object encoding: `C3 01`, the writer schema's CRC-64-AVRO
 * fingerprint (8 bytes, little-endian), then the Avro binary datum.
 *
 * Before avsc decodes a datum we walk it once against the writer schema
 * (`checkDatum`), with hard bounds (a hostile datum can otherwise declare an
 * array of 2^62 zero-width items and make the decoder allocate or loop for
 * ever) and the value checks avsc's decoder does not make but Pub/Sub's
 * schema validation and an exact store need (datum-limits.ts): ints within 32
 * bits, longs within 64, strings and map keys valid UTF-8, booleans 0 or 1,
 * nesting depth. The walk reads only lengths, counts and scalars, never builds
 * values; a datum it accepts is exactly a value of the type, so it can be
 * published as it is. The header and every varint are read with
 * lib/avro/binary.ts (the platform's one set of binary primitives); its
 * errors become this walk's refusals, naming the field.
 */
import { isUtf8 } from 'node:buffer';
import avro from 'avsc';
import { AvroBinaryError, readLength, readLong, SINGLE_OBJECT_MAGIC, type AvroBinaryProblem } from '../../lib/avro/binary.ts';
import type { AvroLong } from '../../lib/avro/long.ts';
import { MAX_DATUM_ITEMS } from '../../lib/avro/skip.ts';
import { AppError } from '../../lib/errors.ts';
import { INT_MAX, INT_MIN, MAX_NESTING_DEPTH, PROTO_KEY } from './datum-limits.ts';

export { parseSingleObject } from '../../lib/avro/binary.ts';

/** Builds a single-object body from the fingerprint's 8 bytes (producers, tests and benchmarks). */
export function toSingleObject(fingerprintBytes: Buffer, datum: Buffer): Buffer {
  return Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytes, datum]);
}

/** A datum the walk refuses (EVENT_INVALID); its message is the problem, the walk adds the field. */
class Refusal extends AppError {
  constructor(problem: string) {
    super('EVENT_INVALID', { message: problem });
    this.name = 'Refusal';
  }
}

/** Most items one datum may hold in all its arrays and maps together, whatever their width (the ETL's walk has the same bound). */
const MAX_ITEMS = MAX_DATUM_ITEMS;

/** What the walk learnt about a datum it accepted. */
export interface DatumFacts {
  /** Some long is beyond ±2^52, where avsc's long-to-float/double promotion reads it wrongly. */
  longBeyond2p52: boolean;
}

const TWO_P52 = 2 ** 52;

interface WalkState {
  pos: number;
  items: number;
  facts: DatumFacts;
  /** Path segments of the value being read, for the reason (`payload.user.name`). */
  path: string[];
}

/**
 * Checks that `datum` is exactly one valid value of `type` (see the module
 * comment), within `MAX_ITEMS` and `MAX_NESTING_DEPTH`. Returns the problem,
 * naming the field (`payload.count: int beyond the 32-bit range`), or
 * undefined when the datum is valid.
 */
export function checkDatum(type: avro.Type, datum: Buffer, facts: DatumFacts = { longBeyond2p52: false }): string | undefined {
  const state: WalkState = { pos: 0, items: 0, facts, path: ['payload'] };
  try {
    walk(type, datum, state, 0);
  } catch (err) {
    if (err instanceof Refusal) return `${state.path.join('')}: ${err.message}`;
    throw err;
  }
  if (state.pos !== datum.length) return `payload: ${datum.length - state.pos} trailing bytes after the datum`;
  return undefined;
}

/** The walk's refusal for malformed binary, naming what was being read. */
const REFUSALS: Record<AvroBinaryProblem, (what: string) => string> = {
  truncated: () => 'datum truncated',
  'longer than 10 bytes': (what) => `${what} varint longer than 10 bytes`,
  'wider than 64 bits': (what) => `${what} beyond the 64-bit range`,
  'invalid length': (what) => `${what} out of range`,
};

/** lib/avro/binary.ts's error as the walk's refusal, naming what was being read. */
function refusal(err: unknown, what: string): unknown {
  return err instanceof AvroBinaryError ? new Refusal(REFUSALS[err.problem](what)) : err;
}

/** An Avro long (zig-zag varint, at most 10 bytes, within 64 bits): exact, a bigint beyond ±(2^53−1). */
function readAvroLong(buf: Buffer, state: WalkState, what: string): AvroLong {
  try {
    const r = readLong(buf, state.pos);
    state.pos = r.offset;
    return r.value;
  } catch (err) {
    throw refusal(err, what);
  }
}

/** An Avro int: within 32 bits, in at most 5 bytes (Pub/Sub refuses a longer varint, even of a small value). */
function readInt(buf: Buffer, state: WalkState, what: string): number {
  const start = state.pos;
  const n = readAvroLong(buf, state, what);
  if (typeof n !== 'number' || n < INT_MIN || n > INT_MAX) throw new Refusal(`${what} beyond the 32-bit range of an Avro int`);
  if (state.pos - start > 5) throw new Refusal(`${what} written in ${state.pos - start} bytes (an Avro int takes at most 5)`);
  return n;
}

/** A block count or size: a long that must fit a buffer (a count may be negative: its block's size follows). */
function readCount(buf: Buffer, state: WalkState, what: string): number {
  const n = readAvroLong(buf, state, what);
  if (typeof n !== 'number') throw new Refusal(`${what} out of range`);
  return n;
}

/** The length of a string or bytes: non-negative, within what a buffer holds. */
function readSize(buf: Buffer, state: WalkState, what: string): number {
  try {
    const r = readLength(buf, state.pos);
    state.pos = r.offset;
    return r.value;
  } catch (err) {
    throw refusal(err, what);
  }
}

function skip(buf: Buffer, state: WalkState, len: number): void {
  if (state.pos + len > buf.length) throw new Refusal('datum truncated');
  state.pos += len;
}

/** Reads a string (or map key), checking it is valid UTF-8; returns where its bytes are. */
function readUtf8(buf: Buffer, state: WalkState, what: string): [number, number] {
  const len = readSize(buf, state, `${what} length`);
  const start = state.pos;
  skip(buf, state, len);
  if (!isUtf8(buf.subarray(start, state.pos))) throw new Refusal(`${what} is not valid UTF-8`);
  return [start, state.pos];
}

function deeper(depth: number): number {
  if (depth >= MAX_NESTING_DEPTH) throw new Refusal(`nested deeper than ${MAX_NESTING_DEPTH} levels of records, arrays, maps and union values`);
  return depth + 1;
}

function walk(type: avro.Type, buf: Buffer, state: WalkState, depth: number): void {
  switch (type.typeName) {
    case 'null':
      return;
    case 'boolean': {
      if (state.pos >= buf.length) throw new Refusal('datum truncated');
      const b = buf[state.pos++]!;
      if (b > 1) throw new Refusal(`boolean byte ${b} (must be 0 or 1)`);
      return;
    }
    case 'int':
      readInt(buf, state, 'int');
      return;
    case 'long':
    case 'abstract:long': {
      const n = readAvroLong(buf, state, 'long');
      if (typeof n === 'bigint' || n > TWO_P52 || n < -TWO_P52) state.facts.longBeyond2p52 = true;
      return;
    }
    case 'float':
      return skip(buf, state, 4);
    case 'double':
      return skip(buf, state, 8);
    case 'string':
      readUtf8(buf, state, 'string');
      return;
    case 'bytes':
      return skip(buf, state, readSize(buf, state, 'bytes length'));
    case 'fixed':
      return skip(buf, state, (type as avro.types.FixedType).size);
    case 'enum': {
      const i = readInt(buf, state, 'enum index');
      if (i < 0 || i >= (type as avro.types.EnumType).symbols.length) throw new Refusal('enum index out of range');
      return;
    }
    case 'array':
    case 'map': {
      const isMap = type.typeName === 'map';
      const inner = isMap ? (type as avro.types.MapType).valuesType : (type as avro.types.ArrayType).itemsType;
      const innerDepth = deeper(depth);
      let index = 0;
      for (;;) {
        let n = readCount(buf, state, 'block count');
        if (n === 0) return;
        if (n < 0) {
          n = -n;
          readCount(buf, state, 'block size');
        }
        state.items += n;
        if (state.items > MAX_ITEMS) throw new Refusal(`more than ${MAX_ITEMS} array or map items`);
        for (let i = 0; i < n; i++, index++) {
          if (isMap) {
            const [start, end] = readUtf8(buf, state, 'map key');
            if (end - start === 9 && buf.toString('latin1', start, end) === '__proto__') throw new Refusal(PROTO_KEY);
            state.path.push(`[${JSON.stringify(buf.toString('utf8', start, Math.min(end, start + 40)))}]`);
          } else state.path.push(`[${index}]`);
          walk(inner, buf, state, innerDepth);
          state.path.pop();
        }
      }
    }
    case 'record':
    case 'error': {
      const innerDepth = deeper(depth);
      for (const f of (type as avro.types.RecordType).fields) {
        state.path.push(`.${f.name}`);
        walk(f.type, buf, state, innerDepth);
        state.path.pop();
      }
      return;
    }
    default: {
      if (type.typeName.startsWith('union')) {
        const branches = (type as avro.types.WrappedUnionType).types;
        const branch = branches[readInt(buf, state, 'union branch index')];
        if (branch === undefined) throw new Refusal('union branch index out of range');
        // A non-null branch is a level in Avro's JSON encoding ({"<branch>": value}), as in the JSON path.
        return walk(branch, buf, state, branch.typeName === 'null' ? depth : deeper(depth));
      }
      if (type.typeName.startsWith('logical:')) {
        return walk((type as unknown as { underlyingType: avro.Type }).underlyingType, buf, state, depth);
      }
      throw new Refusal(`unsupported Avro type ${type.typeName}`);
    }
  }
}
