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
 *   (`EncryptionAnnotation`). As the items of an array it is
 *   `{"type": "bytes", "encryption": {…}}`, nullable only if the source items
 *   are: a value without a key is then an empty `bytes`, never `null`
 *   (BigQuery has no null array elements; no ciphertext is empty).
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
import { nonNullBranches, parseSchema, SchemaError, typeName, type AvroNode, type RecordNode as AvroRecordNode, type SchemaProps } from '../avro/schema.ts';
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
  /**
   * What the value becomes without a key (deleted, or no subject): `null`, or an
   * empty `bytes` for an array item, since BigQuery has no null array elements.
   */
  withoutKey: 'null' | 'empty';
  /** How `encode` makes the plaintext. */
  plaintext: PlaintextEncoding;
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

interface WalkState {
  catalogue: SemanticCatalogue;
  keyContext: string;
  /** Plan node of each record type (a placeholder while it is being walked; undefined if it holds no personal data). */
  records: Map<AvroRecordNode, RecordNode | undefined>;
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
    records: new Map(),
    categories: new Set(),
    subjects: [],
  };
  let root: AvroNode;
  try {
    root = parseSchema(source).root;
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    invalid(`the source schema is not valid Avro: ${err.message}`);
  }
  const walked = walkType(root, source, undefined, [], state);
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


/**
 * Walks the model of the source schema beside its JSON (`json` is what is
 * written at this position: a name, a definition, a type object, a union),
 * so the delivered schema keeps the source's text wherever nothing changes.
 * @param annotation the semantic type in force (from the enclosing field or type object)
 * @param fieldPath field names from the root, for the subject's path and error messages
 */
function walkType(node: AvroNode, json: unknown, annotation: string | undefined, fieldPath: string[], state: WalkState): Walked {
  // An annotation on a type (a type object, or a named type's definition, wherever it is used) wins over the field's.
  const own = node.kind === 'union' ? undefined : semanticTypeOf(node.props);
  if (own !== undefined && own !== annotation) return walkType(node, json, own, fieldPath, state);
  const entry = annotation === undefined ? undefined : state.catalogue[annotation];
  if (annotation !== undefined && entry === undefined) {
    invalid(`${fieldPath.join('.') || '(root)'}: unknown semantic type "${annotation}"`);
  }
  if (annotation === SUBJECT_SEMANTIC_TYPE) {
    state.subjects.push(fieldPath);
    return { delivered: json, node: undefined };
  }
  const personal = entry?.personal === true ? annotation : undefined;

  switch (node.kind) {
    case 'union': {
      if (personal !== undefined && isLeafType(node)) return personalLeaf(node, personal, state);
      const out: unknown[] = [];
      const nodes: UnionNode['branches'] = [];
      const branchJson = json as unknown[];
      node.branches.forEach((branch, i) => {
        if (branch.kind === 'primitive' && branch.type === 'null') {
          out.push(branchJson[i]);
          return;
        }
        if (personal !== undefined && isLeafType(branch)) {
          invalid(`${fieldPath.join('.')}: a personal union must hold only primitive values or only arrays/maps`);
        }
        const w = walkType(branch, branchJson[i], annotation, fieldPath, state);
        out.push(w.delivered);
        if (w.node !== undefined) nodes.push({ name: typeName(branch), node: w.node, isValid: branchValidator(branch) });
      });
      return { delivered: out, node: nodes.length === 0 ? undefined : { kind: 'union', single: nonNullBranches(node).length === 1, branches: nodes } };
    }
    case 'record': {
      if (personal !== undefined) invalid(`${fieldPath.join('.') || '(root)'}: semantic type "${personal}" is on a record; annotate its fields`);
      const obj = json as Record<string, unknown>;
      // A reference (its definition was walked first, or is being walked: then the placeholder).
      if (typeof json === 'string' || (obj.type !== 'record' && obj.type !== 'error')) return { delivered: json, node: state.records.get(node) };
      const plan: RecordNode = { kind: 'record', fields: [] };
      state.records.set(node, plan);
      const fields = node.fields.map((f) => {
        const w = walkType(f.type, f.json.type, semanticTypeOf(f.props), [...fieldPath, f.name], state);
        if (w.node === undefined) return f.json;
        plan.fields.push({ name: f.name, node: w.node });
        const out: Record<string, unknown> = { ...f.json, type: w.delivered };
        if (w.node.kind === 'personal') out.default = null;
        return out;
      });
      if (plan.fields.length === 0) state.records.set(node, undefined);
      return { delivered: { ...obj, fields }, node: state.records.get(node) };
    }
    case 'array': {
      const obj = json as Record<string, unknown>;
      const w = walkType(node.items, obj.items, personal === undefined ? undefined : annotation, fieldPath, state);
      if (w.node?.kind === 'personal') {
        // Items that are personal leaves: an item without a key is an empty `bytes`, and the items
        // are nullable only if the source's are (BigQuery loads no null array element).
        const sourceNullable = node.items.kind === 'union' && nonNullBranches(node.items).length < node.items.branches.length;
        const items = sourceNullable ? w.delivered : (w.delivered as unknown[])[1];
        return { delivered: { ...obj, items }, node: { kind: 'array', items: { ...w.node, withoutKey: 'empty' } } };
      }
      return { delivered: { ...obj, items: w.delivered }, node: w.node === undefined ? undefined : { kind: 'array', items: w.node } };
    }
    case 'map': {
      const obj = json as Record<string, unknown>;
      const w = walkType(node.values, obj.values, personal === undefined ? undefined : annotation, fieldPath, state);
      return { delivered: { ...obj, values: w.delivered }, node: w.node === undefined ? undefined : { kind: 'map', values: w.node } };
    }
    default:
      // Primitives (named or as type objects), enums, fixed.
      return personal === undefined ? { delivered: json, node: undefined } : personalLeaf(node, personal, state);
  }
}

function semanticTypeOf(props: SchemaProps): string | undefined {
  return typeof props.semanticType === 'string' ? props.semanticType : undefined;
}

/** A primitive, enum or fixed type, or a union of only those. */
function isLeafType(node: AvroNode): boolean {
  if (node.kind === 'union') return node.branches.every(isLeafType);
  return node.kind === 'primitive' || node.kind === 'enum' || node.kind === 'fixed';
}

function branchValidator(node: AvroNode): (value: unknown) => boolean {
  let type: avro.Type | undefined;
  return (value) => {
    type ??= avroType(standalone(node, new Set()));
    return type.isValid(value);
  };
}

/**
 * `node` as JSON that stands alone: named types written out in full at their
 * first use (full name, no namespace), annotations on type objects dropped.
 */
function standalone(node: AvroNode, seen: Set<string>): unknown {
  switch (node.kind) {
    case 'union':
      return node.branches.map((b) => standalone(b, seen));
    case 'primitive': {
      if (typeof node.json === 'string') return node.json;
      const obj = withoutKeys(node.json as Record<string, unknown>, ['semanticType']);
      // `{"type": "string"}` (an annotation holder) is just `"string"`.
      return Object.keys(obj).length === 1 ? node.type : obj;
    }
    case 'array':
      return { ...withoutKeys(node.json, ['semanticType']), items: standalone(node.items, seen) };
    case 'map':
      return { ...withoutKeys(node.json, ['semanticType']), values: standalone(node.values, seen) };
    default: {
      if (seen.has(node.name)) return node.name;
      seen.add(node.name);
      const obj: Record<string, unknown> = { ...withoutKeys(node.json, ['semanticType', 'namespace']), name: node.name };
      if (node.kind === 'record') obj.fields = node.fields.map((f) => ({ ...f.json, type: standalone(f.type, seen) }));
      return obj;
    }
  }
}

function withoutKeys(obj: Readonly<Record<string, unknown>>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}

function personalLeaf(node: AvroNode, semanticType: string, state: WalkState): Walked {
  const entry = state.catalogue[semanticType];
  if (entry === undefined) invalid(`unknown semantic type "${semanticType}"`);
  const seen = new Set<string>();
  const nonNull = nonNullBranches(node).map((b) => standalone(b, seen));
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
    node: { kind: 'personal', category: entry.category, withoutKey: 'null', plaintext, encode: plaintextEncoder(plaintext, sourceType) },
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
