/**
 * Generates Avro schemas and reader/writer pairs for differential tests of
 * the compatibility checker: a base schema, then two independent mutations of
 * it (fields added, dropped or renamed with aliases, types changed, promoted
 * or wrapped in unions, enum symbols and defaults, fixed sizes, names and
 * namespaces, decimal precision and scale), so pairs are often but not always
 * compatible. Deterministic for a seed; every schema it returns is valid
 * (checked with lib/avro/schema.ts's parser; invalid mutations are redrawn).
 */
import { parseSchema } from '../../lib/avro/schema.ts';

type Json = unknown;
type Obj = Record<string, unknown>;

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PRIMITIVES = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'] as const;
const SHORT_NAMES = ['A', 'B', 'C'];
const NAMESPACES = ['', 'n1', 'n2'];
const SYMBOLS = ['S0', 'S1', 'S2', 'S3'];

export class SchemaGenerator {
  private readonly random: () => number;
  private counter = 0;

  constructor(seed: number) {
    this.random = prng(seed);
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  private chance(p: number): boolean {
    return this.random() < p;
  }

  /** A fresh short name (numbered, so definitions never clash), maybe sharing its first letter pool with others. */
  private name(): string {
    return `${this.pick(SHORT_NAMES)}${this.counter++}`;
  }

  /** A top-level record schema. */
  schema(): Json {
    for (;;) {
      this.counter = 0;
      const s = this.record(0, this.pick(NAMESPACES));
      if (valid(s)) return s;
    }
  }

  private type(depth: number, ns: string): Json {
    const k = this.int(depth >= 3 ? 3 : 10);
    switch (k) {
      case 0:
      case 1:
        return this.pick(PRIMITIVES.filter((p) => p !== 'null'));
      case 2:
        return this.chance(0.5) ? { type: 'bytes', logicalType: 'decimal', precision: 4 + this.int(8), scale: this.int(4) } : { type: this.pick(['int', 'long', 'string']) };
      case 3:
        return { type: 'enum', name: this.name(), ...(ns === '' ? {} : { namespace: ns }), symbols: SYMBOLS.slice(0, 1 + this.int(4)), ...(this.chance(0.3) ? { default: 'S0' } : {}) };
      case 4:
        return { type: 'fixed', name: this.name(), size: this.pick([2, 4, 8]), ...(this.chance(0.3) ? { namespace: this.pick(NAMESPACES) } : {}) };
      case 5:
        return { type: 'array', items: this.type(depth + 1, ns) };
      case 6:
        return { type: 'map', values: this.type(depth + 1, ns) };
      case 7:
        return ['null', this.type(depth + 1, ns)];
      case 8: {
        // Two named branches sharing a short name in different namespaces (the case that needs full names).
        const short = this.name();
        const [a, b] = this.chance(0.5) ? ['n1', 'n2'] : ['n2', ''];
        const make = (space: string): Json =>
          this.chance(0.5)
            ? { type: 'record', name: short, namespace: space, fields: [{ name: 'v', type: this.pick(['int', 'string', 'long']) }] }
            : { type: 'fixed', name: short, namespace: space, size: this.pick([2, 4, 8]) };
        return [make(a), make(b)];
      }
      default:
        return this.record(depth + 1, ns);
    }
  }

  private record(depth: number, ns: string): Obj {
    const space = this.chance(0.3) ? this.pick(NAMESPACES) : ns;
    const fields = Array.from({ length: 1 + this.int(depth === 0 ? 4 : 3) }, (_, i) => this.field(`f${i}`, depth, space));
    return { type: 'record', name: this.name(), ...(space === ns ? {} : { namespace: space }), fields };
  }

  private field(name: string, depth: number, ns: string): Obj {
    const type = this.type(depth, ns);
    const f: Obj = { name, type };
    const d = this.chance(0.4) ? defaultFor(type) : undefined;
    if (d !== undefined) f.default = d.value;
    return f;
  }

  /** A reader and a writer: two mutations of one base schema (sometimes the base itself). */
  pair(): { reader: Json; writer: Json } {
    const base = this.schema();
    return { reader: this.mutated(base), writer: this.mutated(base) };
  }

  /** `schema` with 0 to 2 random edits; redrawn until valid. */
  mutated(schema: Json): Json {
    for (let attempt = 0; attempt < 50; attempt++) {
      let s = structuredClone(schema);
      const edits = this.int(3);
      for (let i = 0; i < edits; i++) s = this.edit(s);
      if (valid(s)) return s;
    }
    return schema;
  }

  /** One edit at a random place of the schema. */
  private edit(schema: Json): Json {
    const spots: { get: () => Json; set: (v: Json) => void }[] = [];
    const collect = (holder: Obj | Json[], key: string | number): void => {
      const v = (holder as Record<string | number, Json>)[key];
      spots.push({ get: () => (holder as Record<string | number, Json>)[key], set: (x) => ((holder as Record<string | number, Json>)[key] = x) });
      if (Array.isArray(v)) v.forEach((_, i) => collect(v, i));
      else if (typeof v === 'object' && v !== null) {
        const o = v as Obj;
        if (Array.isArray(o.fields)) for (const f of o.fields as Obj[]) collect(f, 'type');
        if (o.items !== undefined) collect(o, 'items');
        if (o.values !== undefined) collect(o, 'values');
      }
    };
    const root = { s: schema };
    collect(root, 's');
    const spot = this.pick(spots);
    spot.set(this.editType(spot.get()));
    return root.s;
  }

  private editType(t: Json): Json {
    if (typeof t === 'string') {
      return this.chance(0.7) ? this.pick(PRIMITIVES.filter((p) => p !== 'null')) : ['null', t];
    }
    if (Array.isArray(t)) {
      if (t.length > 1 && this.chance(0.5)) return t.filter((_, i) => i !== this.int(t.length));
      return [...t, this.pick(PRIMITIVES.filter((p) => !t.includes(p)))];
    }
    const o = { ...(t as Obj) };
    switch (o.type) {
      case 'record': {
        const fields = [...(o.fields as Obj[])];
        const k = this.int(6);
        if (k === 0 && fields.length > 1) fields.splice(this.int(fields.length), 1);
        else if (k === 1) {
          const type = this.pick(['int', 'string', 'long', 'double']);
          fields.push({ name: `x${this.counter++}`, type, ...(this.chance(0.5) ? { default: defaultFor(type)!.value } : {}) });
        } else if (k === 2 && fields.length > 0) {
          const i = this.int(fields.length);
          const f = fields[i]!;
          fields[i] = { ...f, name: `${String(f.name)}r`, aliases: [f.name] };
        } else if (k === 3) {
          const old = String(o.name);
          o.name = `${old}z`;
          const oldFull = o.namespace === undefined || o.namespace === '' ? old : `${String(o.namespace)}.${old}`;
          o.aliases = [this.chance(0.5) ? oldFull : old];
        } else if (k === 4) {
          o.namespace = this.pick(NAMESPACES);
        } else if (fields.length > 0) {
          const i = this.int(fields.length);
          const f = { ...fields[i]! };
          delete f.default;
          if (this.chance(0.5)) {
            const d = defaultFor(f.type);
            if (d !== undefined) f.default = d.value;
          }
          fields[i] = f;
        }
        o.fields = fields;
        return o;
      }
      case 'enum': {
        const symbols = [...(o.symbols as string[])];
        const k = this.int(3);
        if (k === 0 && symbols.length > 1) symbols.pop();
        else if (k === 1 && symbols.length < SYMBOLS.length) symbols.push(SYMBOLS[symbols.length]!);
        else if (o.default === undefined) o.default = symbols[0];
        else delete o.default;
        o.symbols = symbols;
        if (o.default !== undefined && !symbols.includes(o.default as string)) o.default = symbols[0];
        return o;
      }
      case 'fixed':
        if (this.chance(0.5)) o.size = this.pick([2, 4, 8]);
        else o.name = `${String(o.name)}y`;
        return o;
      case 'bytes':
        if (o.logicalType === 'decimal') {
          if (this.chance(0.5)) o.precision = (o.precision as number) + 1;
          else o.scale = Math.min((o.scale as number) + 1, o.precision as number);
        }
        return o;
      case 'array':
        return { ...o, items: this.editType(o.items) };
      case 'map':
        return { ...o, values: this.editType(o.values) };
      default:
        return this.pick(PRIMITIVES.filter((p) => p !== 'null'));
    }
  }
}

function valid(schema: Json): boolean {
  try {
    parseSchema(schema);
    return true;
  } catch {
    return false;
  }
}

/** A JSON default of a type written inline (no references), or undefined. */
function defaultFor(t: Json): { value: Json } | undefined {
  if (typeof t === 'string') {
    const byType: Record<string, Json> = { null: null, boolean: false, int: 0, long: 0, float: 0, double: 0, bytes: '', string: '' };
    return t in byType ? { value: byType[t] } : undefined;
  }
  if (Array.isArray(t)) return t[0] === undefined ? undefined : defaultFor(t[0]);
  const o = t as Obj;
  switch (o.type) {
    case 'enum':
      return { value: (o.symbols as string[])[0] };
    case 'fixed':
      return { value: '\u0000'.repeat(o.size as number) };
    case 'array':
      return { value: [] };
    case 'map':
      return { value: {} };
    case 'record': {
      const value: Obj = {};
      for (const f of o.fields as Obj[]) {
        const d = defaultFor(f.type);
        if (d === undefined) return undefined;
        value[f.name as string] = d.value;
      }
      return { value };
    }
    default:
      return typeof o.type === 'string' ? defaultFor(o.type) : undefined;
  }
}
