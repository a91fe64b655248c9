/**
 * Schema evolution: Avro schema resolution (Avro specification, "Schema
 * Resolution") as pure functions, written here rather than borrowed from
 * avsc's resolver so each verdict comes with the field and the reason.
 *
 * `checkCompatibility(reader, writer)` answers: can data written with `writer`
 * be read with `reader`? `checkMode` applies a registry compatibility mode
 * (BACKWARD: the new schema reads the previous; FORWARD: the previous reads
 * the new; FULL: both; *_TRANSITIVE: against every previous version; NONE).
 *
 * Paths in reasons use the annotation paths of lib/avro/annotations.ts:
 * `user.email`, `devices[]`, `attributes{}`; `(root)` for the top level.
 */
import { inspectAnnotations } from '../lib/avro/annotations.ts';
import type { CompatibilityMode } from '../lib/registry/types.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';

export interface CompatibilityReason {
  path: string;
  message: string;
  /** For mode checks: the registered version the candidate was checked against. */
  version?: number;
  /** For mode checks: `backward` (new reads old) or `forward` (old reads new). */
  direction?: 'backward' | 'forward';
}

export interface CompatibilityResult {
  compatible: boolean;
  reasons: CompatibilityReason[];
}

export const compatibilityModes: readonly CompatibilityMode[] = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
];

type Primitive = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';
const PRIMITIVES: ReadonlySet<string> = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

interface FieldNode {
  name: string;
  aliases: string[];
  type: SchemaNode;
  hasDefault: boolean;
}

type SchemaNode =
  | { kind: 'primitive'; type: Primitive }
  | { kind: 'record'; name: string; aliases: string[]; fields: FieldNode[] }
  | { kind: 'enum'; name: string; aliases: string[]; symbols: string[]; default: string | undefined }
  | { kind: 'fixed'; name: string; aliases: string[]; size: number }
  | { kind: 'array'; items: SchemaNode }
  | { kind: 'map'; values: SchemaNode }
  | { kind: 'union'; branches: SchemaNode[] };

/** Writer types each reader primitive accepts besides itself (Avro spec promotions). */
const PROMOTIONS: Record<Primitive, readonly Primitive[]> = {
  null: [],
  boolean: [],
  int: [],
  long: ['int'],
  float: ['int', 'long'],
  double: ['int', 'long', 'float'],
  string: ['bytes'],
  bytes: ['string'],
};

/** Thrown for schema JSON that is not Avro; callers validate with avsc first. */
export class SchemaShapeError extends Error {}

function qualify(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

/** Parses schema JSON into nodes; named references resolve to the same node (cycles allowed). */
export function parseSchemaNode(schema: unknown): SchemaNode {
  const named = new Map<string, SchemaNode>();
  const parse = (s: unknown, ns: string): SchemaNode => {
    if (typeof s === 'string') {
      if (PRIMITIVES.has(s)) return { kind: 'primitive', type: s as Primitive };
      const ref = named.get(qualify(s, ns)) ?? named.get(s);
      if (ref === undefined) throw new SchemaShapeError(`unknown type name '${s}'`);
      return ref;
    }
    if (Array.isArray(s)) return { kind: 'union', branches: s.map((b) => parse(b, ns)) };
    if (typeof s !== 'object' || s === null) throw new SchemaShapeError(`not a schema: ${JSON.stringify(s)}`);
    const o = s as Record<string, unknown>;
    const type = o.type;
    const localNs = typeof o.namespace === 'string' ? o.namespace : ns;
    const nameOf = (): { name: string; ns: string; aliases: string[] } => {
      if (typeof o.name !== 'string') throw new SchemaShapeError(`${String(type)} without a name`);
      const name = qualify(o.name, localNs);
      const nameNs = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
      const aliases = Array.isArray(o.aliases) ? o.aliases.filter((a): a is string => typeof a === 'string').map((a) => qualify(a, nameNs)) : [];
      return { name, ns: nameNs, aliases };
    };
    switch (type) {
      case 'record':
      case 'error': {
        const { name, ns: recordNs, aliases } = nameOf();
        const node: SchemaNode = { kind: 'record', name, aliases, fields: [] };
        named.set(name, node);
        for (const f of Array.isArray(o.fields) ? (o.fields as Record<string, unknown>[]) : []) {
          if (typeof f?.name !== 'string') throw new SchemaShapeError(`field without a name in ${name}`);
          node.fields.push({
            name: f.name,
            aliases: Array.isArray(f.aliases) ? f.aliases.filter((a): a is string => typeof a === 'string') : [],
            type: parse(f.type, recordNs),
            hasDefault: Object.prototype.hasOwnProperty.call(f, 'default'),
          });
        }
        return node;
      }
      case 'enum': {
        const { name, aliases } = nameOf();
        const symbols = Array.isArray(o.symbols) ? o.symbols.filter((x): x is string => typeof x === 'string') : [];
        const node: SchemaNode = { kind: 'enum', name, aliases, symbols, default: typeof o.default === 'string' ? o.default : undefined };
        named.set(name, node);
        return node;
      }
      case 'fixed': {
        const { name, aliases } = nameOf();
        const node: SchemaNode = { kind: 'fixed', name, aliases, size: typeof o.size === 'number' ? o.size : -1 };
        named.set(name, node);
        return node;
      }
      case 'array':
        return { kind: 'array', items: parse(o.items, localNs) };
      case 'map':
        return { kind: 'map', values: parse(o.values, localNs) };
      default:
        // {"type": "long", "logicalType": …} and {"type": {…}}: resolution ignores logical types.
        return parse(type, localNs);
    }
  };
  return parse(schema, '');
}

function describe(node: SchemaNode): string {
  switch (node.kind) {
    case 'primitive':
      return node.type;
    case 'record':
    case 'enum':
    case 'fixed':
      return `${node.kind} ${node.name}`;
    case 'array':
      return `array<${describe(node.items)}>`;
    case 'map':
      return `map<${describe(node.values)}>`;
    case 'union':
      return `union[${node.branches.map(describe).join(', ')}]`;
  }
}

/** Named-type match: same unqualified name, or the writer's name among the reader's aliases. */
function namesMatch(reader: { name: string; aliases: string[] }, writer: { name: string }): boolean {
  if (shortName(reader.name) === shortName(writer.name)) return true;
  return reader.aliases.some((a) => a === writer.name || shortName(a) === shortName(writer.name));
}

/** The spec's "matches" test used to pick a reader union branch (no deep check). */
function shallowMatch(reader: SchemaNode, writer: SchemaNode): boolean {
  if (reader.kind === 'primitive' && writer.kind === 'primitive') {
    return reader.type === writer.type || PROMOTIONS[reader.type].includes(writer.type);
  }
  if (reader.kind !== writer.kind) return false;
  if (reader.kind === 'record' || reader.kind === 'enum' || reader.kind === 'fixed') {
    return namesMatch(reader, writer as { name: string });
  }
  return true;
}

function join(path: string, step: string): string {
  if (step.startsWith('[') || step.startsWith('{')) return `${path}${step}`;
  return path === '' ? step : `${path}.${step}`;
}

class Checker {
  private readonly inProgress = new Set<string>();
  private readonly ids = new WeakMap<SchemaNode, number>();
  private nextId = 0;
  readonly reasons: CompatibilityReason[] = [];

  private id(n: SchemaNode): number {
    let v = this.ids.get(n);
    if (v === undefined) {
      v = this.nextId++;
      this.ids.set(n, v);
    }
    return v;
  }

  private fail(path: string, message: string): false {
    this.reasons.push({ path: path === '' ? '(root)' : path, message });
    return false;
  }

  check(reader: SchemaNode, writer: SchemaNode, path: string): boolean {
    // Writer union: every branch the writer may have written must be readable.
    if (writer.kind === 'union') {
      if (reader.kind === 'union') {
        let ok = true;
        for (const w of writer.branches) {
          if (!this.pickBranch(reader, w, path, `writer union branch ${describe(w)}`)) ok = false;
        }
        return ok;
      }
      let ok = true;
      for (const w of writer.branches) if (!this.check(reader, w, path)) ok = false;
      return ok;
    }
    if (reader.kind === 'union') return this.pickBranch(reader, writer, path, `writer type ${describe(writer)}`);

    if (reader.kind === 'primitive' && writer.kind === 'primitive') {
      if (reader.type === writer.type || PROMOTIONS[reader.type].includes(writer.type)) return true;
      return this.fail(path, `reader type ${reader.type} cannot read writer type ${writer.type}`);
    }
    if (reader.kind !== writer.kind) {
      return this.fail(path, `reader type ${describe(reader)} cannot read writer type ${describe(writer)}`);
    }
    switch (reader.kind) {
      case 'array':
        return this.check(reader.items, (writer as { items: SchemaNode }).items, join(path, '[]'));
      case 'map':
        return this.check(reader.values, (writer as { values: SchemaNode }).values, join(path, '{}'));
      case 'fixed': {
        const w = writer as Extract<SchemaNode, { kind: 'fixed' }>;
        if (!namesMatch(reader, w)) return this.fail(path, `fixed name ${reader.name} does not match writer's ${w.name} (and is not an alias)`);
        if (reader.size !== w.size) return this.fail(path, `fixed ${reader.name} has size ${reader.size} in the reader but ${w.size} in the writer`);
        return true;
      }
      case 'enum': {
        const w = writer as Extract<SchemaNode, { kind: 'enum' }>;
        if (!namesMatch(reader, w)) return this.fail(path, `enum name ${reader.name} does not match writer's ${w.name} (and is not an alias)`);
        const missing = w.symbols.filter((s) => !reader.symbols.includes(s));
        if (missing.length > 0 && reader.default === undefined) {
          return this.fail(path, `enum ${reader.name}: writer symbol(s) ${missing.join(', ')} not in the reader's symbols, and the reader's enum has no default`);
        }
        return true;
      }
      case 'record':
        return this.checkRecord(reader, writer as Extract<SchemaNode, { kind: 'record' }>, path);
      default:
        return true;
    }
  }

  private checkRecord(reader: Extract<SchemaNode, { kind: 'record' }>, writer: Extract<SchemaNode, { kind: 'record' }>, path: string): boolean {
    if (!namesMatch(reader, writer)) {
      return this.fail(path, `record name ${reader.name} does not match writer's ${writer.name} (and is not an alias)`);
    }
    // Recursive schemas: a pair already being checked is assumed compatible.
    const key = `${this.id(reader)}:${this.id(writer)}`;
    if (this.inProgress.has(key)) return true;
    this.inProgress.add(key);
    let ok = true;
    for (const rf of reader.fields) {
      const wf = writer.fields.find((f) => f.name === rf.name) ?? writer.fields.find((f) => rf.aliases.includes(f.name));
      const fieldPath = join(path, rf.name);
      if (wf === undefined) {
        if (!rf.hasDefault) ok = this.fail(fieldPath, `field ${rf.name} is in the reader but not in the writer, and has no default`);
        continue;
      }
      if (!this.check(rf.type, wf.type, fieldPath)) ok = false;
    }
    this.inProgress.delete(key);
    return ok;
  }

  /** Reader is a union: the first matching branch (exact kind first, then promotion) must read `writer`. */
  private pickBranch(reader: Extract<SchemaNode, { kind: 'union' }>, writer: SchemaNode, path: string, what: string): boolean {
    const exact = reader.branches.find(
      (r) => shallowMatch(r, writer) && (r.kind !== 'primitive' || writer.kind !== 'primitive' || r.type === writer.type),
    );
    const branch = exact ?? reader.branches.find((r) => shallowMatch(r, writer));
    if (branch === undefined) return this.fail(path, `${what} matches no branch of the reader's ${describe(reader)}`);
    return this.check(branch, writer, path);
  }
}

/**
 * Can data written with `writer` be read with `reader`? Pure; follows the
 * Avro specification's schema-resolution rules. Both schemas must be valid
 * Avro (validate with avsc first); annotations are ignored.
 */
export function checkCompatibility(reader: unknown, writer: unknown): CompatibilityResult {
  const checker = new Checker();
  const compatible = checker.check(parseSchemaNode(reader), parseSchemaNode(writer), '');
  return { compatible, reasons: checker.reasons };
}

/**
 * Checks `candidate` against the registered versions (oldest first) under
 * `mode`. Versions are numbered from 1 in reasons.
 */
export function checkMode(mode: CompatibilityMode, candidate: unknown, previous: readonly unknown[]): CompatibilityResult {
  if (mode === 'NONE' || previous.length === 0) return { compatible: true, reasons: [] };
  const transitive = mode.endsWith('_TRANSITIVE');
  const base = mode.replace('_TRANSITIVE', '');
  const indexes = transitive ? previous.map((_, i) => i) : [previous.length - 1];
  const reasons: CompatibilityReason[] = [];
  for (const i of indexes) {
    const old = previous[i];
    if (base === 'BACKWARD' || base === 'FULL') {
      for (const r of checkCompatibility(candidate, old).reasons) reasons.push({ ...r, version: i + 1, direction: 'backward' });
    }
    if (base === 'FORWARD' || base === 'FULL') {
      for (const r of checkCompatibility(old, candidate).reasons) reasons.push({ ...r, version: i + 1, direction: 'forward' });
    }
  }
  return { compatible: reasons.length === 0, reasons };
}

/** Every leaf path of a schema (same notation as annotations), to tell a removed field from a changed annotation. */
export function leafPaths(schema: unknown): Set<string> {
  const out = new Set<string>();
  const seen = new Set<SchemaNode>();
  const visit = (n: SchemaNode, path: string): void => {
    switch (n.kind) {
      case 'record':
        if (seen.has(n)) return;
        seen.add(n);
        for (const f of n.fields) visit(f.type, join(path, f.name));
        seen.delete(n);
        return;
      case 'array':
        return visit(n.items, join(path, '[]'));
      case 'map':
        return visit(n.values, join(path, '{}'));
      case 'union':
        for (const b of n.branches) visit(b, path);
        return;
      default:
        out.add(path === '' ? '(root)' : path);
    }
  };
  visit(parseSchemaNode(schema), '');
  return out;
}

/**
 * Personal fields of `previous` that `candidate` keeps but no longer marks
 * personal (annotation removed or changed to a non-personal type). Such a
 * change would store personal data in clear from then on, so the composer
 * refuses it unless forced. Removing the field altogether is not a downgrade.
 */
export function personalDowngrades(previous: unknown, candidate: unknown, catalogue: SemanticCatalogue): CompatibilityReason[] {
  const before = inspectAnnotations(previous, catalogue).fields.filter((f) => f.personal);
  const after = inspectAnnotations(candidate, catalogue).fields;
  const paths = leafPaths(candidate);
  const reasons: CompatibilityReason[] = [];
  for (const f of before) {
    if (!paths.has(f.path)) continue;
    const now = after.find((a) => a.path === f.path);
    if (now === undefined) {
      reasons.push({ path: f.path, message: `personal annotation "${f.semanticType}" removed; the field would be stored unencrypted (use force to override)` });
    } else if (!now.personal) {
      reasons.push({ path: f.path, message: `semantic type changed from personal "${f.semanticType}" to non-personal "${now.semanticType}"; the field would be stored unencrypted (use force to override)` });
    }
  }
  return reasons;
}
