/**
 * JSON payload → Avro value, checked against the type's schema, with a reason
 * naming the offending field (`payload.user.country: expected string, got number`).
 *
 * The mapping of JSON to Avro (documented in README.md):
 * - null, boolean: themselves; string: a well-formed Unicode string (no lone
 *   surrogate: it has no UTF-8 form). int: integer in 32-bit range.
 * - long: an integer with |n| ≤ 2^53−1, or a decimal string for the full
 *   64-bit range (a JSON number beyond ±(2^53−1) was already rounded by
 *   JSON.parse, so it is refused with a reason asking for the string form).
 * - float: a number within the float range (beyond it would become Infinity);
 *   double: a finite number.
 * - bytes and fixed: a string whose code points are U+0000–U+00FF, one byte each
 *   (Avro's JSON encoding); fixed must have exactly its size.
 * - enum: one of its symbols. array: JSON array. map: JSON object.
 * - record: JSON object; a missing field takes its default, or is an error;
 *   a field the schema does not know is an error (silently dropping it would lose data).
 * - union: Avro's JSON form `{"<branch>": value}` (branch = type name, or full
 *   name for named types), or the plain value when exactly one branch accepts
 *   it. Several numeric branches accepting a number: the first one in the union
 *   wins (the value is the same number). A string goes to a string-like branch
 *   (string, bytes, enum, fixed) before a long one. Any other ambiguity is an
 *   error asking for the `{"<branch>": value}` form.
 * - the payload nests at most MAX_NESTING_DEPTH JSON objects and arrays deep
 *   (records, maps, arrays and `{"<branch>": value}` wrappers).
 *
 * Work is bounded by (payload nodes) × (schema types): trying the branches of
 * a union on an object or array is memoised per (union, value), so a value is
 * never decoded twice by the same union however the branches nest (without
 * it, a union of two same-shaped records doubles the work at every level).
 *
 * Types are built with `avroType` (exact 64-bit longs) and `wrapUnions: true`;
 * the decoder produces values in that representation, ready for `type.toBuffer`.
 */
import avro from 'avsc';
import { avroType, parseLongString } from '../../lib/avro/long.ts';
import { AppError } from '../../lib/errors.ts';
import { fitsFloat, INT_MAX, INT_MIN, MAX_NESTING_DEPTH, PROTO_KEY } from './datum-limits.ts';

/** A payload that does not match its schema (EVENT_INVALID); `path` starts with `payload`. */
export class PayloadMismatch extends AppError {
  readonly path: string;
  readonly problem: string;

  constructor(path: string, problem: string) {
    super('EVENT_INVALID', { message: `${path}: ${problem}`, details: { field: path } });
    this.name = 'PayloadMismatch';
    this.path = path;
    this.problem = problem;
  }
}

/** Counts the work of one decode: every visit of a value by a schema type. */
export interface DecodeWork {
  steps: number;
}

/** Converts a parsed JSON payload into an Avro value of the compiled type, or throws PayloadMismatch. */
export type PayloadDecoder = (json: unknown, work?: DecodeWork) => unknown;

/**
 * Returned (never thrown: exceptions through a deep decoder tree cost
 * microseconds each) by a decoder for a value its type does not accept;
 * carries path segments collected on the way out. No decoded value is one.
 */
class Mismatch {
  readonly segments: string[] = [];
  /** A text, or what builds it: most mismatches are those of union branches tried and dropped, never shown. */
  constructor(private text: string | (() => string)) {}
  get problem(): string {
    if (typeof this.text !== 'string') this.text = this.text();
    return this.text;
  }
}

/** Too deep: ends the whole decode, whatever union branch is being tried. */
class TooDeep extends Mismatch {}

/** What a union decided for one object or array value (memoised). */
type UnionOutcome = { value: unknown } | { mismatch: Mismatch };

/** State of one decode call. */
interface Walk {
  steps: number;
  /** Union outcomes by value, then by union; created at the first union that tries several branches. */
  memo: Map<object, Map<Decode, UnionOutcome>> | undefined;
}

type Decode = (v: unknown, depth: number, walk: Walk) => unknown; // the value, or a Mismatch
type Kind = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NON_LATIN1 = /[\u0100-\uffff]/;
const MAX_QUOTED = 40;

/** Parses an Avro schema the way the event service encodes with it (exact longs, wrapped unions). */
export function parseSchema(schema: unknown): avro.Type {
  return avroType(schema, { wrapUnions: true });
}

/** Compiles a decoder for `type` (parsed with `parseSchema`). Decoding never throws anything but PayloadMismatch. */
export function compilePayloadDecoder(type: avro.Type): PayloadDecoder {
  const decode = compile(type, new Map());
  return (json, work) => {
    const walk: Walk = { steps: 0, memo: undefined };
    let value: unknown;
    try {
      value = decode(json, 0, walk);
    } catch (err) {
      if (err instanceof RangeError) throw new PayloadMismatch('payload', 'too large to decode');
      throw err;
    } finally {
      if (work !== undefined) work.steps += walk.steps;
    }
    if (value instanceof Mismatch) throw new PayloadMismatch(['payload', ...value.segments.reverse()].join(''), value.problem);
    return value;
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
  return kindOf(v);
}

function withArticle(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fieldSegment(name: string): string {
  return IDENTIFIER.test(name) ? `.${name}` : `[${quote(name)}]`;
}

function quote(s: string): string {
  // toWellFormed: a lone surrogate in a key must not make our own reason unencodable.
  return JSON.stringify(((s.length > MAX_QUOTED ? `${s.slice(0, MAX_QUOTED)}…` : s) as unknown as WellFormed).toWellFormed());
}

/** Adds the segment of the value a mismatch came from, on its way out. */
function at(m: Mismatch, segment: string): Mismatch {
  m.segments.push(segment);
  return m;
}

/** The depth inside a record, array, map or union wrapper, or TooDeep. */
function deeper(depth: number): number | TooDeep {
  if (depth >= MAX_NESTING_DEPTH) return new TooDeep(`nested deeper than ${MAX_NESTING_DEPTH} levels of objects and arrays`);
  return depth + 1;
}

/** `String.prototype.isWellFormed` / `toWellFormed` (Node 20; not in the TypeScript lib we target). */
interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}
const isWellFormed = (s: string): boolean => (s as unknown as WellFormed).isWellFormed();

const LONE_SURROGATE = 'a string with a lone surrogate (not valid Unicode, it has no UTF-8 form)';

/** The kinds of JSON value a type can accept (unions: used to pick candidate branches). */
function acceptedKind(type: avro.Type): Kind {
  switch (type.typeName) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'boolean';
    case 'int':
    case 'long':
    case 'abstract:long':
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
      if (type.typeName.startsWith('logical:')) return acceptedKind((type as unknown as { underlyingType: avro.Type }).underlyingType);
      return 'object';
  }
}

function isLong(type: avro.Type): boolean {
  return type.typeName === 'long' || type.typeName === 'abstract:long';
}

function compile(type: avro.Type, named: Map<string, Decode>): Decode {
  const typeName = type.typeName;
  const primitive = PRIMITIVES.get(typeName === 'abstract:long' ? 'long' : typeName);
  if (primitive !== undefined) return primitive;
  switch (typeName) {
    case 'fixed':
      return compileFixed(type);
    case 'enum':
      return compileEnum(type);
    case 'array':
      return compileArray(type, named);
    case 'map':
      return compileMap(type, named);
    case 'record':
    case 'error':
      return compileRecord(type, named);
    case 'union:wrapped':
      return compileUnion(type as avro.types.WrappedUnionType, named);
    default:
      if (typeName.startsWith('logical:')) {
        const underlying = (type as unknown as { underlyingType: avro.Type }).underlyingType;
        return compile(underlying, named);
      }
      // Unwrapped unions cannot occur (parseSchema wraps them); anything else is a bug, not input.
      throw new AppError('INTERNAL', { message: `unsupported Avro type ${typeName}` });
  }
}

/** Decoders of the primitive types: they depend on nothing but the value. */
const PRIMITIVES = new Map<string, Decode>([
  ['null', (v, _d, w) => {
    w.steps++;
    if (v !== null) return new Mismatch(`expected null, got ${describe(v)}`);
    return null;
  }],
  ['boolean', (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'boolean') return new Mismatch(`expected boolean, got ${describe(v)}`);
    return v;
  }],
  ['int', (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'number') return new Mismatch(`expected int, got ${describe(v)}`);
    if (!Number.isInteger(v)) return new Mismatch('expected int, got a non-integer number');
    if (v < INT_MIN || v > INT_MAX) return new Mismatch('expected int, got a number outside the 32-bit range');
    return v;
  }],
  ['long', (v, _d, w) => {
    w.steps++;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) return new Mismatch('expected long, got a non-integer number');
      if (!Number.isSafeInteger(v)) {
        return new Mismatch('expected long, got a JSON number beyond ±(2^53-1), which JSON numbers cannot carry exactly; send it as a decimal string');
      }
      return v;
    }
    if (typeof v === 'string') {
      const n = parseLongString(v);
      if (n === undefined) return new Mismatch('expected long, got a string that is not a decimal integer within the 64-bit range');
      return n;
    }
    return new Mismatch(`expected long, got ${describe(v)}`);
  }],
  ['float', (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'number') return new Mismatch(`expected float, got ${describe(v)}`);
    if (!fitsFloat(v)) return new Mismatch('expected float, got a number beyond the float range (it would be stored as Infinity)');
    return v;
  }],
  ['double', (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'number') return new Mismatch(`expected double, got ${describe(v)}`);
    if (!Number.isFinite(v)) return new Mismatch('expected double, got a number beyond the double range');
    return v;
  }],
  ['string', (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'string') return new Mismatch(`expected string, got ${describe(v)}`);
    if (!isWellFormed(v)) return new Mismatch(`expected string, got ${LONE_SURROGATE}`);
    return v;
  }],
  ['bytes', (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'string') return new Mismatch(`expected bytes (a string), got ${describe(v)}`);
    if (NON_LATIN1.test(v)) return new Mismatch('expected bytes, got a string with code points above U+00FF');
    return Buffer.from(v, 'latin1');
  }],
]);

/** A fixed: a latin1 string of exactly its size. */
function compileFixed(type: avro.Type): Decode {
  const fixed = type as avro.types.FixedType;
  const size = fixed.size;
  return (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'string') return new Mismatch(`expected fixed ${fixed.name ?? ''} (a string), got ${describe(v)}`);
    if (NON_LATIN1.test(v)) return new Mismatch('expected fixed, got a string with code points above U+00FF');
    if (v.length !== size) return new Mismatch(`expected fixed of ${size} bytes, got ${v.length}`);
    return Buffer.from(v, 'latin1');
  };
}

/** An enum: one of its symbols. */
function compileEnum(type: avro.Type): Decode {
  const e = type as avro.types.EnumType;
  const symbols = new Set(e.symbols);
  const shown = e.symbols.length <= 10 ? e.symbols.join(', ') : `${e.symbols.slice(0, 10).join(', ')}, …`;
  return (v, _d, w) => {
    w.steps++;
    if (typeof v !== 'string') return new Mismatch(`expected enum ${e.name ?? ''} (a string), got ${describe(v)}`);
    if (!symbols.has(v)) return new Mismatch(`expected one of [${shown}], got ${quote(v)}`);
    return v;
  };
}

/** An array; its item decoder is compiled on first use (recursive types). */
function compileArray(type: avro.Type, named: Map<string, Decode>): Decode {
  const items = (type as avro.types.ArrayType).itemsType;
  let decodeItem: Decode | undefined;
  return (v, depth, w) => {
    w.steps++;
    if (!Array.isArray(v)) return new Mismatch(`expected array, got ${describe(v)}`);
    const inner = deeper(depth);
    if (inner instanceof Mismatch) return inner;
    decodeItem ??= compile(items, named);
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      const item = decodeItem(v[i], inner, w);
      if (item instanceof Mismatch) return at(item, `[${i}]`);
      out[i] = item;
    }
    return out;
  };
}

/** A map: an object with well-formed keys, never `__proto__`. */
function compileMap(type: avro.Type, named: Map<string, Decode>): Decode {
  const values = (type as avro.types.MapType).valuesType;
  let decodeValue: Decode | undefined;
  return (v, depth, w) => {
    w.steps++;
    if (!isPlainObject(v)) return new Mismatch(`expected map (an object), got ${describe(v)}`);
    const inner = deeper(depth);
    if (inner instanceof Mismatch) return inner;
    decodeValue ??= compile(values, named);
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const key of Object.keys(v)) {
      const value = v[key];
      if (!isWellFormed(key)) return at(new Mismatch(`map key is ${LONE_SURROGATE}`), fieldSegment(key));
      if (key === '__proto__') return new Mismatch(PROTO_KEY);
      const decoded = decodeValue(value, inner, w);
      if (decoded instanceof Mismatch) return at(decoded, fieldSegment(key));
      out[key] = decoded;
    }
    return out;
  };
}

/** A record: every field (defaults for missing ones), nothing else; one decoder per record name, so recursive records terminate. */
function compileRecord(type: avro.Type, named: Map<string, Decode>): Decode {
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
  const decodeRecord: Decode = (v, depth, w) => {
    w.steps++;
    if (!isPlainObject(v)) return new Mismatch(`expected record ${recordName} (an object), got ${describe(v)}`);
    const inner = deeper(depth);
    if (inner instanceof Mismatch) return inner;
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
        if (!field.hasDefault) return at(new Mismatch('required field missing'), field.segment);
        out[field.name] = field.defaultValue();
        continue;
      }
      const decoded = field.decode(value, inner, w);
      if (decoded instanceof Mismatch) return at(decoded, field.segment);
      out[field.name] = decoded;
    }
    for (const key of Object.keys(v)) {
      if (!known!.has(key)) return at(new Mismatch(`field not in the schema of ${recordName}`), fieldSegment(key));
    }
    return out;
  };
  named.set(recordName, decodeRecord);
  return decodeRecord;
}

interface Branch {
  /** Key of the wrapped representation (avsc's branchName: `string`, `com.acme.User`…). */
  key: string;
  /** Names a producer may use in `{"<name>": value}`: the key and, for named types, the short name. */
  aliases: string[];
  kind: Kind;
  long: boolean;
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
      long: isLong(t),
      decode: () => (decoder ??= compile(t, named)),
    };
  });
  const byAlias = new Map<string, Branch>();
  for (const b of branches) for (const a of b.aliases) if (!byAlias.has(a)) byAlias.set(a, b);
  const hasNull = branches.some((b) => b.kind === 'null');
  const byKind = new Map<Kind, Branch[]>();
  for (const b of branches) byKind.set(b.kind, [...(byKind.get(b.kind) ?? []), b]);
  // A decimal string is a long's exact JSON form, after every string-like branch.
  const longBranches = branches.filter((b) => b.long);
  const listing = `[${branches.map((b) => b.key).join(', ')}]`;
  const wrap = (b: Branch, value: unknown): unknown => (b.kind === 'null' ? null : { [b.key]: value });

  /** The branch that takes `v`: tried in union order (each at most once per value, see `decodeUnion`). */
  const choose = (v: unknown, depth: number, w: Walk): unknown => {
    const kind = kindOf(v);
    const candidates = byKind.get(kind) ?? [];
    const longFallback = kind === 'string' && longBranches.length > 0;
    if (candidates.length === 1 && !longFallback) {
      const value = candidates[0]!.decode()(v, depth, w);
      return value instanceof Mismatch ? value : wrap(candidates[0]!, value);
    }
    const accepted: Array<{ branch: Branch; value: unknown }> = [];
    let firstRefusal: { branch: Branch; mismatch: Mismatch } | undefined;
    /** Tries one branch; a TooDeep ends the whole decode. */
    const attempt = (b: Branch): TooDeep | undefined => {
      const value = b.decode()(v, depth, w);
      if (value instanceof TooDeep) return value;
      if (value instanceof Mismatch) firstRefusal ??= { branch: b, mismatch: value };
      else accepted.push({ branch: b, value });
      return undefined;
    };
    if (kind === 'number') {
      // Numeric branches: the first that accepts the number wins (the value is the same number).
      for (const b of candidates) {
        const tooDeep = attempt(b);
        if (tooDeep !== undefined) return tooDeep;
        if (accepted.length > 0) return wrap(accepted[0]!.branch, accepted[0]!.value);
      }
    } else {
      for (const b of candidates) {
        const tooDeep = attempt(b);
        if (tooDeep !== undefined) return tooDeep;
      }
      if (accepted.length === 0 && longFallback) for (const b of longBranches) attempt(b);
    }
    const first = accepted[0];
    if (first === undefined) {
      if (candidates.length === 0 && !longFallback) return new Mismatch(`expected one of ${listing}, got ${describe(v)}`);
      // Say why the first candidate refused it (bounded: nested unions would otherwise nest their reasons).
      const refusal = firstRefusal;
      const why = (): string => (refusal === undefined ? '' : ` (as ${refusal.branch.key}: ${describeMismatch(refusal.mismatch)})`);
      return new Mismatch(() => `expected one of ${listing}, got ${withArticle(describe(v))} none of them accepts${why()}`);
    }
    if (accepted.length === 1) return wrap(first.branch, first.value);
    return new Mismatch(
      () => `ambiguous value for union ${listing} (branches ${accepted.map((a) => a.branch.key).join(', ')} accept it); write it as {"<branch>": value}`,
    );
  };

  const decodeUnion: Decode = (v, depth, w) => {
    w.steps++;
    if (v === null) return hasNull ? null : new Mismatch(`expected one of ${listing}, got null`);
    // Avro's JSON form: {"<branch>": value}.
    if (isPlainObject(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1) {
        const branch = byAlias.get(keys[0]!);
        if (branch !== undefined) {
          // The wrapper is a level of JSON nesting like any object, so depth is a function of the value's position (and the memo exact).
          const inner = deeper(depth);
          if (inner instanceof Mismatch) return inner;
          const value = branch.decode()(v[keys[0]!], inner, w);
          return value instanceof Mismatch ? at(value, `[${quote(keys[0]!)}]`) : wrap(branch, value);
        }
      }
    }
    if (typeof v !== 'object') return choose(v, depth, w);
    // Objects and arrays: memoised per (value, union) once any union tries several
    // branches (before that, every value is visited once), so nested trials stay linear.
    if (w.memo === undefined && (byKind.get(kindOf(v))?.length ?? 0) < 2) return choose(v, depth, w);
    const memo = (w.memo ??= new Map());
    let outcomes = memo.get(v);
    const known = outcomes?.get(decodeUnion);
    if (known !== undefined) return 'value' in known ? known.value : copyMismatch(known.mismatch);
    const value = choose(v, depth, w);
    if (value instanceof TooDeep) return value;
    if (outcomes === undefined) memo.set(v, (outcomes = new Map()));
    // A mismatch collects segments on its way out: memoise a copy of it as it is here.
    outcomes.set(decodeUnion, value instanceof Mismatch ? { mismatch: copyMismatch(value) } : { value });
    return value;
  };
  return decodeUnion;
}

const MAX_INNER_REASON = 160;

function describeMismatch(m: Mismatch): string {
  const text = `${[...m.segments].reverse().join('') || 'value'}: ${m.problem}`;
  return text.length > MAX_INNER_REASON ? `${text.slice(0, MAX_INNER_REASON)}…` : text;
}

/** A fresh copy: path segments are pushed onto a mismatch as it propagates, so a memoised one is never returned itself. */
function copyMismatch(m: Mismatch): Mismatch {
  const copy = new Mismatch(() => m.problem);
  copy.segments.push(...m.segments);
  return copy;
}
