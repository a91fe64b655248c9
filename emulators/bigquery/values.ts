/**
 * Stored cell values and their BigQuery forms. A cell holds what
 * tabledata.list answers as `v`: every scalar as a string in BigQuery's
 * canonical text (INTEGER as exact decimal, BYTES as base64, TIMESTAMP as
 * microseconds since the epoch until it is formatted), RECORDs as objects by
 * field name, REPEATED as arrays.
 */
import type { TableField } from './schema.ts';

export type Cell = null | string | Cell[] | CellRecord;
export interface CellRecord {
  [name: string]: Cell;
}
/** A row: top-level field name → cell (a null-prototype object, so any field name is own data). */
export type Row = CellRecord;

/**
 * Records inherit from an empty null-prototype object: no Object.prototype
 * names (`constructor`, `__proto__`) are visible through them, yet V8 keeps
 * them in fast mode (`Object.create(null)` objects start as dictionaries).
 */
const RecordBase = function (this: CellRecord) {} as unknown as new () => CellRecord;
RecordBase.prototype = Object.create(null) as object;

export function newRecord(): CellRecord {
  return new RecordBase();
}

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds: BigQuery's TIMESTAMP range. */
export const MIN_TIMESTAMP_MICROS = -62135596800000000n;
export const MAX_TIMESTAMP_MICROS = 253402300799999999n;
const MIN_DATE_DAYS = -719162;
const MAX_DATE_DAYS = 2932896;
const MICROS_PER_DAY = 86_400_000_000n;

/** Days since the epoch → `YYYY-MM-DD`, or undefined outside 0001-01-01..9999-12-31. */
export function formatDate(days: number): string | undefined {
  if (!Number.isInteger(days) || days < MIN_DATE_DAYS || days > MAX_DATE_DAYS) return undefined;
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/** Microseconds of the day → `HH:MM:SS[.ffffff]`, or undefined outside one day. */
export function formatTime(micros: bigint): string | undefined {
  if (micros < 0n || micros >= MICROS_PER_DAY) return undefined;
  const secs = Number(micros / 1_000_000n);
  const frac = Number(micros % 1_000_000n);
  const hh = String(Math.floor(secs / 3600)).padStart(2, '0');
  const mm = String(Math.floor((secs % 3600) / 60)).padStart(2, '0');
  const ss = String(secs % 60).padStart(2, '0');
  return `${hh}:${mm}:${ss}${frac === 0 ? '' : `.${String(frac).padStart(6, '0')}`}`;
}

/** Microseconds since the epoch (no zone) → `YYYY-MM-DDTHH:MM:SS[.ffffff]`, or undefined out of range. */
export function formatDatetime(micros: bigint): string | undefined {
  if (micros < MIN_TIMESTAMP_MICROS || micros > MAX_TIMESTAMP_MICROS) return undefined;
  let days = micros / MICROS_PER_DAY;
  let rest = micros % MICROS_PER_DAY;
  if (rest < 0n) {
    rest += MICROS_PER_DAY;
    days -= 1n;
  }
  return `${formatDate(Number(days))}T${formatTime(rest)}`;
}

/** A TIMESTAMP cell (microseconds) → ISO 8601 in UTC with microseconds. */
export function timestampIso(micros: bigint): string {
  const dt = formatDatetime(micros) ?? '';
  return `${dt.includes('.') ? dt : `${dt}.000000`}Z`;
}

/** A double as Java's Double.toString writes it (BigQuery's FLOAT text): `1.0`, `0.1`, `1.0E10`. */
export function javaDouble(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  if (abs >= 1e-3 && abs < 1e7) {
    const s = String(x);
    return s.includes('.') ? s : `${s}.0`;
  }
  const [mantissa, exp] = x.toExponential().split('e') as [string, string];
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${exp.replace('+', '')}`;
}

/** An unscaled decimal with `scale` digits after the point, trailing zeros dropped (BigQuery's NUMERIC text). */
export function formatDecimal(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac === '' ? '' : `.${frac}`}`;
}

/**
 * BigQuery's logical size of a cell of `field` (what numBytes adds up): 8
 * bytes for INTEGER, FLOAT, TIMESTAMP, DATE, TIME and DATETIME, 1 for
 * BOOLEAN, 16/32 for NUMERIC/BIGNUMERIC, 2 + UTF-8 length for STRING and
 * JSON, 2 + length for BYTES, the sum of the parts for RECORD and REPEATED,
 * 0 for NULL.
 */
export function cellBytes(field: TableField, cell: Cell | undefined): number {
  if (cell === null || cell === undefined) return 0;
  if (Array.isArray(cell)) {
    const one: TableField = { ...field, mode: 'NULLABLE' };
    let n = 0;
    for (const c of cell) n += cellBytes(one, c);
    return n;
  }
  if (typeof cell !== 'string') {
    let n = 0;
    for (const f of field.fields ?? []) n += cellBytes(f, cell[f.name]);
    return n;
  }
  switch (field.type) {
    case 'BOOLEAN':
      return 1;
    case 'NUMERIC':
      return 16;
    case 'BIGNUMERIC':
      return 32;
    case 'STRING':
    case 'JSON':
    case 'GEOGRAPHY':
      return 2 + Buffer.byteLength(cell, 'utf8');
    case 'BYTES':
      return 2 + Buffer.byteLength(cell, 'base64');
    default:
      return 8;
  }
}

/** The logical size of a row under `fields`. */
export function rowBytes(fields: readonly TableField[], row: Row): number {
  let n = 0;
  for (const f of fields) n += cellBytes(f, row[f.name]);
  return n;
}
