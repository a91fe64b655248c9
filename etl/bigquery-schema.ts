/**
 * The BigQuery table schema of an event type, derived from the delivered
 * files' Avro schema (`deliveredFileSchema`: `eventId`, `receiveTime`,
 * `payload`) with BigQuery's documented Avro mapping under
 * `useAvroLogicalTypes`, column descriptions from the Avro `doc`s; and the
 * merge of a table's schema with a new writer version's (columns added as
 * NULLABLE, REQUIRED relaxed where a version lacks or nulls a column), which
 * refuses anything BigQuery cannot do in place (a changed column type).
 *
 * Mapping: null-unions → NULLABLE, other unions → a NULLABLE RECORD with one
 * NULLABLE field per branch (named after the branch type), record → RECORD,
 * array → REPEATED, map → REPEATED RECORD {key, value}, enum → STRING,
 * bytes/fixed → BYTES, int/long → INTEGER, float/double → FLOAT, logical
 * types: date → DATE, time-* → TIME, timestamp-* → TIMESTAMP,
 * local-timestamp-* → DATETIME, decimal → NUMERIC (or BIGNUMERIC beyond
 * NUMERIC's precision/scale); other logical types keep their base type.
 */
import { AppError } from '../lib/errors.ts';
import { deliveredFileSchema } from '../lib/partitions.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';

export type BigQueryMode = 'REQUIRED' | 'NULLABLE' | 'REPEATED';

/** A column as `tables.insert`/`tables.patch` take it (TableFieldSchema). */
export interface BigQueryField {
  name: string;
  type: string;
  mode: BigQueryMode;
  description?: string;
  fields?: BigQueryField[];
}

/** The column the tables are partitioned on: the delivered files' receive time. */
export const RECEIVE_TIME_COLUMN = 'receiveTime';

/** BigQuery's limit on a column description. */
const MAX_DESCRIPTION = 1024;

const ENVELOPE_DOCS = new Map([
  ['eventId', 'Producer-chosen (or assigned) event id; unique in its partition.'],
  ['receiveTime', 'When the event service accepted the event (UTC); picks the partition.'],
  ['payload', 'The event, in the delivered schema of its writer version (personal fields are Tink AEAD ciphertext).'],
]);

/** The table schema for files written with `deliveredPayloadSchema` (one writer version). */
export function tableSchemaOf(deliveredPayloadSchema: AvroSchemaJson): BigQueryField[] {
  const fields = new SchemaWalker().recordFields(deliveredFileSchema(deliveredPayloadSchema), '');
  return fields.map((f) => {
    const envelopeDoc = ENVELOPE_DOCS.get(f.name);
    return f.description === undefined && envelopeDoc !== undefined ? { ...f, description: envelopeDoc } : f;
  });
}

function schemaError(path: string, what: string): AppError {
  return new AppError('SCHEMA_INVALID', { message: `BigQuery cannot hold ${path === '' ? 'the schema' : `field '${path}'`}: ${what}` });
}

/** A BigQuery field type and mode for one Avro type (before the field's own name and doc). */
interface Mapped {
  type: string;
  mode: BigQueryMode;
  fields?: BigQueryField[];
  /** Doc of a named type, used when the field has none. */
  typeDoc?: string;
}

const PRIMITIVES = new Map([
  ['boolean', 'BOOLEAN'],
  ['int', 'INTEGER'],
  ['long', 'INTEGER'],
  ['float', 'FLOAT'],
  ['double', 'FLOAT'],
  ['bytes', 'BYTES'],
  ['string', 'STRING'],
]);

/** Walks an Avro schema JSON, resolving named types in Avro's namespace rules. */
class SchemaWalker {
  private readonly named = new Map<string, Record<string, unknown>>();
  /** Named types being expanded: a reference back to one is recursion, which BigQuery cannot hold. */
  private readonly expanding = new Set<string>();

  recordFields(record: Record<string, unknown>, path: string, namespace = ''): BigQueryField[] {
    const ns = this.namespaceOf(record, namespace);
    const fields = record.fields;
    if (!Array.isArray(fields)) throw schemaError(path, 'a record without fields');
    return fields.map((raw) => {
      const f = raw as Record<string, unknown>;
      const name = String(f.name);
      const fieldPath = path === '' ? name : `${path}.${name}`;
      const m = this.map(f.type, fieldPath, ns);
      const out: BigQueryField = { name, type: m.type, mode: m.mode };
      const description = describe(typeof f.doc === 'string' ? f.doc : m.typeDoc, encryptionOf(f.type));
      if (description !== undefined) out.description = description;
      if (m.fields !== undefined) out.fields = m.fields;
      return out;
    });
  }

  private namespaceOf(named: Record<string, unknown>, enclosing: string): string {
    const name = String(named.name ?? '');
    if (name.includes('.')) return name.slice(0, name.lastIndexOf('.'));
    return typeof named.namespace === 'string' ? named.namespace : enclosing;
  }

  private fullName(named: Record<string, unknown>, enclosing: string): string {
    const name = String(named.name ?? '');
    if (name.includes('.')) return name;
    const ns = typeof named.namespace === 'string' ? named.namespace : enclosing;
    return ns === '' ? name : `${ns}.${name}`;
  }

  private map(schema: unknown, path: string, ns: string): Mapped {
    if (typeof schema === 'string') return this.mapName(schema, path, ns);
    if (Array.isArray(schema)) return this.mapUnion(schema, path, ns);
    if (typeof schema !== 'object' || schema === null) throw schemaError(path, `not an Avro type: ${JSON.stringify(schema)}`);
    const s = schema as Record<string, unknown>;
    const type = s.type;
    if (typeof type !== 'string') return this.map(type, path, ns);
    const logical = mapLogical(s);
    if (logical !== undefined) return { type: logical, mode: 'REQUIRED' };
    switch (type) {
      case 'record':
      case 'error': {
        const full = this.fullName(s, ns);
        this.named.set(full, s);
        if (this.expanding.has(full)) throw schemaError(path, `recursive type ${full}`);
        this.expanding.add(full);
        try {
          return { type: 'RECORD', mode: 'REQUIRED', fields: this.recordFields(s, path, ns), ...docOf(s) };
        } finally {
          this.expanding.delete(full);
        }
      }
      case 'enum':
      case 'fixed':
        this.named.set(this.fullName(s, ns), s);
        return { type: type === 'enum' ? 'STRING' : 'BYTES', mode: 'REQUIRED', ...docOf(s) };
      case 'array': {
        const items = this.map(s.items, path, ns);
        if (items.mode === 'REPEATED') throw schemaError(path, 'an array of arrays or maps');
        // An array of nullable items maps to REPEATED; a null item fails BigQuery's load.
        return { type: items.type, mode: 'REPEATED', ...(items.fields === undefined ? {} : { fields: items.fields }) };
      }
      case 'map': {
        const value = this.map(s.values, `${path}.value`, ns);
        const valueField: BigQueryField = { name: 'value', type: value.type, mode: value.mode };
        if (value.fields !== undefined) valueField.fields = value.fields;
        return { type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }, valueField] };
      }
      default:
        return this.mapName(type, path, ns);
    }
  }

  private mapName(name: string, path: string, ns: string): Mapped {
    const primitive = PRIMITIVES.get(name);
    if (primitive !== undefined) return { type: primitive, mode: 'REQUIRED' };
    if (name === 'null') throw schemaError(path, 'a field that is always null');
    const full = name.includes('.') || ns === '' ? name : `${ns}.${name}`;
    const named = this.named.get(full) ?? this.named.get(name);
    if (named === undefined) throw schemaError(path, `unknown type ${name}`);
    if (this.expanding.has(this.fullName(named, ns))) throw schemaError(path, `recursive type ${name}`);
    // A reference: map the definition again (its fields are the same columns wherever it is used).
    return this.map({ ...named }, path, this.namespaceOf(named, ns));
  }

  private mapUnion(branches: unknown[], path: string, ns: string): Mapped {
    const nonNull = branches.filter((b) => b !== 'null');
    const nullable = nonNull.length < branches.length;
    if (nonNull.length === 0) throw schemaError(path, 'a field that is always null');
    if (nonNull.length === 1) {
      const m = this.map(nonNull[0], path, ns);
      return m.mode === 'REPEATED' ? m : { ...m, mode: nullable ? 'NULLABLE' : m.mode };
    }
    // Several non-null branches: a record with one nullable field per branch, at most one set.
    const fields = nonNull.map((b) => {
      const m = this.map(b, path, ns);
      const field: BigQueryField = { name: branchName(b), type: m.type, mode: m.mode === 'REPEATED' ? 'REPEATED' : 'NULLABLE' };
      if (m.fields !== undefined) field.fields = m.fields;
      return field;
    });
    return { type: 'RECORD', mode: 'NULLABLE', fields };
  }
}

/** BigQuery names a union branch's field after the branch's type (simple name for named types). */
function branchName(branch: unknown): string {
  if (typeof branch === 'string') return branch.includes('.') ? branch.slice(branch.lastIndexOf('.') + 1) : branch;
  const b = branch as Record<string, unknown>;
  if (typeof b.name === 'string') return b.name.includes('.') ? b.name.slice(b.name.lastIndexOf('.') + 1) : b.name;
  return String(b.type);
}

function docOf(s: Record<string, unknown>): { typeDoc?: string } {
  return typeof s.doc === 'string' ? { typeDoc: s.doc } : {};
}

/** The ETL's `encryption` annotation on an encrypted field's bytes type, if the field is one. */
function encryptionOf(type: unknown): { semanticType?: unknown; category?: unknown } | undefined {
  const branches = Array.isArray(type) ? type : [type];
  for (const b of branches) {
    if (typeof b === 'object' && b !== null && typeof (b as Record<string, unknown>).encryption === 'object') {
      return (b as { encryption: { semanticType?: unknown; category?: unknown } }).encryption;
    }
  }
  return undefined;
}

function describe(doc: string | undefined, encryption: { semanticType?: unknown; category?: unknown } | undefined): string | undefined {
  const note =
    encryption === undefined
      ? undefined
      : `[personal: ${String(encryption.semanticType)}, category ${String(encryption.category)}; Tink AEAD ciphertext, decrypt with AEAD.DECRYPT_BYTES]`;
  const text = [doc, note].filter((s): s is string => s !== undefined && s !== '').join(' ');
  if (text === '') return undefined;
  return text.length <= MAX_DESCRIPTION ? text : `${text.slice(0, MAX_DESCRIPTION - 1)}…`;
}

function mapLogical(s: Record<string, unknown>): string | undefined {
  const base = s.type;
  switch (s.logicalType) {
    case 'date':
      return base === 'int' ? 'DATE' : undefined;
    case 'time-millis':
      return base === 'int' ? 'TIME' : undefined;
    case 'time-micros':
      return base === 'long' ? 'TIME' : undefined;
    case 'timestamp-millis':
    case 'timestamp-micros':
      return base === 'long' ? 'TIMESTAMP' : undefined;
    case 'local-timestamp-millis':
    case 'local-timestamp-micros':
      return base === 'long' ? 'DATETIME' : undefined;
    case 'decimal': {
      if (base !== 'bytes' && base !== 'fixed') return undefined;
      const precision = Number(s.precision);
      const scale = s.scale === undefined ? 0 : Number(s.scale);
      if (!Number.isInteger(precision) || precision < 1 || !Number.isInteger(scale) || scale < 0 || scale > precision) return undefined;
      return scale <= 9 && precision - scale <= 29 ? 'NUMERIC' : 'BIGNUMERIC';
    }
    default:
      return undefined;
  }
}

/** What merging a table's schema with a version's changed. */
export interface SchemaMerge {
  fields: BigQueryField[];
  /** Column paths added (as NULLABLE, or REPEATED). */
  added: string[];
  /** Column paths relaxed from REQUIRED to NULLABLE. */
  relaxed: string[];
}

/**
 * The table schema that holds both `table`'s rows and rows of `version`:
 * columns of `version` the table lacks are appended (NULLABLE, since existing
 * rows have none), REQUIRED columns that `version` lacks or makes nullable
 * become NULLABLE. A column whose type or repetition differs cannot be changed
 * in place: SCHEMA_INCOMPATIBLE (permanent).
 */
export function mergeSchemas(table: readonly BigQueryField[], version: readonly BigQueryField[]): SchemaMerge {
  const added: string[] = [];
  const relaxed: string[] = [];
  const fields = mergeFields(table, version, '', added, relaxed);
  return { fields, added, relaxed };
}

function mergeFields(table: readonly BigQueryField[], version: readonly BigQueryField[], prefix: string, added: string[], relaxed: string[]): BigQueryField[] {
  const incoming = new Map(version.map((f) => [f.name.toLowerCase(), f]));
  const out: BigQueryField[] = [];
  for (const t of table) {
    const path = `${prefix}${t.name}`;
    const v = incoming.get(t.name.toLowerCase());
    incoming.delete(t.name.toLowerCase());
    if (v === undefined) {
      if (t.mode === 'REQUIRED') relaxed.push(path);
      out.push(t.mode === 'REQUIRED' ? { ...t, mode: 'NULLABLE' } : t);
      continue;
    }
    if (v.type !== t.type) {
      throw new AppError('SCHEMA_INCOMPATIBLE', { message: `column '${path}' is ${t.type} in the table but ${v.type} in the new schema version` });
    }
    if ((v.mode === 'REPEATED') !== (t.mode === 'REPEATED')) {
      throw new AppError('SCHEMA_INCOMPATIBLE', { message: `column '${path}' is ${t.mode} in the table but ${v.mode} in the new schema version` });
    }
    const merged: BigQueryField = { ...t };
    if (t.mode === 'REQUIRED' && v.mode === 'NULLABLE') {
      merged.mode = 'NULLABLE';
      relaxed.push(path);
    }
    if (t.fields !== undefined || v.fields !== undefined) merged.fields = mergeFields(t.fields ?? [], v.fields ?? [], `${path}.`, added, relaxed);
    if (merged.description === undefined && v.description !== undefined) merged.description = v.description;
    out.push(merged);
  }
  for (const v of incoming.values()) {
    added.push(`${prefix}${v.name}`);
    out.push(nullableDeep(v));
  }
  return out;
}

/** A column added to a table with rows: NULLABLE (or REPEATED) all the way down, as BigQuery requires. */
function nullableDeep(f: BigQueryField): BigQueryField {
  const out: BigQueryField = { ...f, mode: f.mode === 'REPEATED' ? 'REPEATED' : 'NULLABLE' };
  if (f.fields !== undefined) out.fields = f.fields.map(nullableDeep);
  return out;
}

/** Whether two schemas are the same columns (names, types, modes, descriptions, nesting, order). */
export function sameSchema(a: readonly BigQueryField[], b: readonly BigQueryField[]): boolean {
  return JSON.stringify(a.map(normalize)) === JSON.stringify(b.map(normalize));
}

function normalize(f: BigQueryField): unknown {
  return [f.name, f.type, f.mode ?? 'NULLABLE', f.description ?? '', (f.fields ?? []).map(normalize)];
}
