/**
 * Table schemas: validation of what callers send (standard SQL type names are
 * stored under their legacy names, as BigQuery answers them), and the two
 * schema changes BigQuery allows on an existing table: adding NULLABLE or
 * REPEATED fields and relaxing REQUIRED to NULLABLE (tables.patch, and load
 * jobs with schemaUpdateOptions).
 */
import { errors } from './errors.ts';

export type FieldType =
  | 'STRING'
  | 'BYTES'
  | 'INTEGER'
  | 'FLOAT'
  | 'NUMERIC'
  | 'BIGNUMERIC'
  | 'BOOLEAN'
  | 'TIMESTAMP'
  | 'DATE'
  | 'TIME'
  | 'DATETIME'
  | 'JSON'
  | 'GEOGRAPHY'
  | 'RECORD';
export type FieldMode = 'NULLABLE' | 'REQUIRED' | 'REPEATED';

export interface TableField {
  name: string;
  type: FieldType;
  mode: FieldMode;
  fields?: TableField[];
  description?: string;
}

const typeNames: ReadonlyMap<string, FieldType> = new Map([
  ['STRING', 'STRING'],
  ['BYTES', 'BYTES'],
  ['INTEGER', 'INTEGER'],
  ['INT64', 'INTEGER'],
  ['FLOAT', 'FLOAT'],
  ['FLOAT64', 'FLOAT'],
  ['NUMERIC', 'NUMERIC'],
  ['DECIMAL', 'NUMERIC'],
  ['BIGNUMERIC', 'BIGNUMERIC'],
  ['BIGDECIMAL', 'BIGNUMERIC'],
  ['BOOLEAN', 'BOOLEAN'],
  ['BOOL', 'BOOLEAN'],
  ['TIMESTAMP', 'TIMESTAMP'],
  ['DATE', 'DATE'],
  ['TIME', 'TIME'],
  ['DATETIME', 'DATETIME'],
  ['JSON', 'JSON'],
  ['GEOGRAPHY', 'GEOGRAPHY'],
  ['RECORD', 'RECORD'],
  ['STRUCT', 'RECORD'],
]);

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,299}$/;
/** BigQuery allows 15 levels of nested RECORDs. */
const MAX_DEPTH = 15;
const MAX_FIELDS = 10_000;

/** Validates a schema from a request (`{fields: [...]}`); throws a 400 `invalid` naming the problem. */
export function parseSchema(value: unknown): TableField[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.invalid('schema: expected an object with fields.');
  const fields = (value as { fields?: unknown }).fields;
  let count = 0;
  const parseFields = (list: unknown, path: string, depth: number): TableField[] => {
    if (!Array.isArray(list)) throw errors.invalid(`${path || 'schema'}.fields: expected an array.`);
    if (depth > MAX_DEPTH) throw errors.invalid(`Field ${path} nests RECORDs more than ${MAX_DEPTH} levels deep.`);
    const seen = new Set<string>();
    return list.map((f: unknown) => {
      if (++count > MAX_FIELDS) throw errors.invalid(`A schema may have at most ${MAX_FIELDS} fields.`);
      if (typeof f !== 'object' || f === null || Array.isArray(f)) throw errors.invalid(`${path || 'schema'}: each field must be an object.`);
      const o = f as Record<string, unknown>;
      if (typeof o.name !== 'string' || !FIELD_NAME.test(o.name)) {
        throw errors.invalid(`Invalid field name "${typeof o.name === 'string' ? o.name.slice(0, 300) : ''}". Fields must contain only letters, numbers, and underscores, start with a letter or underscore, and be at most 300 characters long.`);
      }
      const full = path === '' ? o.name : `${path}.${o.name}`;
      const lower = o.name.toLowerCase();
      if (seen.has(lower)) throw errors.invalid(`Field ${full} is specified more than once (field names are case-insensitive).`);
      seen.add(lower);
      const type = typeof o.type === 'string' ? typeNames.get(o.type.toUpperCase()) : undefined;
      if (type === undefined) throw errors.invalid(`Field ${full}: invalid type ${JSON.stringify(o.type ?? null)}.`);
      const modeText = o.mode === undefined || o.mode === null ? 'NULLABLE' : String(o.mode).toUpperCase();
      if (modeText !== 'NULLABLE' && modeText !== 'REQUIRED' && modeText !== 'REPEATED') throw errors.invalid(`Field ${full}: invalid mode ${JSON.stringify(o.mode)}.`);
      const field: TableField = { name: o.name, type, mode: modeText };
      if (o.description !== undefined && o.description !== null) {
        if (typeof o.description !== 'string' || o.description.length > 1024) throw errors.invalid(`Field ${full}: description must be a string of at most 1024 characters.`);
        field.description = o.description;
      }
      if (type === 'RECORD') {
        const sub = parseFields(o.fields, full, depth + 1);
        if (sub.length === 0) throw errors.invalid(`Field ${full} is type RECORD but has no schema.`);
        field.fields = sub;
      } else if (o.fields !== undefined && !(Array.isArray(o.fields) && o.fields.length === 0)) {
        throw errors.invalid(`Field ${full}: only RECORD fields have subfields.`);
      }
      return field;
    });
  };
  return parseFields(fields ?? [], '', 1);
}

export interface SchemaChangeOptions {
  allowFieldAddition: boolean;
  allowFieldRelaxation: boolean;
}

/**
 * The schema `next` may become given the table's `current` one, or a 400
 * `invalid` in BigQuery's words ("Provided Schema does not match Table …").
 * Fields of `current` missing from `next` are kept (loads may omit NULLABLE
 * fields) unless `requireAll`, as tables.patch does.
 */
export function evolveSchema(
  tableName: string,
  current: readonly TableField[],
  next: readonly TableField[],
  options: SchemaChangeOptions & { requireAll: boolean; addedFieldsMayBeRequired?: boolean },
): TableField[] {
  const mismatch = (why: string): Error => errors.invalid(`Provided Schema does not match Table ${tableName}. ${why}`);
  const walk = (cur: readonly TableField[], nxt: readonly TableField[], path: string): TableField[] => {
    const byName = new Map(nxt.map((f) => [f.name.toLowerCase(), f]));
    const out: TableField[] = [];
    for (const c of cur) {
      const full = path + c.name;
      const n = byName.get(c.name.toLowerCase());
      byName.delete(c.name.toLowerCase());
      if (n === undefined) {
        if (options.requireAll) throw mismatch(`Field ${full} is missing in new schema`);
        if (c.mode === 'REQUIRED') throw mismatch(`Field ${full} is missing in new schema`);
        out.push(c);
        continue;
      }
      if (n.type !== c.type) throw mismatch(`Field ${full} has changed type from ${c.type} to ${n.type}`);
      let mode = c.mode;
      if (n.mode !== c.mode) {
        if (c.mode === 'REQUIRED' && n.mode === 'NULLABLE' && options.allowFieldRelaxation) mode = 'NULLABLE';
        else if (c.mode === 'NULLABLE' && n.mode === 'REQUIRED' && !options.requireAll) mode = 'NULLABLE';
        else throw mismatch(`Field ${full} has changed mode from ${c.mode} to ${n.mode}`);
      }
      const merged: TableField = { ...c, mode };
      if (options.requireAll && n.description !== undefined) merged.description = n.description;
      if (options.requireAll && n.description === undefined) delete merged.description;
      if (c.type === 'RECORD') merged.fields = walk(c.fields ?? [], n.fields ?? [], `${full}.`);
      out.push(merged);
    }
    for (const n of byName.values()) {
      const full = path + n.name;
      if (!options.allowFieldAddition) throw mismatch(`Cannot add fields (field: ${full})`);
      if (n.mode === 'REQUIRED' && !options.addedFieldsMayBeRequired) throw mismatch(`Cannot add required fields to an existing schema. (field: ${full})`);
      out.push(n.mode === 'REQUIRED' ? { ...n, mode: 'NULLABLE' } : n);
    }
    return out;
  };
  return walk(current, next, '');
}

/** The top-level field named `name` (case-insensitive), if any. */
export function findField(fields: readonly TableField[], name: string): TableField | undefined {
  const lower = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === lower);
}
