/**
 * JSON payload → Avro value, checked against the type's schema, with a reason
 * naming the offending field (`payload.user.country: expected string, got number`).
 *
 * The mapping of JSON to Avro (documented in README.md):
 * - null, boolean, string: themselves; int: integer in 32-bit range; long: safe
 *   integer (|n| ≤ 2^53−1); float/double: any number.
 * - bytes and fixed: a string whose code points are U+0000–U+00FF, one byte each
 *   (Avro's JSON encoding); fixed must have exactly its size.
 * - enum: one of its symbols. array: JSON array. map: JSON object.
 * - record: JSON object; a missing field takes its default, or is an error;
 *   a field the schema does not know is an error (silently dropping it would lose data).
 * - union: Avro's JSON form `{"<branch>": value}` (branch = type name, or full
 *   name for named types), or the plain value when exactly one branch accepts
 *   it. Several numeric branches accepting a number: the first one in the union
 *   wins (the value is the same number). Any other ambiguity is an error asking
 *   for the `{"<branch>": value}` form.
 *
 * Types are parsed by avsc with `wrapUnions: true`; the decoder produces values
 * in that representation, ready for `type.toBuffer`.
 */
import avro from 'avsc';

/** A payload that does not match its schema; `path` starts with `payload`. */
export class PayloadMismatch extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'PayloadMismatch';
  }
}

/** Converts a parsed JSON payload into an Avro value of the compiled type, or throws PayloadMismatch. */
export type PayloadDecoder = (json: unknown) => unknown;

/** Thrown inside the decoder tree; carries path segments collected on the way out. */
class Mismatch {
  readonly segments: string[] = [];
  constructor(readonly problem: string) {}
}

type Decode = (v: unknown) => unknown;
type Kind = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NON_LATIN1 = /[\u0100-\uffff]/;
const MAX_QUOTED = 40;

/** Parses an Avro schema the way the event service encodes with it. */
export function parseSchema(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { wrapUnions: true });
}

/** Compiles a decoder for `type` (parsed with `parseSchema`). Decoding never throws anything but PayloadMismatch. */
export function compilePayloadDecoder(type: avro.Type): PayloadDecoder {
  const decode = compile(type, new Map());
  return (json) => {
    try {
      return decode(json);
    } catch (err) {
      if (err instanceof Mismatch) throw new PayloadMismatch(['payload', ...err.segments.reverse()].join(''), err.problem);
      if (err instanceof RangeError) throw new PayloadMismatch('payload', 'nested too deeply');
      throw err;
    }
  };
}

function kindOf(v: unknown): Kind {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  const t = typeof v;
  if (t === 'boolean' || t === 'number' || t === 'string') return t;
  return 'object';
}

function describe(v: unknown): string {
  const kind = kindOf(v);
  if (kind === 'object' || kind === 'array' || kind === 'null') return kind;
  return kind;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fieldSegment(name: string): string {
  return IDENTIFIER.test(name) ? `.${name}` : `[${quote(name)}]`;
}

function quote(s: string): string {
  return JSON.stringify(s.length > MAX_QUOTED ? `${s.slice(0, MAX_QUOTED)}…` : s);
}

function within<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Mismatch) err.segments.push(segment);
    throw err;
  }
}

/** The kinds of JSON value a type can accept (unions: used to pick candidate branches). */
function acceptedKind(type: avro.Type): Kind {
  switch (type.typeName) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'boolean';
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return 'number';
    case 'string':
    case 'bytes':
    case 'enum':
    case 'fixed':
      return 'string';
    case 'array':
      return 'array';
    default:
      return 'object';
  }
}

function compile(type: avro.Type, named: Map<string, Decode>): Decode {
  const typeName = type.typeName;
  switch (typeName) {
    case 'null':
      return (v) => {
        if (v !== null) throw new Mismatch(`expected null, got ${describe(v)}`);
        return null;
      };
    case 'boolean':
      return (v) => {
        if (typeof v !== 'boolean') throw new Mismatch(`expected boolean, got ${describe(v)}`);
        return v;
      };
    case 'int':
      return (v) => {
        if (typeof v !== 'number') throw new Mismatch(`expected int, got ${describe(v)}`);
        if (!Number.isInteger(v)) throw new Mismatch('expected int, got a non-integer number');
        if (v < INT_MIN || v > INT_MAX) throw new Mismatch('expected int, got a number outside the 32-bit range');
        return v;
      };
    case 'long':
      return (v) => {
        if (typeof v !== 'number') throw new Mismatch(`expected long, got ${describe(v)}`);
        if (!Number.isInteger(v)) throw new Mismatch('expected long, got a non-integer number');
        if (!Number.isSafeInteger(v)) throw new Mismatch('expected long, got an integer beyond ±2^53-1 (not exact in JSON)');
        return v;
      };
    case 'float':
    case 'double':
      return (v) => {
        if (typeof v !== 'number') throw new Mismatch(`expected ${typeName}, got ${describe(v)}`);
        return v;
      };
    case 'string':
      return (v) => {
        if (typeof v !== 'string') throw new Mismatch(`expected string, got ${describe(v)}`);
        return v;
      };
    case 'bytes':
      return (v) => {
        if (typeof v !== 'string') throw new Mismatch(`expected bytes (a string), got ${describe(v)}`);
        if (NON_LATIN1.test(v)) throw new Mismatch('expected bytes, got a string with code points above U+00FF');
        return Buffer.from(v, 'latin1');
      };
    case 'fixed': {
      const fixed = type as avro.types.FixedType;
      const size = fixed.size;
      return (v) => {
        if (typeof v !== 'string') throw new Mismatch(`expected fixed ${fixed.name ?? ''} (a string), got ${describe(v)}`);
        if (NON_LATIN1.test(v)) throw new Mismatch('expected fixed, got a string with code points above U+00FF');
        if (v.length !== size) throw new Mismatch(`expected fixed of ${size} bytes, got ${v.length}`);
        return Buffer.from(v, 'latin1');
      };
    }
    case 'enum': {
      const e = type as avro.types.EnumType;
      const symbols = new Set(e.symbols);
      const shown = e.symbols.length <= 10 ? e.symbols.join(', ') : `${e.symbols.slice(0, 10).join(', ')}, …`;
      return (v) => {
        if (typeof v !== 'string') throw new Mismatch(`expected enum ${e.name ?? ''} (a string), got ${describe(v)}`);
        if (!symbols.has(v)) throw new Mismatch(`expected one of [${shown}], got ${quote(v)}`);
        return v;
      };
    }
    case 'array': {
      const items = (type as avro.types.ArrayType).itemsType;
      let decodeItem: Decode | undefined;
      return (v) => {
        if (!Array.isArray(v)) throw new Mismatch(`expected array, got ${describe(v)}`);
        decodeItem ??= compile(items, named);
        const out = new Array<unknown>(v.length);
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          out[i] = within(`[${i}]`, () => decodeItem!(item));
        }
        return out;
      };
    }
    case 'map': {
      const values = (type as avro.types.MapType).valuesType;
      let decodeValue: Decode | undefined;
      return (v) => {
        if (!isPlainObject(v)) throw new Mismatch(`expected map (an object), got ${describe(v)}`);
        decodeValue ??= compile(values, named);
        const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
        for (const key of Object.keys(v)) {
          const value = v[key];
          out[key] = within(fieldSegment(key), () => decodeValue!(value));
        }
        return out;
      };
    }
    case 'record':
    case 'error': {
      const record = type as avro.types.RecordType;
      const recordName = record.name ?? 'record';
      const cached = named.get(recordName);
      if (cached !== undefined) return cached;
      interface FieldPlan {
        name: string;
        segment: string;
        decode: Decode;
        hasDefault: boolean;
        defaultValue: () => unknown;
      }
      let plan: FieldPlan[] | undefined;
      let known: Set<string> | undefined;
      const decodeRecord: Decode = (v) => {
        if (!isPlainObject(v)) throw new Mismatch(`expected record ${recordName} (an object), got ${describe(v)}`);
        if (plan === undefined) {
          plan = record.fields.map((f) => ({
            name: f.name,
            segment: fieldSegment(f.name),
            decode: compile(f.type, named),
            hasDefault: f.defaultValue() !== undefined,
            defaultValue: () => f.defaultValue(),
          }));
          known = new Set(record.fields.map((f) => f.name));
        }
        const out: Record<string, unknown> = {};
        for (const field of plan) {
          const value = Object.prototype.hasOwnProperty.call(v, field.name) ? v[field.name] : undefined;
          if (value === undefined) {
            if (!field.hasDefault) {
              const m = new Mismatch('required field missing');
              m.segments.push(field.segment);
              throw m;
            }
            out[field.name] = field.defaultValue();
            continue;
          }
          out[field.name] = within(field.segment, () => field.decode(value));
        }
        for (const key of Object.keys(v)) {
          if (!known!.has(key)) {
            const m = new Mismatch(`field not in the schema of ${recordName}`);
            m.segments.push(fieldSegment(key));
            throw m;
          }
        }
        return out;
      };
      named.set(recordName, decodeRecord);
      return decodeRecord;
    }
    case 'union:wrapped':
      return compileUnion(type as avro.types.WrappedUnionType, named);
    default:
      if (typeName.startsWith('logical:')) {
        const underlying = (type as unknown as { underlyingType: avro.Type }).underlyingType;
        return compile(underlying, named);
      }
      // Unwrapped unions cannot occur (parseSchema wraps them); anything else is a bug, not input.
      throw new Error(`unsupported Avro type ${typeName}`);
  }
}

interface Branch {
  /** Key of the wrapped representation (avsc's branchName: `string`, `com.acme.User`…). */
  key: string;
  /** Names a producer may use in `{"<name>": value}`: the key and, for named types, the short name. */
  aliases: string[];
  kind: Kind;
  numeric: boolean;
  decode: () => Decode;
}

function compileUnion(type: avro.types.WrappedUnionType, named: Map<string, Decode>): Decode {
  const branches: Branch[] = type.types.map((t) => {
    let decoder: Decode | undefined;
    const key = (t as unknown as { branchName: string }).branchName;
    const short = key.includes('.') ? key.slice(key.lastIndexOf('.') + 1) : key;
    return {
      key,
      aliases: short === key ? [key] : [key, short],
      kind: acceptedKind(t),
      numeric: acceptedKind(t) === 'number',
      decode: () => (decoder ??= compile(t, named)),
    };
  });
  const byAlias = new Map<string, Branch>();
  for (const b of branches) for (const a of b.aliases) if (!byAlias.has(a)) byAlias.set(a, b);
  const hasNull = branches.some((b) => b.kind === 'null');
  const listing = `[${branches.map((b) => b.key).join(', ')}]`;
  const wrap = (b: Branch, value: unknown): unknown => (b.kind === 'null' ? null : { [b.key]: value });

  return (v) => {
    if (v === null) {
      if (hasNull) return null;
      throw new Mismatch(`expected one of ${listing}, got null`);
    }
    // Avro's JSON form: {"<branch>": value}.
    if (isPlainObject(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1) {
        const branch = byAlias.get(keys[0]!);
        if (branch !== undefined) {
          const inner = v[keys[0]!];
          return within(`[${quote(keys[0]!)}]`, () => wrap(branch, branch.decode()(inner)));
        }
      }
    }
    const kind = kindOf(v);
    const candidates = branches.filter((b) => b.kind === kind);
    if (candidates.length === 0) throw new Mismatch(`expected one of ${listing}, got ${describe(v)}`);
    if (candidates.length === 1) return wrap(candidates[0]!, candidates[0]!.decode()(v));
    const accepted: Array<{ branch: Branch; value: unknown }> = [];
    for (const b of candidates) {
      try {
        accepted.push({ branch: b, value: b.decode()(v) });
      } catch (err) {
        if (!(err instanceof Mismatch)) throw err;
      }
    }
    const first = accepted[0];
    if (first === undefined) throw new Mismatch(`expected one of ${listing}, got a ${describe(v)} none of them accepts`);
    if (accepted.length === 1 || accepted.every((a) => a.branch.numeric)) return wrap(first.branch, first.value);
    throw new Mismatch(
      `ambiguous value for union ${listing} (branches ${accepted.map((a) => a.branch.key).join(', ')} accept it); write it as {"<branch>": value}`,
    );
  };
}
