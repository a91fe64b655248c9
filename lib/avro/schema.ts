/**
 * The Avro schema model: schema JSON parsed once, validated, into a typed tree
 * with every name resolved as the specification defines it (full names,
 * namespaces inherited from the enclosing named type, aliases qualified
 * relative to the type they alias). A reference to a named type is the very
 * node of its definition, so recursive schemas are cyclic graphs; walkers
 * follow nodes, never names. Logical types are kept, and dropped where the
 * specification says an invalid one is ignored (e.g. a decimal whose scale
 * exceeds its precision).
 *
 * Every consumer of a schema's structure (compatibility, annotations, the
 * delivered schema, the personal-field guard) reads this tree instead of
 * walking JSON and resolving names itself.
 */
import { AppError } from '../errors.ts';

export type AvroPrimitive = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

export const AVRO_PRIMITIVES: ReadonlySet<string> = new Set<AvroPrimitive>(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** Attributes of a type object or field that are not part of Avro's own vocabulary (e.g. `semanticType`), plus `logicalType`'s companions. */
export type SchemaProps = Readonly<Record<string, unknown>>;

export interface DecimalType {
  precision: number;
  scale: number;
}

export interface PrimitiveNode {
  kind: 'primitive';
  type: AvroPrimitive;
  /** A valid logical type (`decimal`, `timestamp-millis`, …); undefined if none or ignored as invalid. */
  logicalType: string | undefined;
  /** Set for a valid `decimal` on `bytes`. */
  decimal: DecimalType | undefined;
  props: SchemaProps;
  /** The JSON it was parsed from: the name (`"long"`) or the type object. */
  json: unknown;
}

interface NamedBase {
  /** Full name, e.g. `com.example.User`. */
  name: string;
  /** The namespace part of `name` (`''` for the null namespace). */
  namespace: string;
  /** Full names. */
  aliases: string[];
  doc: string | undefined;
  props: SchemaProps;
  /** The definition's JSON as written. */
  json: Readonly<Record<string, unknown>>;
}

export interface RecordField {
  name: string;
  aliases: string[];
  type: AvroNode;
  /** The field's default as JSON, if it has one (`{ value: null }` for a null default). */
  default: { value: unknown } | undefined;
  order: 'ascending' | 'descending' | 'ignore' | undefined;
  doc: string | undefined;
  props: SchemaProps;
  /** The field's JSON as written. */
  json: Readonly<Record<string, unknown>>;
}

export interface RecordNode extends NamedBase {
  kind: 'record';
  /** Declared with `"type": "error"`. */
  error: boolean;
  fields: RecordField[];
}

export interface EnumNode extends NamedBase {
  kind: 'enum';
  symbols: string[];
  default: string | undefined;
}

export interface FixedNode extends NamedBase {
  kind: 'fixed';
  size: number;
  logicalType: string | undefined;
  decimal: DecimalType | undefined;
}

export interface ArrayNode {
  kind: 'array';
  items: AvroNode;
  props: SchemaProps;
  json: Readonly<Record<string, unknown>>;
}

export interface MapNode {
  kind: 'map';
  values: AvroNode;
  props: SchemaProps;
  json: Readonly<Record<string, unknown>>;
}

export interface UnionNode {
  kind: 'union';
  branches: AvroNode[];
}

export type NamedNode = RecordNode | EnumNode | FixedNode;
export type AvroNode = PrimitiveNode | NamedNode | ArrayNode | MapNode | UnionNode;

export interface AvroSchema {
  root: AvroNode;
  /** Every named type by full name, in definition order. */
  named: ReadonlyMap<string, NamedNode>;
}

/** Schema JSON that is not valid Avro (SCHEMA_INVALID); `path` locates the problem (`fields[1].type`, `(root)`). */
export class SchemaError extends AppError {
  readonly path: string;

  constructor(message: string, path: string) {
    super('SCHEMA_INVALID', { message: path === '' ? message : `${path}: ${message}`, details: { path } });
    this.name = 'SchemaError';
    this.path = path;
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED = new Set(['type', 'name', 'namespace', 'aliases', 'doc', 'fields', 'symbols', 'size', 'items', 'values', 'default', 'order', 'logicalType']);
const FIELD_RESERVED = new Set(['name', 'type', 'default', 'aliases', 'doc', 'order']);

export function isNamed(node: AvroNode): node is NamedNode {
  return node.kind === 'record' || node.kind === 'enum' || node.kind === 'fixed';
}

/** The unqualified part of a full name. */
export function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

/** A name as written, made full in `namespace` (a name with a dot is already full). */
export function fullNameOf(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

/** The type as Avro names it in messages and union branches: `long`, `com.example.User`, `array`, `map`, `union`. */
export function typeName(node: AvroNode): string {
  if (node.kind === 'primitive') return node.type;
  return isNamed(node) ? node.name : node.kind;
}

/** The non-null branches of a union, or the node itself. */
export function nonNullBranches(node: AvroNode): AvroNode[] {
  if (node.kind === 'union') return node.branches.filter((b) => !(b.kind === 'primitive' && b.type === 'null'));
  return node.kind === 'primitive' && node.type === 'null' ? [] : [node];
}

/**
 * Parses and validates schema JSON (names, references, unions, field defaults)
 * into the model. Throws {@link SchemaError} naming the first problem.
 */
export function parseSchema(json: unknown): AvroSchema {
  const named = new Map<string, NamedNode>();
  const defaults: { field: RecordField; path: string }[] = [];

  const propsOf = (o: Record<string, unknown>, reserved: ReadonlySet<string>): SchemaProps => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) if (!reserved.has(k)) out[k] = v;
    return out;
  };

  const define = (o: Record<string, unknown>, enclosing: string, path: string): NamedBase => {
    if (typeof o.name !== 'string') throw new SchemaError(`a ${String(o.type)} needs a name`, path);
    // `null` is taken as absent, as avsc (which validated schemas registered before this parser) takes it.
    if (o.namespace !== undefined && o.namespace !== null && typeof o.namespace !== 'string') throw new SchemaError('namespace must be a string', path);
    const namespace0 = o.name.includes('.') ? o.name.slice(0, o.name.lastIndexOf('.')) : typeof o.namespace === 'string' ? o.namespace : enclosing;
    const name = fullNameOf(shortName(o.name), namespace0);
    checkFullName(name, path);
    // Primitive names are in no namespace and may not be defined in any.
    if (AVRO_PRIMITIVES.has(shortName(name))) throw new SchemaError(`"${name}" is a primitive type name`, path);
    if (named.has(name)) throw new SchemaError(`"${name}" is defined twice`, path);
    const aliases = stringList(o.aliases, 'aliases', path).map((a) => {
      const full = fullNameOf(a, namespace0);
      checkFullName(full, path);
      return full;
    });
    return { name, namespace: namespace0, aliases, doc: typeof o.doc === 'string' ? o.doc : undefined, props: propsOf(o, RESERVED), json: o };
  };

  const parse = (s: unknown, ns: string, path: string): AvroNode => {
    if (typeof s === 'string') return reference(s, ns, path, undefined);
    if (Array.isArray(s)) return union(s, ns, path);
    if (typeof s !== 'object' || s === null) throw new SchemaError(`not a schema: ${JSON.stringify(s)}`, path);
    const o = s as Record<string, unknown>;
    const type = o.type;
    switch (type) {
      case 'record':
      case 'error': {
        const node: RecordNode = { kind: 'record', error: type === 'error', fields: [], ...define(o, ns, path) };
        named.set(node.name, node);
        if (!Array.isArray(o.fields)) throw new SchemaError(`record ${node.name} needs a fields array`, path);
        const seen = new Set<string>();
        o.fields.forEach((f: unknown, i: number) => {
          const fpath = `${path === '' ? '' : `${path}.`}fields[${i}]`;
          if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new SchemaError('a field must be an object', fpath);
          const fo = f as Record<string, unknown>;
          if (typeof fo.name !== 'string' || !NAME.test(fo.name)) throw new SchemaError(`invalid field name ${JSON.stringify(fo.name)}`, fpath);
          if (seen.has(fo.name)) throw new SchemaError(`field "${fo.name}" is declared twice in ${node.name}`, fpath);
          seen.add(fo.name);
          if (!('type' in fo)) throw new SchemaError(`field "${fo.name}" has no type`, fpath);
          if (fo.order !== undefined && fo.order !== 'ascending' && fo.order !== 'descending' && fo.order !== 'ignore') {
            throw new SchemaError(`field "${fo.name}" has an invalid order`, fpath);
          }
          const field: RecordField = {
            name: fo.name,
            aliases: stringList(fo.aliases, 'aliases', fpath),
            type: parse(fo.type, node.namespace, `${fpath}.type`),
            default: Object.prototype.hasOwnProperty.call(fo, 'default') ? { value: fo.default } : undefined,
            order: fo.order as RecordField['order'],
            doc: typeof fo.doc === 'string' ? fo.doc : undefined,
            props: propsOf(fo, FIELD_RESERVED),
            json: fo,
          };
          node.fields.push(field);
          if (field.default !== undefined) defaults.push({ field, path: fpath });
        });
        return node;
      }
      case 'enum': {
        const base = define(o, ns, path);
        const symbols = stringList(o.symbols, 'symbols', path);
        if (!Array.isArray(o.symbols)) throw new SchemaError(`enum ${base.name} needs a symbols array`, path);
        for (const sym of symbols) if (!NAME.test(sym)) throw new SchemaError(`invalid enum symbol "${sym}"`, path);
        if (new Set(symbols).size !== symbols.length) throw new SchemaError(`enum ${base.name} has duplicate symbols`, path);
        if (o.default !== undefined && (typeof o.default !== 'string' || !symbols.includes(o.default))) {
          throw new SchemaError(`enum ${base.name}'s default is not one of its symbols`, path);
        }
        const node: EnumNode = { kind: 'enum', symbols, default: o.default as string | undefined, ...base };
        named.set(node.name, node);
        return node;
      }
      case 'fixed': {
        const base = define(o, ns, path);
        if (typeof o.size !== 'number' || !Number.isInteger(o.size) || o.size < 0) throw new SchemaError(`fixed ${base.name} needs a non-negative integer size`, path);
        const decimal = o.logicalType === 'decimal' ? decimalOf(o, maxDecimalDigits(o.size)) : undefined;
        const node: FixedNode = { kind: 'fixed', size: o.size, ...logical(o, decimal), ...base };
        named.set(node.name, node);
        return node;
      }
      case 'array':
        if (!('items' in o)) throw new SchemaError('an array needs items', path);
        return { kind: 'array', items: parse(o.items, ns, `${path === '' ? '' : `${path}.`}items`), props: propsOf(o, RESERVED), json: o };
      case 'map':
        if (!('values' in o)) throw new SchemaError('a map needs values', path);
        return { kind: 'map', values: parse(o.values, ns, `${path === '' ? '' : `${path}.`}values`), props: propsOf(o, RESERVED), json: o };
      default:
        if (typeof type === 'string') return reference(type, ns, path, o);
        throw new SchemaError(`unknown type ${JSON.stringify(type)}`, path);
    }
  };

  /** A primitive (possibly as a type object with a logical type and props) or a defined name. */
  const reference = (name: string, ns: string, path: string, o: Record<string, unknown> | undefined): AvroNode => {
    if (AVRO_PRIMITIVES.has(name)) {
      const attrs = o ?? {};
      const decimal = name === 'bytes' && attrs.logicalType === 'decimal' ? decimalOf(attrs, Infinity) : undefined;
      return { kind: 'primitive', type: name as AvroPrimitive, ...logical(attrs, decimal), props: propsOf(attrs, RESERVED), json: o ?? name };
    }
    const ref = named.get(fullNameOf(name, ns));
    if (ref === undefined) throw new SchemaError(`unknown type "${name}"${ns === '' ? '' : ` (in namespace ${ns})`}`, path);
    return ref;
  };

  const union = (s: unknown[], ns: string, path: string): UnionNode => {
    const branches = s.map((b, i) => parse(b, ns, `${path}[${i}]`));
    const seen = new Set<string>();
    branches.forEach((b, i) => {
      if (b.kind === 'union') throw new SchemaError('a union may not directly contain a union', `${path}[${i}]`);
      const key = isNamed(b) ? `named:${b.name}` : typeName(b);
      if (seen.has(key)) throw new SchemaError(`a union may not hold two ${typeName(b)} branches`, `${path}[${i}]`);
      seen.add(key);
    });
    return { kind: 'union', branches };
  };

  const root = parse(json, '', '');
  // Defaults are checked once every name is defined: a default may hold a value of its enclosing record.
  for (const { field, path } of defaults) {
    const problem = defaultProblem(field.type, field.default!.value);
    if (problem !== undefined) throw new SchemaError(`field "${field.name}" has an invalid default: ${problem}`, path);
  }
  return { root, named };
}

function checkFullName(name: string, path: string): void {
  if (!name.split('.').every((part) => NAME.test(part))) throw new SchemaError(`invalid name "${name}"`, path);
}

function stringList(value: unknown, what: string, path: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new SchemaError(`${what} must be an array of strings`, path);
  return value as string[];
}

/** The logical type attributes of a type object; an invalid decimal is ignored, as the spec says. */
function logical(o: Record<string, unknown>, decimal: DecimalType | undefined): { logicalType: string | undefined; decimal: DecimalType | undefined } {
  if (typeof o.logicalType !== 'string') return { logicalType: undefined, decimal: undefined };
  if (o.logicalType === 'decimal' && decimal === undefined) return { logicalType: undefined, decimal: undefined };
  return { logicalType: o.logicalType, decimal };
}

function decimalOf(o: Record<string, unknown>, maxPrecision: number): DecimalType | undefined {
  const precision = o.precision;
  const scale = o.scale ?? 0;
  if (typeof precision !== 'number' || !Number.isInteger(precision) || precision < 1 || precision > maxPrecision) return undefined;
  if (typeof scale !== 'number' || !Number.isInteger(scale) || scale < 0 || scale > precision) return undefined;
  return { precision, scale };
}

/** Decimal digits a two's-complement number of `size` bytes can always hold. */
function maxDecimalDigits(size: number): number {
  return size === 0 ? 0 : Math.floor(Math.log10(2) * (8 * size - 1));
}

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/** Why `value` is not a JSON default of `node` (Avro spec: a union's default is of its first branch); undefined if it is. */
export function defaultProblem(node: AvroNode, value: unknown): string | undefined {
  switch (node.kind) {
    case 'primitive':
      switch (node.type) {
        case 'null':
          return value === null ? undefined : 'expected null';
        case 'boolean':
          return typeof value === 'boolean' ? undefined : 'expected a boolean';
        case 'int':
          return typeof value === 'number' && Number.isInteger(value) && value >= INT_MIN && value <= INT_MAX ? undefined : 'expected a 32-bit integer';
        case 'long':
          return typeof value === 'number' && Number.isInteger(value) ? undefined : 'expected an integer';
        case 'float':
        case 'double':
          return typeof value === 'number' ? undefined : 'expected a number';
        case 'bytes':
          return typeof value === 'string' && isLatin1(value) ? undefined : 'expected a string of code points 0-255';
        case 'string':
          return typeof value === 'string' ? undefined : 'expected a string';
      }
      break;
    case 'enum':
      return typeof value === 'string' && node.symbols.includes(value) ? undefined : `expected a symbol of ${node.name}`;
    case 'fixed':
      return typeof value === 'string' && isLatin1(value) && value.length === node.size ? undefined : `expected a string of ${node.size} code points 0-255`;
    case 'array':
      if (!Array.isArray(value)) return 'expected an array';
      for (const v of value) {
        const p = defaultProblem(node.items, v);
        if (p !== undefined) return `in an item: ${p}`;
      }
      return undefined;
    case 'map':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected an object';
      for (const [k, v] of Object.entries(value)) {
        const p = defaultProblem(node.values, v);
        if (p !== undefined) return `in value "${k}": ${p}`;
      }
      return undefined;
    case 'union':
      return node.branches[0] === undefined ? 'a union without branches has no value' : defaultProblem(node.branches[0], value);
    case 'record': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return `expected an object for ${node.name}`;
      const obj = value as Record<string, unknown>;
      for (const f of node.fields) {
        if (!Object.prototype.hasOwnProperty.call(obj, f.name)) {
          if (f.default === undefined) return `field "${f.name}" of ${node.name} is missing`;
          continue;
        }
        const p = defaultProblem(f.type, obj[f.name]);
        if (p !== undefined) return `in field "${f.name}": ${p}`;
      }
      return undefined;
    }
  }
  return undefined;
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * Fields whose default may hold a value of a record still being defined where
 * the field is (e.g. `S {a: array<S> = [{"a": []}]}`): valid Avro, but avsc
 * builds defaults while it parses, so it cannot build these.
 */
export function selfReferencingDefaults(schema: AvroSchema): Set<RecordField> {
  const out = new Set<RecordField>();
  const open = new Set<RecordNode>();
  const done = new Set<RecordNode>();
  const reachesOpen = (node: AvroNode, seen: Set<AvroNode>): boolean => {
    if (seen.has(node)) return false;
    seen.add(node);
    switch (node.kind) {
      case 'record':
        return open.has(node) || node.fields.some((f) => reachesOpen(f.type, seen));
      case 'array':
        return reachesOpen(node.items, seen);
      case 'map':
        return reachesOpen(node.values, seen);
      case 'union':
        return node.branches.some((b) => reachesOpen(b, seen));
      default:
        return false;
    }
  };
  const visit = (node: AvroNode): void => {
    switch (node.kind) {
      case 'record':
        if (open.has(node) || done.has(node)) return;
        open.add(node);
        for (const f of node.fields) {
          visit(f.type);
          if (f.default !== undefined && reachesOpen(f.type, new Set())) out.add(f);
        }
        open.delete(node);
        done.add(node);
        return;
      case 'array':
        return visit(node.items);
      case 'map':
        return visit(node.values);
      case 'union':
        return node.branches.forEach(visit);
      default:
        return;
    }
  };
  visit(schema.root);
  return out;
}

/** A copy of schema JSON without the `default` of the given fields (matched by their JSON object). */
export function withoutDefaults(json: unknown, fields: ReadonlySet<RecordField>): unknown {
  const drop = new Set<unknown>([...fields].map((f) => f.json));
  const copy = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(copy);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!(k === 'default' && drop.has(v))) out[k] = k === 'default' ? x : copy(x);
    return out;
  };
  return copy(json);
}
