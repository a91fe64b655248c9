/**
 * Where the encrypted values of a delivered record are, and each one found:
 * its schema path (`contacts[].email`: arrays `[]`, map values `{}`), the
 * concrete path its ciphertext is bound to (lib/privacy/field-path.ts), its
 * data category and key context. The subject index (written at close) and the
 * shred report both walk records with it, so they count the same values.
 */
import { nonNullBranches, parseSchema, SchemaError, typeName, type AvroNode, type RecordNode } from '../avro/schema.ts';
import { AppError } from '../errors.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import { SUBJECT_SEMANTIC_TYPE } from '../semantic-types.ts';
import { ENCRYPTION_ATTRIBUTE, type EncryptionAnnotation } from './delivered-schema.ts';
import { fieldStep, itemStep, valueStep } from './field-path.ts';
import { subjectOf } from './record-encryptor.ts';

/** One ciphertext in a delivered record. */
export interface EncryptedValue {
  /** Schema path, the same for every record: `email`, `contacts[].email`, `attributes{}`. */
  schemaPath: string;
  /** The concrete path the ciphertext is bound to (its associated data with the event type). */
  path: string;
  category: string;
  keyContext: string;
  ciphertext: Buffer;
}

type Node =
  | { kind: 'encrypted'; schemaPath: string; category: string; keyContext: string }
  | { kind: 'record'; fields: { name: string; node: Node }[] }
  | { kind: 'array'; items: Node }
  | { kind: 'map'; values: Node }
  | { kind: 'union'; single: boolean; branches: { name: string; node: Node }[] };

/** The compiled walk of one delivered schema. */
export interface EncryptedValuePlan {
  root: Node | undefined;
  /** Field names from the root to the data subject. */
  subjectPath: string[] | undefined;
}

/** Compiles the walk of a delivered payload schema (as in a manifest's `deliveredSchemas`). */
export function compileEncryptedValuePlan(deliveredSchema: AvroSchemaJson): EncryptedValuePlan {
  let model: AvroNode;
  try {
    model = parseSchema(deliveredSchema).root;
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw new AppError('SCHEMA_INVALID', { message: `The delivered schema is not valid Avro: ${err.message}` });
  }
  const records = new Map<RecordNode, Node | undefined>();
  let subjectPath: string[] | undefined;
  const walk = (node: AvroNode, fieldPath: string[], schemaPath: string, annotation: string | undefined): Node | undefined => {
    if (annotation === SUBJECT_SEMANTIC_TYPE && subjectPath === undefined) subjectPath = fieldPath;
    switch (node.kind) {
      case 'primitive': {
        const enc = node.props[ENCRYPTION_ATTRIBUTE] as EncryptionAnnotation | undefined;
        if (node.type !== 'bytes' || typeof enc !== 'object' || enc === null) return undefined;
        return { kind: 'encrypted', schemaPath, category: enc.category, keyContext: enc.keyContext };
      }
      case 'union': {
        const branches: { name: string; node: Node }[] = [];
        for (const b of node.branches) {
          const child = walk(b, fieldPath, schemaPath, annotation);
          if (child !== undefined) branches.push({ name: typeName(b), node: child });
        }
        const single = nonNullBranches(node).length === 1;
        return branches.length === 0 ? undefined : { kind: 'union', single, branches };
      }
      case 'record': {
        // A recursive record: its paths are those of its first occurrence.
        if (records.has(node)) return records.get(node);
        const plan: { kind: 'record'; fields: { name: string; node: Node }[] } = { kind: 'record', fields: [] };
        records.set(node, plan);
        for (const f of node.fields) {
          const semantic = typeof f.props.semanticType === 'string' ? f.props.semanticType : undefined;
          const child = walk(f.type, [...fieldPath, f.name], fieldStep(schemaPath, f.name), semantic);
          if (child !== undefined) plan.fields.push({ name: f.name, node: child });
        }
        const result = plan.fields.length === 0 ? undefined : plan;
        records.set(node, result);
        return result;
      }
      case 'array': {
        const items = walk(node.items, fieldPath, `${schemaPath}[]`, annotation);
        return items === undefined ? undefined : { kind: 'array', items };
      }
      case 'map': {
        const values = walk(node.values, fieldPath, `${schemaPath}{}`, annotation);
        return values === undefined ? undefined : { kind: 'map', values };
      }
      default:
        return undefined;
    }
  };
  const root = walk(model, [], '', undefined);
  return { root, subjectPath };
}

/** The record's subject id (as padlock takes it), or undefined. */
export function subjectOfPayload(plan: EncryptedValuePlan, payload: unknown): string | undefined {
  return subjectOf(payload, plan.subjectPath);
}

/** Every ciphertext of `payload` (null values and the empty bytes of a keyless array item are not ciphertexts). */
export function encryptedValuesOf(plan: EncryptedValuePlan, payload: unknown): EncryptedValue[] {
  const out: EncryptedValue[] = [];
  if (plan.root !== undefined) visit(plan.root, payload, '', out);
  return out;
}

function visit(node: Node, value: unknown, path: string, out: EncryptedValue[]): void {
  if (value === null || value === undefined) return;
  switch (node.kind) {
    case 'encrypted':
      if (Buffer.isBuffer(value) && value.length > 0) out.push({ schemaPath: node.schemaPath, path, category: node.category, keyContext: node.keyContext, ciphertext: value });
      return;
    case 'record':
      for (const f of node.fields) {
        const record = value as Record<string, unknown>;
        if (Object.hasOwn(record, f.name)) visit(f.node, record[f.name], fieldStep(path, f.name), out);
      }
      return;
    case 'array':
      if (Array.isArray(value)) value.forEach((v, i) => visit(node.items, v, itemStep(path, i), out));
      return;
    case 'map':
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) visit(node.values, v, valueStep(path, k), out);
      return;
    case 'union': {
      const first = node.branches[0];
      if (node.single && first !== undefined) {
        visit(first.node, value, path, out);
        return;
      }
      if (typeof value === 'object' && !Buffer.isBuffer(value) && !Array.isArray(value)) {
        const keys = Object.keys(value);
        const wrapped = keys.length === 1 ? node.branches.find((b) => b.name === keys[0]) : undefined;
        if (wrapped !== undefined) {
          visit(wrapped.node, (value as Record<string, unknown>)[wrapped.name], path, out);
          return;
        }
        // Unwrapped (avsc 'auto'): an object can only be the one record branch.
        const recordBranches = node.branches.filter((b) => b.node.kind === 'record');
        if (recordBranches.length === 1) visit(recordBranches[0]!.node, value, path, out);
      }
      return;
    }
  }
}
