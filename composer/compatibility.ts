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
import {
  isNamed,
  parseSchema,
  SchemaError,
  shortName,
  type ArrayNode,
  type AvroNode,
  type AvroPrimitive,
  type DecimalType,
  type EnumNode,
  type FixedNode,
  type MapNode,
  type NamedNode,
  type RecordNode,
  type UnionNode,
} from '../lib/avro/schema.ts';
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

/** Writer types each reader primitive accepts besides itself (Avro spec promotions). */
const PROMOTIONS: Record<AvroPrimitive, readonly AvroPrimitive[]> = {
  null: [],
  boolean: [],
  int: [],
  long: ['int'],
  float: ['int', 'long'],
  double: ['int', 'long', 'float'],
  string: ['bytes'],
  bytes: ['string'],
};

function describe(node: AvroNode): string {
  switch (node.kind) {
    case 'primitive':
      return node.decimal === undefined ? node.type : `${node.type} decimal(${node.decimal.precision},${node.decimal.scale})`;
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

/**
 * The spec's name match for named types: the same unqualified name, or the
 * writer's full name among the reader's aliases (aliases are full names).
 */
function namesMatch(reader: NamedNode, writer: NamedNode): boolean {
  return shortName(reader.name) === shortName(writer.name) || reader.aliases.includes(writer.name);
}

/** The spec's "matches" test used to pick a reader union branch (no deep check). */
function shallowMatch(reader: AvroNode, writer: AvroNode): boolean {
  if (reader.kind === 'primitive' && writer.kind === 'primitive') {
    return reader.type === writer.type || PROMOTIONS[reader.type].includes(writer.type);
  }
  if (reader.kind !== writer.kind) return false;
  if (reader.kind === 'fixed') return namesMatch(reader, writer as FixedNode) && reader.size === (writer as FixedNode).size;
  if (isNamed(reader)) return namesMatch(reader, writer as NamedNode);
  return true;
}

/** Decimals resolve only with equal precision and scale (Avro spec, "Logical Types"). */
function decimalProblem(reader: { decimal: DecimalType | undefined }, writer: { decimal: DecimalType | undefined }): string | undefined {
  const r = reader.decimal;
  const w = writer.decimal;
  if (r === undefined || w === undefined || (r.precision === w.precision && r.scale === w.scale)) return undefined;
  return `reader decimal(${r.precision},${r.scale}) cannot read writer decimal(${w.precision},${w.scale}): precision and scale must be equal`;
}

function join(path: string, step: string): string {
  if (step.startsWith('[') || step.startsWith('{')) return `${path}${step}`;
  return path === '' ? step : `${path}.${step}`;
}

class Checker {
  /** Record pairs being checked: a recursive pair met again is assumed compatible. */
  private readonly inProgress = new Map<RecordNode, Set<RecordNode>>();
  readonly reasons: CompatibilityReason[] = [];

  private fail(path: string, message: string): false {
    this.reasons.push({ path: path === '' ? '(root)' : path, message });
    return false;
  }

  check(reader: AvroNode, writer: AvroNode, path: string): boolean {
    // Writer union: every branch the writer may have written must be readable.
    if (writer.kind === 'union') {
      let ok = true;
      for (const w of writer.branches) {
        const readable = reader.kind === 'union' ? this.pickBranch(reader, w, path, `writer union branch ${describe(w)}`) : this.check(reader, w, path);
        if (!readable) ok = false;
      }
      return ok;
    }
    if (reader.kind === 'union') return this.pickBranch(reader, writer, path, `writer type ${describe(writer)}`);

    if (reader.kind === 'primitive' && writer.kind === 'primitive') {
      if (reader.type !== writer.type && !PROMOTIONS[reader.type].includes(writer.type)) {
        return this.fail(path, `reader type ${reader.type} cannot read writer type ${writer.type}`);
      }
      const decimal = decimalProblem(reader, writer);
      return decimal === undefined ? true : this.fail(path, decimal);
    }
    if (reader.kind !== writer.kind) {
      return this.fail(path, `reader type ${describe(reader)} cannot read writer type ${describe(writer)}`);
    }
    switch (reader.kind) {
      case 'array':
        return this.check(reader.items, (writer as ArrayNode).items, join(path, '[]'));
      case 'map':
        return this.check(reader.values, (writer as MapNode).values, join(path, '{}'));
      case 'fixed': {
        const w = writer as FixedNode;
        if (!namesMatch(reader, w)) return this.fail(path, `fixed name ${reader.name} does not match writer's ${w.name} (and is not an alias)`);
        if (reader.size !== w.size) return this.fail(path, `fixed ${reader.name} has size ${reader.size} in the reader but ${w.size} in the writer`);
        const decimal = decimalProblem(reader, w);
        return decimal === undefined ? true : this.fail(path, decimal);
      }
      case 'enum': {
        const w = writer as EnumNode;
        if (!namesMatch(reader, w)) return this.fail(path, `enum name ${reader.name} does not match writer's ${w.name} (and is not an alias)`);
        const missing = w.symbols.filter((s) => !reader.symbols.includes(s));
        if (missing.length > 0 && reader.default === undefined) {
          return this.fail(path, `enum ${reader.name}: writer symbol(s) ${missing.join(', ')} not in the reader's symbols, and the reader's enum has no default`);
        }
        return true;
      }
      case 'record':
        return this.checkRecord(reader, writer as RecordNode, path);
      default:
        return true;
    }
  }

  private checkRecord(reader: RecordNode, writer: RecordNode, path: string): boolean {
    if (!namesMatch(reader, writer)) {
      return this.fail(path, `record name ${reader.name} does not match writer's ${writer.name} (and is not an alias)`);
    }
    let writers = this.inProgress.get(reader);
    if (writers?.has(writer) === true) return true;
    if (writers === undefined) this.inProgress.set(reader, (writers = new Set()));
    writers.add(writer);
    let ok = true;
    for (const rf of reader.fields) {
      const wf = writer.fields.find((f) => f.name === rf.name) ?? writer.fields.find((f) => rf.aliases.includes(f.name));
      const fieldPath = join(path, rf.name);
      if (wf === undefined) {
        if (rf.default === undefined) ok = this.fail(fieldPath, `field ${rf.name} is in the reader but not in the writer, and has no default`);
        continue;
      }
      if (!this.check(rf.type, wf.type, fieldPath)) ok = false;
    }
    writers.delete(writer);
    return ok;
  }

  /**
   * Reader is a union: the branch a reader picks for the writer's type must
   * read it. Named branches: the writer's full name first, then a branch
   * aliasing it, then the unqualified name (as Java's and avsc's resolvers
   * do); otherwise the exact type before a promotion.
   */
  private pickBranch(reader: UnionNode, writer: AvroNode, path: string, what: string): boolean {
    const candidates = reader.branches.filter((r) => shallowMatch(r, writer));
    const branch = isNamed(writer)
      ? (candidates.find((r) => isNamed(r) && r.name === writer.name) ??
        candidates.find((r) => isNamed(r) && r.aliases.includes(writer.name)) ??
        candidates[0])
      : (candidates.find((r) => r.kind !== 'primitive' || writer.kind !== 'primitive' || r.type === writer.type) ?? candidates[0]);
    if (branch === undefined) return this.fail(path, `${what} matches no branch of the reader's ${describe(reader)}`);
    return this.check(branch, writer, path);
  }
}

/**
 * Can data written with `writer` be read with `reader`? Pure; follows the
 * Avro specification's schema-resolution rules; annotations are ignored. A
 * schema that is not valid Avro (lib/avro/schema.ts) makes the pair
 * incompatible, with the parser's reason.
 */
export function checkCompatibility(reader: unknown, writer: unknown): CompatibilityResult {
  const r = modelOf(reader, 'reader');
  const w = modelOf(writer, 'writer');
  if ('problem' in r || 'problem' in w) {
    return { compatible: false, reasons: [r, w].flatMap((m) => ('problem' in m ? [m.problem] : [])) };
  }
  const checker = new Checker();
  const compatible = checker.check(r.node, w.node, '');
  return { compatible, reasons: checker.reasons };
}

function modelOf(schema: unknown, role: 'reader' | 'writer'): { node: AvroNode } | { problem: CompatibilityReason } {
  try {
    return { node: parseSchema(schema).root };
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    return { problem: { path: '(root)', message: `the ${role} schema is not valid Avro: ${err.message}` } };
  }
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
  const seen = new Set<RecordNode>();
  const visit = (n: AvroNode, path: string): void => {
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
  visit(parseSchema(schema).root, '');
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
