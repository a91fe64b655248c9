/**
 * Avro `long` over its whole 64-bit range. avsc's default long type is exact
 * only within ±2^52 on the wire (its zig-zag goes through doubles) and refuses
 * anything beyond ±2^53; ours decodes safe integers as `number` (what every
 * caller already handles) and the rest as `bigint`, and encodes either exactly.
 * Build every avsc type through {@link avroType} so no path falls back to the
 * lossy default.
 */
import avro from 'avsc';
import { parseSchema, selfReferencingDefaults, withoutDefaults } from './schema.ts';

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** A long as JavaScript carries it: a safe integer `number`, else a `bigint`. */
export type AvroLong = number | bigint;

/** True for values that are an Avro long exactly: safe integers and in-range bigints. */
export function isAvroLong(value: unknown): value is AvroLong {
  if (typeof value === 'number') return Number.isSafeInteger(value);
  return typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX;
}

/** The JavaScript form of a 64-bit integer: `number` when it is safe, else `bigint`. */
export function normalizeLong(n: bigint): AvroLong {
  return n >= SAFE_MIN && n <= SAFE_MAX ? Number(n) : n;
}

/** Parses a decimal string (JSON's lossless form of a long); undefined if it is not one in range. */
export function parseLongString(text: string): AvroLong | undefined {
  if (!/^-?(0|[1-9][0-9]{0,18})$/.test(text)) return undefined;
  const n = BigInt(text);
  return n >= INT64_MIN && n <= INT64_MAX ? normalizeLong(n) : undefined;
}

export const exactLongType: avro.types.LongType = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => normalizeLong(buf.readBigInt64LE(0)),
  toBuffer: (value: AvroLong) => {
    const buf = Buffer.allocUnsafe(8);
    buf.writeBigInt64LE(BigInt(value), 0);
    return buf;
  },
  fromJSON: (value: unknown) => {
    if (isAvroLong(value)) return value;
    if (typeof value === 'string') {
      const n = parseLongString(value);
      if (n !== undefined) return n;
    }
    throw new Error(`not an Avro long: ${typeof value}`);
  },
  // JSON cannot carry a bigint; beyond ±2^53 the exact form is a decimal string.
  toJSON: (value: AvroLong) => (typeof value === 'bigint' ? value.toString() : value),
  isValid: isAvroLong,
  compare: (a: AvroLong, b: AvroLong) => {
    const x = BigInt(a);
    const y = BigInt(b);
    return x === y ? 0 : x < y ? -1 : 1;
  },
});

/** True for `"long"` and `{"type": "long", ...}` (the object form bypasses avsc's registry). */
function isLongSchema(schema: unknown): boolean {
  if (schema === 'long') return true;
  return typeof schema === 'object' && schema !== null && !Array.isArray(schema) && (schema as { type?: unknown }).type === 'long';
}

/**
 * `avro.Type.forSchema` with every long exact. Through a type hook, not the
 * registry: avsc builds `{"type": "long"}` objects without consulting it.
 * A valid schema avsc cannot build because a default holds a value of its
 * enclosing record (lib/avro/schema.ts, `selfReferencingDefaults`) is built
 * without those defaults: encoding and decoding do not use them, and a value
 * for such a field must then be given.
 */
export function avroType(schema: unknown, opts: Partial<avro.ForSchemaOptions> = {}): avro.Type {
  const outer = opts.typeHook;
  // avsc consults the hook before its logical types: a long-based one the caller asked for is let
  // through once, and its underlying type (built from the same schema object) gets the exact long.
  const deriving = new Set<unknown>();
  const hook = (t: avro.Schema, o: avro.ForSchemaOptions): avro.Type | undefined => {
    const own = outer?.(t, o);
    if (own !== undefined) return own;
    if (!isLongSchema(t)) return undefined;
    const logicalType = (t as { logicalType?: unknown }).logicalType;
    if (typeof logicalType === 'string' && o.logicalTypes?.[logicalType] !== undefined && !deriving.has(t)) {
      deriving.add(t);
      return undefined;
    }
    deriving.delete(t);
    return exactLongType;
  };
  const build = (s: unknown): avro.Type => avro.Type.forSchema(s as avro.Schema, { ...opts, typeHook: hook });
  try {
    return build(schema);
  } catch (err) {
    let unbuildable: ReturnType<typeof selfReferencingDefaults>;
    try {
      unbuildable = selfReferencingDefaults(parseSchema(schema));
    } catch {
      throw err;
    }
    if (unbuildable.size === 0) throw err;
    return build(withoutDefaults(schema, unbuildable));
  }
}
