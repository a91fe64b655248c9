/**
 * The delivered schema (DESIGN.md §3, contract; documented in
 * lib/privacy/README.md): derived from a source schema version by replacing
 * every personal value with an encrypted one. Pure and deterministic: the
 * same source gives the same JSON.
 *
 * - A personal leaf (string, bytes, number, boolean, enum, fixed, or a union of
 *   them, e.g. `["null","string"]`) becomes
 *   `["null", {"type": "bytes", "encryption": {…}}]`; as a record field it also
 *   gets `"default": null`. The `encryption` attribute says how to decrypt it
 *   (`EncryptionAnnotation`).
 * - Records, arrays, maps and unions keep their shape; the replacement happens
 *   wherever a personal leaf lies: a record field, each array item, each map
 *   value, inside nested records and union branches.
 * - The data subject (`semanticType: userId`) and non-personal fields are kept
 *   as they are, annotations included.
 *
 * Besides the schema, `compileEncryptionPlan` returns the plan the record
 * encryptor follows (where the personal leaves are, how to encode each value),
 * computed in the same walk so the two can never disagree.
 */
import type avro from 'avsc';
import { avroType } from '../avro/long.ts';
import { AppError } from '../errors.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import { defaultCatalogue, SUBJECT_SEMANTIC_TYPE, type SemanticCatalogue } from '../semantic-types.ts';

/** Name of the attribute on an encrypted value's `bytes` type. */
export const ENCRYPTION_ATTRIBUTE = 'encryption';

/** Version of the encrypted-value format described by `EncryptionAnnotation`. */
export const ENCRYPTION_FORMAT = 'tink-aead-aes256gcm-v1';

/** Default key context: one context shared by the ETL and every entitled consumer. */
export const DEFAULT_KEY_CONTEXT = 'events';

/**
 * How the plaintext of an encrypted value was made from the source value:
 * `utf8` for strings (so BigQuery's `AEAD.DECRYPT_STRING` works), `raw` for
 * `bytes` and `fixed`, `avro` (Avro binary encoding of `sourceType`) for the rest.
 */
export type PlaintextEncoding = 'utf8' | 'raw' | 'avro';

/** The `encryption` attribute of an encrypted value's type in the delivered schema. */
export interface EncryptionAnnotation {
  format: typeof ENCRYPTION_FORMAT;
  semanticType: string;
  /** Data category: the subject's key for it encrypted the value. */
  category: string;
  /** Padlock key context the key was derived for. */
  keyContext: string;
  plaintext: PlaintextEncoding;
  /** The source value's type without `null`, named types written out in full. */
  sourceType: unknown;
}

export interface DeliveredSchemaOptions {
  catalogue?: SemanticCatalogue;
  /** Padlock key context the ETL encrypts under; `DEFAULT_KEY_CONTEXT` if absent. */
  keyContext?: string;
}

/** A personal leaf: replaced by its ciphertext. */
export interface PersonalNode {
  kind: 'personal';
  category: string;
  /** Plaintext bytes of a (non-null) source value. */
  encode(value: unknown): Buffer;
}

/** A record with personal data below some of its fields; other fields are copied. */
export interface RecordNode {
  kind: 'record';
  fields: { name: string; node: PlanNode }[];
}

export interface ArrayNode {
  kind: 'array';
  items: PlanNode;
}

export interface MapNode {
  kind: 'map';
  values: PlanNode;
}

/** A union with personal data in some branches; `branches` are the non-null ones holding any. */
export interface UnionNode {
  kind: 'union';
  /** Only one non-null branch: values are unwrapped. */
  single: boolean;
  branches: { name: string; node: PlanNode; isValid(value: unknown): boolean }[];
}

/** Where the personal values of a record are, from its root. */
export type PlanNode = PersonalNode | RecordNode | ArrayNode | MapNode | UnionNode;

export interface EncryptionPlan {
  delivered: AvroSchemaJson;
  /** Undefined when the schema holds no personal field (records are delivered as they are). */
  root: PlanNode | undefined;
  /** Field names from the root record to the data subject, if the schema has one. */
  subjectPath: string[] | undefined;
  /** Categories of the personal fields, sorted. */
  categories: string[];
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

interface Named {
  /** The source definition, name fully qualified, namespace dropped. */
  source: Record<string, unknown>;
  /** Plan node of a record type (a placeholder while it is being walked). */
  node: RecordNode | undefined;
}

interface WalkState {
  catalogue: SemanticCatalogue;
  keyContext: string;
  named: Map<string, Named>;
  categories: Set<string>;
  subjects: string[][];
}

interface Walked {
  delivered: unknown;
  node: PlanNode | undefined;
}

/** The delivered schema of `source` (see module doc). */
export function deriveDeliveredSchema(source: AvroSchemaJson, options: DeliveredSchemaOptions = {}): AvroSchemaJson {
  return compileEncryptionPlan(source, options).delivered;
}

/**
 * The delivered schema and the encryption plan of `source`. Throws AppError
 * SCHEMA_INVALID for an annotation it cannot honour (unknown semantic type,
 * personal annotation on a record, several subjects): failing is safer than
 * delivering a personal value in clear.
 */
export function compileEncryptionPlan(source: AvroSchemaJson, options: DeliveredSchemaOptions = {}): EncryptionPlan {
  const state: WalkState = {
    catalogue: options.catalogue ?? defaultCatalogue,
    keyContext: options.keyContext ?? DEFAULT_KEY_CONTEXT,
    named: new Map(),
    categories: new Set(),
    subjects: [],
  };
  const walked = walkType(source, '', undefined, [], state);
  if (state.subjects.length > 1) {
    invalid(`more than one data subject field (${state.subjects.map((s) => s.join('.')).join(', ')})`);
  }
  const delivered = walked.delivered as AvroSchemaJson;
  try {
    avroType(delivered);
  } catch (cause) {
    // E.g. a named type defined inside a personal field and used elsewhere.
    invalid(`the delivered schema is not valid Avro: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  // No personal field: the source is delivered as it is (the ETL then keeps the original bytes).
  return { delivered: walked.node === undefined ? source : delivered, root: walked.node, subjectPath: state.subjects[0], categories: [...state.categories].sort() };
}

function invalid(message: string): never {
  throw new AppError('SCHEMA_INVALID', { message: `Cannot derive the delivered schema: ${message}` });
}

function qualify(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

/**
 * @param annotation the semantic type in force (from the enclosing field or type object)
 * @param fieldPath field names from the root, for the subject's path and error messages
 */
function walkType(schema: unknown, namespace: string, annotation: string | undefined, fieldPath: string[], state: WalkState): Walked {
  const entry = annotation === undefined ? undefined : state.catalogue[annotation];
  if (annotation !== undefined && entry === undefined) {
    invalid(`${fieldPath.join('.') || '(root)'}: unknown semantic type "${annotation}"`);
  }
  if (annotation === SUBJECT_SEMANTIC_TYPE) {
    state.subjects.push(fieldPath);
    return { delivered: schema, node: undefined };
  }
  const personal = entry?.personal === true ? annotation : undefined;

  if (typeof schema === 'string') {
    if (PRIMITIVES.has(schema)) return personal === undefined ? { delivered: schema, node: undefined } : personalLeaf(schema, namespace, personal, state);
    const named = state.named.get(qualify(schema, namespace)) ?? state.named.get(schema);
    if (named === undefined) return { delivered: schema, node: undefined };
    if (named.source.type === 'record' || named.source.type === 'error') {
      if (personal !== undefined) invalid(`${fieldPath.join('.')}: semantic type "${personal}" is on a record; annotate its fields`);
      return { delivered: schema, node: named.node };
    }
    return personal === undefined ? { delivered: schema, node: undefined } : personalLeaf(schema, namespace, personal, state);
  }

  if (Array.isArray(schema)) {
    const branches = schema as unknown[];
    if (personal !== undefined && branches.every((b) => isLeafType(b, namespace, state))) {
      return personalLeaf(schema, namespace, personal, state);
    }
    const out: unknown[] = [];
    const nodes: UnionNode['branches'] = [];
    const nonNull = branches.filter((b) => b !== 'null');
    for (const branch of branches) {
      if (branch === 'null') {
        out.push(branch);
        continue;
      }
      if (personal !== undefined && isLeafType(branch, namespace, state)) {
        invalid(`${fieldPath.join('.')}: a personal union must hold only primitive values or only arrays/maps`);
      }
      const w = walkType(branch, namespace, annotation, fieldPath, state);
      out.push(w.delivered);
      if (w.node !== undefined) {
        nodes.push({ name: branchName(branch, namespace), node: w.node, isValid: branchValidator(branch, namespace, state) });
      }
    }
    return { delivered: out, node: nodes.length === 0 ? undefined : { kind: 'union', single: nonNull.length === 1, branches: nodes } };
  }

  if (typeof schema !== 'object' || schema === null) return { delivered: schema, node: undefined };
  const obj = schema as Record<string, unknown>;
  const own = typeof obj.semanticType === 'string' ? obj.semanticType : undefined;
  if (own !== undefined && own !== annotation) return walkType(schema, namespace, own, fieldPath, state);
  const ns = typeof obj.namespace === 'string' ? obj.namespace : namespace;

  switch (obj.type) {
    case 'record':
    case 'error': {
      if (personal !== undefined) invalid(`${fieldPath.join('.') || '(root)'}: semantic type "${personal}" is on a record; annotate its fields`);
      const name = typeof obj.name === 'string' ? qualify(obj.name, ns) : '';
      const recordNs = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : ns;
      const node: RecordNode = { kind: 'record', fields: [] };
      const named: Named = { source: { ...obj, name }, node };
      delete named.source.namespace;
      state.named.set(name, named);
      const fields: unknown[] = [];
      for (const field of Array.isArray(obj.fields) ? (obj.fields as unknown[]) : []) {
        const f = field as Record<string, unknown>;
        const fname = String(f.name);
        const fieldAnnotation = typeof f.semanticType === 'string' ? f.semanticType : undefined;
        const w = walkType(f.type, recordNs, fieldAnnotation, [...fieldPath, fname], state);
        if (w.node === undefined) {
          fields.push(field);
          continue;
        }
        node.fields.push({ name: fname, node: w.node });
        const out: Record<string, unknown> = { ...f, type: w.delivered };
        if (w.node.kind === 'personal') out.default = null;
        fields.push(out);
      }
      if (node.fields.length === 0) named.node = undefined;
      return { delivered: { ...obj, fields }, node: named.node };
    }
    case 'enum':
    case 'fixed': {
      const name = typeof obj.name === 'string' ? qualify(obj.name, ns) : String(obj.type);
      const source: Record<string, unknown> = { ...obj, name };
      delete source.namespace;
      state.named.set(name, { source, node: undefined });
      return personal === undefined ? { delivered: schema, node: undefined } : personalLeaf(schema, namespace, personal, state);
    }
    case 'array': {
      const w = walkType(obj.items, ns, personal === undefined ? undefined : annotation, fieldPath, state);
      return { delivered: { ...obj, items: w.delivered }, node: w.node === undefined ? undefined : { kind: 'array', items: w.node } };
    }
    case 'map': {
      const w = walkType(obj.values, ns, personal === undefined ? undefined : annotation, fieldPath, state);
      return { delivered: { ...obj, values: w.delivered }, node: w.node === undefined ? undefined : { kind: 'map', values: w.node } };
    }
    default: {
      // `{"type": "string", "logicalType": …}` and other primitive type objects.
      if (typeof obj.type === 'string' && PRIMITIVES.has(obj.type)) {
        return personal === undefined ? { delivered: schema, node: undefined } : personalLeaf(schema, namespace, personal, state);
      }
      const w = walkType(obj.type, ns, annotation, fieldPath, state);
      return w.node === undefined ? { delivered: schema, node: undefined } : w;
    }
  }
}

/** A primitive, enum or fixed type (named or inline), or a union of only those. */
function isLeafType(schema: unknown, namespace: string, state: WalkState): boolean {
  if (typeof schema === 'string') {
    if (PRIMITIVES.has(schema)) return true;
    const named = state.named.get(qualify(schema, namespace)) ?? state.named.get(schema);
    return named !== undefined && (named.source.type === 'enum' || named.source.type === 'fixed');
  }
  if (Array.isArray(schema)) return schema.every((b) => isLeafType(b, namespace, state));
  if (typeof schema !== 'object' || schema === null) return false;
  const type = (schema as Record<string, unknown>).type;
  if (type === 'enum' || type === 'fixed') return true;
  return typeof type === 'string' && PRIMITIVES.has(type);
}

/** The name avsc wraps a union branch's value under (`{"<name>": value}`). */
function branchName(schema: unknown, namespace: string): string {
  if (typeof schema === 'string') return PRIMITIVES.has(schema) ? schema : qualify(schema, namespace);
  const obj = schema as Record<string, unknown>;
  if (typeof obj.name === 'string') return qualify(obj.name, typeof obj.namespace === 'string' ? obj.namespace : namespace);
  return String(obj.type);
}

function branchValidator(schema: unknown, namespace: string, state: WalkState): (value: unknown) => boolean {
  let type: avro.Type | undefined;
  return (value) => {
    type ??= avroType(expand(schema, namespace, state, new Set()));
    return type.isValid(value);
  };
}

/** `schema` with named references replaced by their definitions, so it stands alone. */
function expand(schema: unknown, namespace: string, state: WalkState, seen: Set<string>): unknown {
  if (typeof schema === 'string') {
    if (PRIMITIVES.has(schema)) return schema;
    const name = state.named.has(qualify(schema, namespace)) ? qualify(schema, namespace) : schema;
    const named = state.named.get(name);
    if (named === undefined || seen.has(name)) return name;
    seen.add(name);
    return expand(named.source, namespace, state, seen);
  }
  if (Array.isArray(schema)) return schema.map((b) => expand(b, namespace, state, seen));
  if (typeof schema !== 'object' || schema === null) return schema;
  const obj = { ...(schema as Record<string, unknown>) };
  const ns = typeof obj.namespace === 'string' ? obj.namespace : namespace;
  if (typeof obj.name === 'string') {
    const full = qualify(obj.name, ns);
    obj.name = full;
    delete obj.namespace;
    seen.add(full);
  }
  delete obj.semanticType;
  // `{"type": "string"}` (an annotation holder) is just `"string"`.
  if (Object.keys(obj).length === 1 && typeof obj.type === 'string' && PRIMITIVES.has(obj.type)) return obj.type;
  if (Array.isArray(obj.fields)) {
    const recordNs = typeof obj.name === 'string' && obj.name.includes('.') ? obj.name.slice(0, obj.name.lastIndexOf('.')) : ns;
    obj.fields = (obj.fields as Record<string, unknown>[]).map((f) => ({ ...f, type: expand(f.type, recordNs, state, seen) }));
  }
  if (obj.items !== undefined) obj.items = expand(obj.items, ns, state, seen);
  if (obj.values !== undefined) obj.values = expand(obj.values, ns, state, seen);
  if (typeof obj.type === 'object') obj.type = expand(obj.type, ns, state, seen);
  return obj;
}

function personalLeaf(schema: unknown, namespace: string, semanticType: string, state: WalkState): Walked {
  const entry = state.catalogue[semanticType];
  if (entry === undefined) invalid(`unknown semantic type "${semanticType}"`);
  const expanded = expand(schema, namespace, state, new Set());
  const nonNull = Array.isArray(expanded) ? expanded.filter((b) => b !== 'null') : [expanded];
  const sourceType = nonNull.length === 1 ? nonNull[0] : nonNull;
  const base = baseType(sourceType);
  const plaintext: PlaintextEncoding = base === 'string' ? 'utf8' : base === 'bytes' || base === 'fixed' ? 'raw' : 'avro';
  state.categories.add(entry.category);
  const annotation: EncryptionAnnotation = {
    format: ENCRYPTION_FORMAT,
    semanticType,
    category: entry.category,
    keyContext: state.keyContext,
    plaintext,
    sourceType,
  };
  return {
    delivered: ['null', { type: 'bytes', [ENCRYPTION_ATTRIBUTE]: annotation }],
    node: { kind: 'personal', category: entry.category, encode: plaintextEncoder(plaintext, sourceType) },
  };
}

/** `string`, `bytes`, `fixed`, `enum`, another primitive, or `union`. */
function baseType(schema: unknown): string {
  if (typeof schema === 'string') return schema;
  if (Array.isArray(schema)) return 'union';
  const type = (schema as Record<string, unknown>).type;
  return typeof type === 'string' ? type : 'union';
}

/** Encodes a source value as the plaintext bytes described by `plaintext`. */
export function plaintextEncoder(plaintext: PlaintextEncoding, sourceType: unknown): (value: unknown) => Buffer {
  if (plaintext === 'utf8') return (v) => Buffer.from(String(v), 'utf8');
  if (plaintext === 'raw') return (v) => Buffer.from(v as Uint8Array);
  const type = avroType(sourceType);
  return (v) => type.toBuffer(v);
}

/** Decodes plaintext bytes back to the source value (a string, Buffer, number, enum symbol…). */
export function plaintextDecoder(plaintext: PlaintextEncoding, sourceType: unknown): (bytes: Buffer) => unknown {
  if (plaintext === 'utf8') return (b) => b.toString('utf8');
  if (plaintext === 'raw') return (b) => b;
  const type = avroType(sourceType);
  return (b) => type.fromBuffer(b);
}
