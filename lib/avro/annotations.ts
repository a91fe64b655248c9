/**
 * Semantic annotations of an Avro schema (DESIGN.md §3): fields carry
 * `"semanticType": "<catalogue key>"`. This module walks a schema JSON and
 * lists every annotated leaf with its path, its catalogue entry and whether it
 * is the data subject (`userId`). The composer validates with it; the ETL and
 * the encryption step use it to find the values to encrypt.
 *
 * **Paths.** Record fields are joined with `.`; an array's items add `[]`, a
 * map's values add `{}`; unions are transparent (a `["null","string"]` field
 * has the field's path, with `nullable: true`). Examples: `email`,
 * `user.email`, `devices[].id`, `contacts[].address.city`, `attributes{}`.
 * `steps` holds the same path as structured steps, so callers navigate a
 * decoded value without parsing strings.
 *
 * **Where an annotation may be.** On a record field (the usual place), or on a
 * type object (e.g. `"items": {"type": "string", "semanticType": "email"}`).
 * An annotated field whose type is an array, map or union of primitives
 * annotates every leaf value under it. An annotation must reach primitive
 * leaves (string, bytes, numbers, boolean, enum, fixed), not records.
 */
import { AppError } from '../errors.ts';
import { defaultCatalogue, SUBJECT_SEMANTIC_TYPE, type AccessTier, type SemanticCatalogue } from '../semantic-types.ts';
import { parseSchema, SchemaError, type AvroNode, type RecordNode, type SchemaProps } from './schema.ts';

/** One step from a value to a nested one. */
export type PathStep = { kind: 'field'; name: string } | { kind: 'items' } | { kind: 'values' };

/** An annotated leaf of a schema. */
export interface SemanticField {
  /** Human-readable path, e.g. `user.email`, `devices[].id`, `attributes{}`. */
  path: string;
  /** The same path as steps from the top-level record. */
  steps: PathStep[];
  semanticType: string;
  personal: boolean;
  category: string;
  accessTier: AccessTier;
  retentionDays: number;
  /** True for the data subject field (`semanticType: userId`). */
  subject: boolean;
  /** The leaf's own type (below its last field, item or value step) is a union with `null`. */
  nullable: boolean;
  /** True when an array or map lies on the path: several values per event. */
  repeated: boolean;
  /** Avro type of the leaf: `string`, `bytes`, `long`, an enum's or fixed's full name… */
  leafType: string;
}

/** One annotation rule broken, with the path it was broken at. */
export interface AnnotationProblem {
  path: string;
  rule: 'unknown-semantic-type' | 'annotation-on-record' | 'missing-subject' | 'multiple-subjects' | 'repeated-subject' | 'not-a-string';
  message: string;
}

export interface AnnotationReport {
  fields: SemanticField[];
  problems: AnnotationProblem[];
}

interface WalkState {
  catalogue: SemanticCatalogue;
  fields: SemanticField[];
  problems: AnnotationProblem[];
  /** Records being walked: stops recursive schemas. */
  stack: Set<RecordNode>;
}

interface Position {
  steps: PathStep[];
  nullable: boolean;
  repeated: boolean;
  /** Annotation inherited from the enclosing field, if any. */
  annotation: string | undefined;
}

/**
 * Walks `schema` and reports every semantic field plus every broken rule
 * (unknown type, annotation on a record, no or several subjects). Never throws
 * for annotation problems; a schema that is not valid Avro throws AppError
 * SCHEMA_INVALID.
 */
export function inspectAnnotations(schema: unknown, catalogue: SemanticCatalogue = defaultCatalogue): AnnotationReport {
  let root: AvroNode;
  try {
    root = parseSchema(schema).root;
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw new AppError('SCHEMA_INVALID', { message: `not a valid Avro schema: ${err.message}` });
  }
  const state: WalkState = { catalogue, fields: [], problems: [], stack: new Set() };
  walk(root, { steps: [], nullable: false, repeated: false, annotation: undefined }, state);

  const subjects = state.fields.filter((f) => f.subject);
  const personal = state.fields.filter((f) => f.personal);
  if (subjects.length > 1) {
    state.problems.push({
      path: subjects.map((s) => s.path).join(', '),
      rule: 'multiple-subjects',
      message: `more than one field is the data subject (semanticType "${SUBJECT_SEMANTIC_TYPE}"): ${subjects.map((s) => s.path).join(', ')}`,
    });
  }
  for (const s of subjects) {
    if (s.repeated) {
      state.problems.push({ path: s.path, rule: 'repeated-subject', message: 'the data subject must be a single value, not inside an array or map' });
    }
    if (s.leafType !== 'string' && s.leafType !== 'long' && s.leafType !== 'int') {
      state.problems.push({ path: s.path, rule: 'not-a-string', message: `the data subject must be a string, int or long, not ${s.leafType}` });
    }
  }
  if (personal.length > 0 && subjects.length === 0) {
    state.problems.push({
      path: personal.map((p) => p.path).join(', '),
      rule: 'missing-subject',
      message: `personal fields (${personal.map((p) => p.path).join(', ')}) but no data subject field (semanticType "${SUBJECT_SEMANTIC_TYPE}")`,
    });
  }
  return { fields: state.fields, problems: state.problems };
}

/**
 * The semantic fields of a schema, in schema order. Throws AppError
 * SCHEMA_INVALID (details.problems) if an annotation breaks a rule, e.g. a
 * semantic type unknown to `catalogue`.
 */
export function semanticFields(schema: unknown, catalogue: SemanticCatalogue = defaultCatalogue): SemanticField[] {
  const { fields, problems } = inspectAnnotations(schema, catalogue);
  if (problems.length > 0) {
    throw new AppError('SCHEMA_INVALID', {
      message: `Schema annotations are not valid: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      details: { problems },
    });
  }
  return fields;
}

/** The personal fields only: what the ETL encrypts. */
export function personalFields(schema: unknown, catalogue: SemanticCatalogue = defaultCatalogue): SemanticField[] {
  return semanticFields(schema, catalogue).filter((f) => f.personal);
}

/**
 * Path of the data-subject field (`semanticType: userId`), or undefined if the
 * schema has none (or, invalidly, several). Needs no catalogue.
 */
export function subjectField(schema: unknown): string | undefined {
  const subjects = inspectAnnotations(schema, defaultCatalogue).fields.filter((f) => f.subject);
  return subjects.length === 1 ? subjects[0]?.path : undefined;
}

/** Renders steps as a path string (`user.email`, `devices[].id`). */
export function formatPath(steps: readonly PathStep[]): string {
  let out = '';
  for (const s of steps) {
    if (s.kind === 'field') out += out === '' ? s.name : `.${s.name}`;
    else out += s.kind === 'items' ? '[]' : '{}';
  }
  return out;
}

/**
 * Every value at `steps` in a decoded record (arrays and maps fan out; null or
 * missing values are skipped). Unions must be decoded unwrapped (avsc's default
 * for `["null", T]`).
 */
export function valuesAt(record: unknown, steps: readonly PathStep[]): unknown[] {
  let current: unknown[] = [record];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of current) {
      if (v === null || v === undefined) continue;
      if (step.kind === 'field') {
        if (typeof v === 'object') next.push((v as Record<string, unknown>)[step.name]);
      } else if (step.kind === 'items') {
        if (Array.isArray(v)) next.push(...(v as unknown[]));
      } else if (typeof v === 'object') {
        next.push(...Object.values(v as Record<string, unknown>));
      }
    }
    current = next;
  }
  return current.filter((v) => v !== null && v !== undefined);
}

function semanticTypeOf(props: SchemaProps): string | undefined {
  return typeof props.semanticType === 'string' ? props.semanticType : undefined;
}

function walk(node: AvroNode, pos: Position, state: WalkState): void {
  if (node.kind === 'union') {
    const nullable = pos.nullable || node.branches.some((b) => b.kind === 'primitive' && b.type === 'null');
    for (const branch of node.branches) if (!(branch.kind === 'primitive' && branch.type === 'null')) walk(branch, { ...pos, nullable }, state);
    return;
  }
  // An annotation on the type object itself wins over the enclosing field's.
  const own = semanticTypeOf(node.props);
  const here: Position = own === undefined ? pos : { ...pos, annotation: own };
  switch (node.kind) {
    case 'primitive':
      return leaf(node.type, here, state);
    case 'enum':
    case 'fixed':
      return leaf(node.name, here, state);
    case 'array':
      return walk(node.items, { ...here, steps: [...pos.steps, { kind: 'items' }], repeated: true, nullable: false }, state);
    case 'map':
      return walk(node.values, { ...here, steps: [...pos.steps, { kind: 'values' }], repeated: true, nullable: false }, state);
    case 'record':
      if (here.annotation !== undefined) {
        state.problems.push({
          path: formatPath(pos.steps) || '(root)',
          rule: 'annotation-on-record',
          message: `semanticType "${here.annotation}" is on a record; annotate its primitive fields instead`,
        });
      }
      if (state.stack.has(node)) return;
      state.stack.add(node);
      for (const f of node.fields) {
        walk(f.type, { steps: [...pos.steps, { kind: 'field', name: f.name }], nullable: false, repeated: pos.repeated, annotation: semanticTypeOf(f.props) }, state);
      }
      state.stack.delete(node);
  }
}

function leaf(leafType: string, pos: Position, state: WalkState): void {
  if (pos.annotation === undefined || leafType === 'null') return;
  const path = formatPath(pos.steps) || '(root)';
  const entry = state.catalogue[pos.annotation];
  if (entry === undefined) {
    state.problems.push({
      path,
      rule: 'unknown-semantic-type',
      message: `unknown semantic type "${pos.annotation}" (known: ${Object.keys(state.catalogue).sort().join(', ')})`,
    });
    return;
  }
  if (state.fields.some((f) => f.path === path && f.semanticType === pos.annotation)) return;
  state.fields.push({
    path,
    steps: pos.steps,
    semanticType: pos.annotation,
    personal: entry.personal,
    category: entry.category,
    accessTier: entry.accessTier,
    retentionDays: entry.retentionDays,
    subject: pos.annotation === SUBJECT_SEMANTIC_TYPE,
    nullable: pos.nullable,
    repeated: pos.repeated,
    leafType,
  });
}
