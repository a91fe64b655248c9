/**
 * Property tests of the JSON payload decoder against avsc itself, on
 * generated schemas (nested records, arrays, maps, unions, recursion through
 * unions) and on adversarial unions of same-shaped records nested deep:
 * - every value's Avro JSON encoding (avsc's `toString`) decodes to a value
 *   that encodes to the same bytes (a round trip through Avro's JSON form);
 * - whatever it accepts, avsc's `isValid` accepts and `toBuffer` encodes;
 * - the work of every decode (DecodeWork.steps) stays within
 *   (JSON nodes of the payload) × (types + union branches of the schema): a
 *   bound on work, not time.
 */
import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INT64_MAX, INT64_MIN, normalizeLong } from '../../lib/avro/long.ts';
import { INT_MAX, INT_MIN, MAX_NESTING_DEPTH } from './datum-limits.ts';
import { compilePayloadDecoder, parseSchema, PayloadMismatch, type DecodeWork } from './validation.ts';

type Shape =
  | { k: 'prim'; t: 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'string' | 'bytes' }
  | { k: 'enum'; symbols: number }
  | { k: 'fixed'; size: number }
  | { k: 'array'; items: Shape }
  | { k: 'map'; values: Shape }
  | { k: 'record'; fields: Shape[] }
  | { k: 'union'; branches: Shape[] }
  | { k: 'ref' };

const prims = ['null', 'boolean', 'int', 'long', 'float', 'double', 'string', 'bytes'] as const;

const shapeArb: fc.Arbitrary<Shape> = fc.letrec<{ shape: Shape }>((tie) => ({
  shape: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...prims).map((t): Shape => ({ k: 'prim', t })),
    fc.integer({ min: 1, max: 4 }).map((symbols): Shape => ({ k: 'enum', symbols })),
    fc.integer({ min: 0, max: 4 }).map((size): Shape => ({ k: 'fixed', size })),
    tie('shape').map((items): Shape => ({ k: 'array', items })),
    tie('shape').map((values): Shape => ({ k: 'map', values })),
    fc.array(tie('shape'), { minLength: 1, maxLength: 4 }).map((fields): Shape => ({ k: 'record', fields })),
    fc.array(fc.oneof(tie('shape'), fc.constant<Shape>({ k: 'ref' })), { minLength: 1, maxLength: 5 }).map((branches): Shape => ({ k: 'union', branches })),
  ),
})).shape;

/** A valid Avro schema from a shape: unique names, unions without duplicates or nested unions, recursion only through a union with null. */
function toSchema(root: Shape): unknown {
  let next = 0;
  const convert = (s: Shape, enclosing: string | undefined): unknown => {
    switch (s.k) {
      case 'prim':
        return s.t;
      case 'enum':
        return { type: 'enum', name: `E${next++}`, symbols: Array.from({ length: s.symbols }, (_, i) => `S${i}`) };
      case 'fixed':
        return { type: 'fixed', name: `F${next++}`, size: s.size };
      case 'array':
        return { type: 'array', items: convert(s.items, enclosing) };
      case 'map':
        return { type: 'map', values: convert(s.values, enclosing) };
      case 'record': {
        const name = `R${next++}`;
        return { type: 'record', name, fields: s.fields.map((f, i) => ({ name: `f${i}`, type: convert(f, name) })) };
      }
      case 'ref':
        return enclosing ?? 'null';
      case 'union': {
        const seen = new Set<string>();
        const branches: unknown[] = [];
        const hasRef = s.branches.some((b) => b.k === 'ref') && enclosing !== undefined;
        if (hasRef) {
          branches.push('null');
          seen.add('null');
        }
        for (const b of s.branches) {
          if (b.k === 'union') continue;
          const schema = convert(b, enclosing);
          const key = typeof schema === 'string' ? schema : (schema as { name?: string; type: string }).name ?? (schema as { type: string }).type;
          if (seen.has(key)) continue;
          seen.add(key);
          branches.push(schema);
        }
        return branches.length === 0 ? 'null' : branches;
      }
    }
  };
  return convert(root, undefined);
}

/** A value of `type` in avsc's representation (wrapped unions), recursion cut off by preferring null past `depth`. */
function valueArb(type: avro.Type, depth: number): fc.Arbitrary<unknown> {
  switch (type.typeName) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return fc.integer({ min: INT_MIN, max: INT_MAX });
    case 'abstract:long':
    case 'long':
      return fc.oneof(fc.maxSafeInteger(), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map(normalizeLong));
    // No -0: JSON.stringify (avsc's toString) writes it as 0, so no JSON round trip can keep it.
    case 'float':
      return fc.float({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : Math.fround(x)));
    case 'double':
      return fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));
    case 'string':
      return fc.string({ unit: 'grapheme', maxLength: 6 });
    case 'bytes':
      return fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b));
    case 'fixed': {
      const size = (type as avro.types.FixedType).size;
      return fc.uint8Array({ minLength: size, maxLength: size }).map((b) => Buffer.from(b));
    }
    case 'enum':
      return fc.constantFrom(...(type as avro.types.EnumType).symbols);
    case 'array':
      return depth > 6 ? fc.constant([]) : fc.array(valueArb((type as avro.types.ArrayType).itemsType, depth + 1), { maxLength: 3 });
    case 'map':
      return depth > 6
        ? fc.constant({})
        : fc.dictionary(fc.string({ maxLength: 4 }), valueArb((type as avro.types.MapType).valuesType, depth + 1), { maxKeys: 3 });
    case 'record': {
      const fields = (type as avro.types.RecordType).fields;
      return fc.record(Object.fromEntries(fields.map((f) => [f.name, valueArb(f.type, depth + 1)])));
    }
    case 'union:wrapped': {
      const branches = (type as avro.types.WrappedUnionType).types;
      const nullable = branches.some((b) => b.typeName === 'null');
      if (depth > 6 && nullable) return fc.constant(null);
      return fc.oneof(
        ...branches.map((b) => (b.typeName === 'null' ? fc.constant(null) : valueArb(b, depth + 1).map((v) => ({ [(b as unknown as { branchName: string }).branchName]: v })))),
      );
    }
    default:
      throw new Error(`no generator for ${type.typeName}`);
  }
}

/**
 * Size of the schema for the work bound: its distinct types plus every union
 * branch (a union decides a value once and tries each branch at most once).
 */
function schemaSize(type: avro.Type): number {
  const seen = new Set<avro.Type>();
  let branches = 0;
  const visit = (t: avro.Type): void => {
    if (seen.has(t)) return;
    seen.add(t);
    const inner = t as unknown as { types?: avro.Type[]; itemsType?: avro.Type; valuesType?: avro.Type; fields?: Array<{ type: avro.Type }> };
    branches += inner.types?.length ?? 0;
    for (const x of [...(inner.types ?? []), ...(inner.fields?.map((f) => f.type) ?? []), inner.itemsType, inner.valuesType]) if (x !== undefined) visit(x);
  };
  visit(type);
  return seen.size + branches;
}

/** Nodes of a parsed JSON value (every object, array and scalar). */
function jsonNodes(v: unknown): number {
  if (Array.isArray(v)) return 1 + v.reduce<number>((n, x) => n + jsonNodes(x), 0);
  if (v !== null && typeof v === 'object') return 1 + Object.values(v).reduce<number>((n, x) => n + jsonNodes(x), 0);
  return 1;
}

/** Decodes; the value (or undefined on a PayloadMismatch) and the work it took. */
function decodeCounted(type: avro.Type, json: unknown): { value: unknown; steps: number; accepted: boolean } {
  const work: DecodeWork = { steps: 0 };
  try {
    return { value: compilePayloadDecoder(type)(json, work), steps: work.steps, accepted: true };
  } catch (err) {
    if (!(err instanceof PayloadMismatch)) throw err;
    return { value: undefined, steps: work.steps, accepted: false };
  }
}

function withinBound(type: avro.Type, json: unknown, steps: number): boolean {
  return steps <= jsonNodes(json) * schemaSize(type);
}

/** Plain JSON: unions unwrapped (what most producers send), bytes as Avro's code-point strings, longs as numbers or strings. */
function plain(type: avro.Type, v: unknown): unknown {
  return JSON.parse(type.toString(v), (_k, x: unknown) => {
    if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      const keys = Object.keys(x);
      if (keys.length === 1 && /^(boolean|int|long|float|double|string|bytes|array|map|R\d+|E\d+|F\d+)$/.test(keys[0]!)) return (x as Record<string, unknown>)[keys[0]!];
    }
    return x;
  });
}

const nasty = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(2 ** 31, 2 ** 53, 1e39, -1.5, '\ud800', 'S9', '\u0100', '9223372036854775808', [], {}, null, { R0: null }, { long: 'x' }),
);

type Path = Array<string | number>;
function paths(v: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}
function replaceAt(v: unknown, path: Path, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(v) ? [...v] : { ...(v as Record<string, unknown>) }) as Record<string | number, unknown>;
  copy[head!] = replaceAt(copy[head!], rest, replacement);
  return copy;
}

const schemaAndValue = shapeArb
  .map((shape) => parseSchema(toSchema({ k: 'record', fields: [shape] })))
  .chain((type) => valueArb(type, 0).map((value) => ({ type, value })));

// Thousands of cases: room for a busy machine (the bound asserted is on work, not time).
describe('JSON payload decoder against avsc (generated schemas)', { timeout: 120_000 }, () => {
  it('decodes the Avro JSON encoding of any value back to the same bytes, within the work bound', () => {
    fc.assert(
      fc.property(schemaAndValue, ({ type, value }) => {
        const json = JSON.parse(type.toString(value)) as unknown;
        const r = decodeCounted(type, json);
        expect(r.accepted).toBe(true);
        expect(type.isValid(r.value)).toBe(true);
        expect(type.toBuffer(r.value).equals(type.toBuffer(value))).toBe(true);
        expect(withinBound(type, json, r.steps)).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });

  it('accepts plain (unwrapped) and mutated payloads only as values avsc holds valid and encodes, within the work bound', () => {
    fc.assert(
      fc.property(schemaAndValue, fc.nat(), nasty, fc.boolean(), ({ type, value }, pick, bad, mutate) => {
        let json = plain(type, value);
        if (mutate) {
          const all = paths(json);
          json = replaceAt(json, all[pick % all.length]!, bad);
        }
        const r = decodeCounted(type, json);
        if (r.accepted) {
          expect(type.isValid(r.value)).toBe(true);
          expect(() => type.toBuffer(r.value)).not.toThrow();
        }
        expect(withinBound(type, json, r.steps)).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });
});

describe('JSON payload decoder on adversarial unions (same-shaped records nested deep)', { timeout: 120_000 }, () => {
  // Three same-shaped records in every union, referring to each other.
  const shaped = (name: string, others: unknown[]): unknown => ({ type: 'record', name, fields: [{ name: 'next', type: ['null', ...others] }] });
  const triplets = parseSchema({
    type: 'record',
    name: 'Root',
    fields: [{ name: 'next', type: ['null', shaped('A', ['A', shaped('B', ['A', 'B', shaped('C', ['A', 'B', 'C'])]), 'C']), 'B', 'C'] }],
  });
  const size = schemaSize(triplets);

  it('answers every nesting (wrapped or plain at each level, valid or broken at the bottom) within the work bound, and refuses beyond the depth limit', () => {
    const level = fc.constantFrom('plain', 'A', 'B', 'C');
    fc.assert(
      fc.property(fc.array(level, { minLength: 1, maxLength: MAX_NESTING_DEPTH + 20 }), fc.constantFrom<unknown>(null, 5, 'x', { next: 1 }), (levels, bottom) => {
        let json: unknown = bottom;
        for (const l of levels) json = l === 'plain' ? { next: json } : { next: { [l]: json } };
        const r = decodeCounted(triplets, json);
        expect(r.steps).toBeLessThanOrEqual(jsonNodes(json) * size);
        if (r.accepted) expect(triplets.isValid(r.value)).toBe(true);
        // The JSON nests one object per level, two for a wrapped one, plus the root.
        const depth = 1 + levels.reduce((n, l) => n + (l === 'plain' ? 1 : 2), 0);
        if (depth > MAX_NESTING_DEPTH) expect(r.accepted).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
