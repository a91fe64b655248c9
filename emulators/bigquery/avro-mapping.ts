/**
 * BigQuery's Avro → BigQuery mapping, applied to a writer schema: the table
 * fields it yields and a converter from decoded records to stored rows.
 *
 * - boolean → BOOLEAN, int/long → INTEGER, float/double → FLOAT, string → STRING,
 *   bytes/fixed → BYTES, enum → STRING (the symbol), record → RECORD,
 *   array → REPEATED (arrays of arrays are refused), map<T> → REPEATED RECORD
 *   {key STRING, value T}; a union of null and one type → NULLABLE; a field
 *   without null → REQUIRED; a `null` field is ignored; field `doc` → description.
 * - With useAvroLogicalTypes: date → DATE, time-millis/-micros → TIME,
 *   timestamp-millis/-micros → TIMESTAMP, local-timestamp-millis/-micros → DATETIME;
 *   without it they keep their underlying type (INTEGER).
 * - decimal (bytes or fixed) → NUMERIC when scale ≤ 9 and precision − scale ≤ 29,
 *   else BIGNUMERIC, with or without the flag.
 * Unions of several non-null types and recursive records are refused with an
 * `invalid` error (see the README).
 */
import { errors } from './errors.ts';
import type { FieldType, TableField } from './schema.ts';
import {
  formatDate,
  formatDatetime,
  formatDecimal,
  formatTime,
  javaDouble,
  MAX_TIMESTAMP_MICROS,
  MIN_TIMESTAMP_MICROS,
  newRecord,
  type Cell,
  type Row,
} from './values.ts';

type Convert = (value: unknown, path: string) => Cell;

interface Mapped {
  type: FieldType;
  nullable: boolean;
  repeated: boolean;
  fields?: TableField[];
  convert: Convert;
}

/** What a writer schema loads as. */
export interface AvroMapping {
  fields: TableField[];
  /** Decoded record → stored row; throws a 400 `invalid` for a value BigQuery refuses. */
  toRow(record: unknown): Row;
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** Maps a writer schema (parsed JSON); throws a 400 `invalid` naming what BigQuery would not load. */
export function mapAvroSchema(schema: unknown, useAvroLogicalTypes: boolean, uri: string): AvroMapping {
  const named = new Map<string, unknown>();
  const inProgress = new Set<string>();
  const refuse = (why: string): Error => errors.invalid(`Error while reading data, error message: ${why} File: ${uri}`);

  const fullName = (name: string, ns: string | undefined): string => (name.includes('.') || ns === undefined || ns === '' ? name : `${ns}.${name}`);

  const mapType = (s: unknown, ns: string | undefined, path: string): Mapped | 'null' => {
    if (typeof s === 'string') {
      if (PRIMITIVES.has(s)) return s === 'null' ? 'null' : mapPrimitive(s, undefined, path);
      const def = named.get(fullName(s, ns)) ?? named.get(s);
      if (def === undefined) throw refuse(`Unknown Avro type ${s} at ${path}.`);
      if (typeof def === 'object' && def !== null && inProgress.has(fullName(String((def as { name?: unknown }).name), ns))) {
        throw refuse(`Recursive Avro record ${s} at ${path} is not supported by the emulator.`);
      }
      return mapType(def, ns, path);
    }
    if (Array.isArray(s)) return mapUnion(s, ns, path);
    if (typeof s !== 'object' || s === null) throw refuse(`Invalid Avro schema at ${path}.`);
    const o = s as Record<string, unknown>;
    const type = o.type;
    if (typeof type === 'string' && PRIMITIVES.has(type)) return type === 'null' ? 'null' : mapPrimitive(type, o, path);
    if (type === 'record' || type === 'error') return mapRecord(o, ns, path);
    if (type === 'enum') {
      register(o, ns);
      return { type: 'STRING', nullable: false, repeated: false, convert: (v) => String(v) };
    }
    if (type === 'fixed') {
      register(o, ns);
      const dec = decimalOf(o, path);
      if (dec !== undefined) return dec;
      return { type: 'BYTES', nullable: false, repeated: false, convert: (v) => (v as Buffer).toString('base64') };
    }
    if (type === 'array') {
      const items = mapType(o.items, ns, `${path}[]`);
      if (items === 'null') return 'null';
      if (items.repeated) throw refuse(`Array of arrays is not supported (field ${path}).`);
      const convertItem = items.convert;
      return {
        ...items,
        repeated: true,
        nullable: false,
        convert: (v, p) =>
          (v as unknown[]).map((x) => {
            if (x === null) throw errors.invalid(`Array specified for non-repeated field ${p} contains a null element; BigQuery arrays cannot hold NULL. File: ${uri}`);
            return convertItem(x, p);
          }),
      };
    }
    if (type === 'map') {
      const values = mapType(o.values, ns, `${path}.value`);
      const valueField: TableField[] = values === 'null' ? [] : [fieldOf('value', values)];
      const convertValue = values === 'null' ? undefined : values.convert;
      return {
        type: 'RECORD',
        nullable: false,
        repeated: true,
        fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }, ...valueField],
        convert: (v, p) => {
          const entries = v instanceof Map ? [...(v as Map<string, unknown>).entries()] : Object.entries(v as Record<string, unknown>);
          return entries.map(([k, x]) => {
            const rec = newRecord();
            rec.key = k;
            if (convertValue !== undefined) rec.value = x === null ? null : convertValue(x, `${p}.value`);
            return rec;
          });
        },
      };
    }
    if (typeof type === 'object' && type !== null) return mapType(type, ns, path);
    if (typeof type === 'string') return mapType(type, ns, path);
    throw refuse(`Invalid Avro schema at ${path}.`);
  };

  const register = (o: Record<string, unknown>, ns: string | undefined): string => {
    if (typeof o.name !== 'string') throw refuse('A named Avro type has no name.');
    const space = typeof o.namespace === 'string' ? o.namespace : ns;
    const full = fullName(o.name, space);
    named.set(full, o);
    if (!named.has(o.name)) named.set(o.name, o);
    return full;
  };

  const mapUnion = (branches: unknown[], ns: string | undefined, path: string): Mapped | 'null' => {
    const mapped = branches.map((b) => mapType(b, ns, path));
    const nonNull = mapped.filter((m): m is Mapped => m !== 'null');
    if (nonNull.length === 0) return 'null';
    if (nonNull.length > 1) throw refuse(`Union of several non-null types at ${path} is not supported by the emulator.`);
    const only = nonNull[0]!;
    const hasNull = nonNull.length !== mapped.length;
    if (!hasNull) return only;
    if (only.repeated) {
      const inner = only.convert;
      return { ...only, convert: (v, p) => (v === null ? [] : inner(v, p)) };
    }
    const inner = only.convert;
    return { ...only, nullable: true, convert: (v, p) => (v === null || v === undefined ? null : inner(v, p)) };
  };

  const mapRecord = (o: Record<string, unknown>, ns: string | undefined, path: string): Mapped => {
    const full = register(o, ns);
    const space = full.includes('.') ? full.slice(0, full.lastIndexOf('.')) : undefined;
    if (!Array.isArray(o.fields)) throw refuse(`Record ${full} has no fields.`);
    inProgress.add(full);
    const parts: { name: string; convert: Convert }[] = [];
    const fields: TableField[] = [];
    for (const f of o.fields as unknown[]) {
      const fo = f as Record<string, unknown>;
      if (typeof fo.name !== 'string') throw refuse(`A field of record ${full} has no name.`);
      const sub = mapType(fo.type, space, path === '' ? fo.name : `${path}.${fo.name}`);
      if (sub === 'null') continue;
      const field = fieldOf(fo.name, sub);
      if (typeof fo.doc === 'string' && fo.doc !== '') field.description = fo.doc.slice(0, 1024);
      fields.push(field);
      parts.push({ name: fo.name, convert: sub.convert });
    }
    inProgress.delete(full);
    if (fields.length === 0 && path !== '') throw refuse(`Record ${full} at ${path} has no loadable fields.`);
    return {
      type: 'RECORD',
      nullable: false,
      repeated: false,
      fields,
      convert: (v, p) => {
        const src = v as Record<string, unknown>;
        const rec = newRecord();
        for (const part of parts) {
          const x = src[part.name];
          const fp = p === '' ? part.name : `${p}.${part.name}`;
          rec[part.name] = x === undefined ? null : part.convert(x, fp);
        }
        return rec;
      },
    };
  };

  const mapPrimitive = (type: string, o: Record<string, unknown> | undefined, path: string): Mapped => {
    const logical = typeof o?.logicalType === 'string' ? o.logicalType : undefined;
    const scalar = (t: FieldType, convert: Convert): Mapped => ({ type: t, nullable: false, repeated: false, convert });
    if (type === 'bytes' && logical === 'decimal' && o !== undefined) {
      const dec = decimalOf(o, path);
      if (dec !== undefined) return dec;
    }
    if (useAvroLogicalTypes && logical !== undefined) {
      const outOfRange = (p: string, what: string): Error => errors.invalid(`Error while reading data, error message: Invalid ${what} value for field ${p}. File: ${uri}`);
      if (type === 'int' && logical === 'date') {
        return scalar('DATE', (v, p) => formatDate(v as number) ?? (() => { throw outOfRange(p, 'DATE'); })());
      }
      if (type === 'int' && logical === 'time-millis') {
        return scalar('TIME', (v, p) => formatTime(BigInt(v as number) * 1000n) ?? (() => { throw outOfRange(p, 'TIME'); })());
      }
      if (type === 'long' && logical === 'time-micros') {
        return scalar('TIME', (v, p) => formatTime(BigInt(v as number | bigint)) ?? (() => { throw outOfRange(p, 'TIME'); })());
      }
      if (type === 'long' && (logical === 'timestamp-micros' || logical === 'timestamp-millis')) {
        const factor = logical === 'timestamp-millis' ? 1000n : 1n;
        return scalar('TIMESTAMP', (v, p) => {
          // Every safe-integer micros value is inside BigQuery's range: skip BigInt on the common path.
          if (factor === 1n && typeof v === 'number') return String(v);
          const micros = BigInt(v as number | bigint) * factor;
          if (micros < MIN_TIMESTAMP_MICROS || micros > MAX_TIMESTAMP_MICROS) throw outOfRange(p, 'TIMESTAMP');
          return micros.toString();
        });
      }
      if (type === 'long' && (logical === 'local-timestamp-micros' || logical === 'local-timestamp-millis')) {
        const factor = logical === 'local-timestamp-millis' ? 1000n : 1n;
        return scalar('DATETIME', (v, p) => formatDatetime(BigInt(v as number | bigint) * factor) ?? (() => { throw outOfRange(p, 'DATETIME'); })());
      }
    }
    switch (type) {
      case 'boolean':
        return scalar('BOOLEAN', (v) => (v === true ? 'true' : 'false'));
      case 'int':
      case 'long':
        return scalar('INTEGER', (v) => String(v as number | bigint));
      case 'float':
      case 'double':
        return scalar('FLOAT', (v) => javaDouble(v as number));
      case 'bytes':
        return scalar('BYTES', (v) => (v as Buffer).toString('base64'));
      default:
        return scalar('STRING', (v) => v as string);
    }
  };

  const decimalOf = (o: Record<string, unknown>, path: string): Mapped | undefined => {
    if (o.logicalType !== 'decimal') return undefined;
    const precision = o.precision;
    const scale = o.scale ?? 0;
    if (typeof precision !== 'number' || !Number.isInteger(precision) || precision < 1) return undefined;
    if (typeof scale !== 'number' || !Number.isInteger(scale) || scale < 0 || scale > precision) return undefined;
    let type: FieldType;
    if (scale <= 9 && precision - scale <= 29) type = 'NUMERIC';
    else if (scale <= 38 && precision - scale <= 38) type = 'BIGNUMERIC';
    else throw refuse(`Decimal at ${path} with precision ${precision} and scale ${scale} fits neither NUMERIC nor BIGNUMERIC.`);
    return { type, nullable: false, repeated: false, convert: (v) => formatDecimal(twosComplement(v as Buffer), scale) };
  };

  const root = mapType(schema, undefined, '');
  if (root === 'null' || root.type !== 'RECORD' || root.repeated || root.nullable) throw refuse('The Avro schema of a file must be a record.');
  const convertRoot = root.convert;
  return { fields: root.fields ?? [], toRow: (record) => convertRoot(record, '') as Row };
}

function fieldOf(name: string, m: Mapped): TableField {
  const field: TableField = { name, type: m.type, mode: m.repeated ? 'REPEATED' : m.nullable ? 'NULLABLE' : 'REQUIRED' };
  if (m.fields !== undefined) field.fields = m.fields;
  return field;
}

/** A big-endian two's-complement integer (Avro's decimal encoding). */
function twosComplement(buf: Buffer): bigint {
  if (buf.length === 0) return 0n;
  let n = BigInt(`0x${buf.toString('hex')}`);
  if ((buf[0]! & 0x80) !== 0) n -= 1n << BigInt(buf.length * 8);
  return n;
}
