/**
 * Rows in BigQuery's JSON row format: `{f: [{v: …}]}` per row in schema
 * order, RECORD as a nested `{f: […]}`, REPEATED as `[{v: …}]`, every scalar
 * a string (or null). TIMESTAMP is formatted as the request asks
 * (`formatOptions.useInt64Timestamp` / `timestampOutputFormat`).
 */
import { errors } from './errors.ts';
import type { TableField } from './schema.ts';
import { javaDouble, timestampIso, type Cell, type CellRecord, type Row } from './values.ts';

export type TimestampFormat = 'INT64' | 'FLOAT64' | 'ISO8601_STRING';

export interface JsonCell {
  v: JsonValue;
}
export type JsonValue = null | string | JsonCell[] | { f: JsonCell[] };
export interface JsonRow {
  f: JsonCell[];
}

/** The TIMESTAMP format a tabledata.list / getQueryResults request asks for. */
export function timestampFormatOf(query: URLSearchParams): TimestampFormat {
  const fmt = query.get('formatOptions.timestampOutputFormat');
  if (fmt !== null && fmt !== '' && fmt !== 'TIMESTAMP_OUTPUT_FORMAT_UNSPECIFIED') {
    if (fmt !== 'INT64' && fmt !== 'FLOAT64' && fmt !== 'ISO8601_STRING') throw errors.invalid(`Invalid formatOptions.timestampOutputFormat ${fmt}.`);
    return fmt;
  }
  return query.get('formatOptions.useInt64Timestamp') === 'true' ? 'INT64' : 'FLOAT64';
}

function formatTimestamp(micros: string, fmt: TimestampFormat): string {
  if (fmt === 'INT64') return micros;
  const m = BigInt(micros);
  if (fmt === 'ISO8601_STRING') return timestampIso(m);
  return javaDouble(Number(m) / 1e6);
}

function own(rec: CellRecord, name: string): Cell {
  return Object.hasOwn(rec, name) ? (rec[name] as Cell) : null;
}

function scalar(field: TableField, cell: Cell, fmt: TimestampFormat): JsonValue {
  if (cell === null) return null;
  if (field.type === 'RECORD') return recordValue(field.fields ?? [], cell as CellRecord, fmt);
  if (field.type === 'TIMESTAMP') return formatTimestamp(cell as string, fmt);
  return cell as string;
}

function recordValue(fields: readonly TableField[], rec: CellRecord, fmt: TimestampFormat): { f: JsonCell[] } {
  return { f: fields.map((f) => ({ v: value(f, own(rec, f.name), fmt) })) };
}

function value(field: TableField, cell: Cell, fmt: TimestampFormat): JsonValue {
  if (field.mode === 'REPEATED') return Array.isArray(cell) ? cell.map((c) => ({ v: scalar(field, c, fmt) })) : [];
  return scalar(field, cell, fmt);
}

export function toJsonRow(fields: readonly TableField[], row: Row, fmt: TimestampFormat): JsonRow {
  return recordValue(fields, row, fmt);
}

/**
 * The fields `selectedFields` (comma-separated top-level names, as the client
 * sends them) keeps, in table order; every field when absent.
 */
export function selectFields(fields: readonly TableField[], selected: string | null): TableField[] {
  if (selected === null || selected.trim() === '') return [...fields];
  const wanted = new Set(selected.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''));
  const out: TableField[] = [];
  for (const f of fields) {
    if (wanted.delete(f.name.toLowerCase())) out.push(f);
  }
  for (const w of wanted) {
    // A nested path selects its top-level RECORD whole (the emulator does not prune inside records).
    const top = w.split('.')[0]!;
    const f = fields.find((x) => x.name.toLowerCase() === top);
    if (f === undefined || !w.includes('.')) throw errors.invalid(`selectedFields: no such field: ${w}`);
    if (!out.includes(f)) out.push(f);
  }
  return fields.filter((f) => out.includes(f));
}
