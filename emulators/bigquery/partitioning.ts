/**
 * Time partitioning: the partition id of a row (`YYYYMMDDHH` for HOUR,
 * `YYYYMMDD` for DAY, `YYYYMM`, `YYYY`; `__NULL__` for a NULL partitioning
 * column), table ids with a partition decorator (`events$2024010112`), and
 * partition expiration.
 */
import { errors } from './errors.ts';
import type { TableField } from './schema.ts';
import type { Cell } from './values.ts';

export type PartitionType = 'HOUR' | 'DAY' | 'MONTH' | 'YEAR';

export interface TimePartitioning {
  type: PartitionType;
  /** The partitioning column; ingestion time when absent. */
  field?: string;
  expirationMs?: string;
}

/** The partition of an unpartitioned table. */
export const WHOLE_TABLE = '';
export const NULL_PARTITION = '__NULL__';
const ID_LENGTH: Record<PartitionType, number> = { HOUR: 10, DAY: 8, MONTH: 6, YEAR: 4 };

/** Parses and checks `timePartitioning` from a request against the table's fields. */
export function parseTimePartitioning(value: unknown, fields: readonly TableField[]): TimePartitioning {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.invalid('timePartitioning: expected an object.');
  const v = value as Record<string, unknown>;
  const type = v.type ?? 'DAY';
  if (type !== 'HOUR' && type !== 'DAY' && type !== 'MONTH' && type !== 'YEAR') throw errors.invalid(`timePartitioning.type: invalid value ${JSON.stringify(type)} (expected HOUR, DAY, MONTH or YEAR).`);
  const tp: TimePartitioning = { type };
  if (v.field !== undefined && v.field !== null) {
    if (typeof v.field !== 'string') throw errors.invalid('timePartitioning.field: expected a column name.');
    const col = fields.find((f) => f.name.toLowerCase() === (v.field as string).toLowerCase());
    if (col === undefined) throw errors.invalid(`The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: missing (field ${v.field}).`);
    if (col.type !== 'TIMESTAMP' && col.type !== 'DATE' && col.type !== 'DATETIME') {
      throw errors.invalid(`The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: ${col.type}.`);
    }
    if (col.mode === 'REPEATED') throw errors.invalid(`The field specified for time partitioning cannot be REPEATED (field ${col.name}).`);
    if (col.type === 'DATE' && type === 'HOUR') throw errors.invalid(`Partitioning by HOUR is not supported on DATE column ${col.name}.`);
    tp.field = col.name;
  }
  if (v.expirationMs !== undefined && v.expirationMs !== null) {
    const ms = String(v.expirationMs);
    if (!/^\d{1,18}$/.test(ms) || Number(ms) <= 0) throw errors.invalid('timePartitioning.expirationMs: expected a positive integer (milliseconds).');
    tp.expirationMs = ms;
  }
  return tp;
}

/** `table$decorator` split; the decorator must suit the table's partitioning. */
export interface TableAddress {
  tableId: string;
  partition: string | undefined;
}

export function splitDecorator(raw: string): TableAddress {
  const i = raw.indexOf('$');
  if (i === -1) return { tableId: raw, partition: undefined };
  return { tableId: raw.slice(0, i), partition: raw.slice(i + 1) };
}

/** Checks a decorator against a table's partitioning; throws a 400 `invalid` if it does not name one of its partitions. */
export function checkDecorator(tableName: string, partition: string, tp: TimePartitioning | undefined): void {
  if (tp === undefined) throw errors.invalid(`Cannot read partition information from a table that is not partitioned: ${tableName}$${partition}`);
  if (partition === NULL_PARTITION || partition === '__UNPARTITIONED__') return;
  if (!new RegExp(`^\\d{${ID_LENGTH[tp.type]}}$`).test(partition) || partitionStartMs(partition) === undefined) {
    throw errors.invalid(`Invalid partition decorator $${partition} for table ${tableName} partitioned by ${tp.type} (expected ${'YYYYMMDDHH'.slice(0, ID_LENGTH[tp.type])}).`);
  }
}

/** The id of the `tp` partition holding an instant (milliseconds since the epoch). */
export function partitionOfMs(ms: number, tp: TimePartitioning): string {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:...
  return (iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13)).slice(0, ID_LENGTH[tp.type]);
}

/** The partition id of a partitioning-column cell (TIMESTAMP micros, DATE or DATETIME text). */
export function partitionOfCell(cell: Cell | undefined, column: TableField, tp: TimePartitioning): string {
  if (cell === null || cell === undefined || typeof cell !== 'string') return NULL_PARTITION;
  if (column.type === 'TIMESTAMP') {
    const micros = BigInt(cell);
    const ms = Number(micros / 1000n) - (micros % 1000n < 0n ? 1 : 0);
    return partitionOfMs(ms, tp);
  }
  // DATE `YYYY-MM-DD` or DATETIME `YYYY-MM-DDTHH:…`
  return (cell.slice(0, 4) + cell.slice(5, 7) + cell.slice(8, 10) + (cell.length > 10 ? cell.slice(11, 13) : '00')).slice(0, ID_LENGTH[tp.type]);
}

/** The start of a partition in milliseconds since the epoch; undefined for a malformed id. */
export function partitionStartMs(id: string): number | undefined {
  const y = Number(id.slice(0, 4));
  const m = id.length >= 6 ? Number(id.slice(4, 6)) : 1;
  const d = id.length >= 8 ? Number(id.slice(6, 8)) : 1;
  const h = id.length >= 10 ? Number(id.slice(8, 10)) : 0;
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > 31 || h > 23) return undefined;
  const ms = Date.UTC(y, m - 1, d, h);
  const back = new Date(ms);
  if (back.getUTCDate() !== d || back.getUTCMonth() !== m - 1) return undefined;
  return ms;
}

/** The end (exclusive) of a partition in milliseconds. */
export function partitionEndMs(id: string, tp: TimePartitioning): number {
  const start = partitionStartMs(id) ?? 0;
  const s = new Date(start);
  switch (tp.type) {
    case 'HOUR':
      return start + 3_600_000;
    case 'DAY':
      return start + 86_400_000;
    case 'MONTH':
      return Date.UTC(s.getUTCFullYear(), s.getUTCMonth() + 1, 1);
    case 'YEAR':
      return Date.UTC(s.getUTCFullYear() + 1, 0, 1);
  }
}

/** True when partition `id` has expired at `nowMs` (its end plus expirationMs has passed). */
export function partitionExpired(id: string, tp: TimePartitioning, nowMs: number): boolean {
  if (tp.expirationMs === undefined || id === NULL_PARTITION || id === '__UNPARTITIONED__' || id === WHOLE_TABLE) return false;
  return partitionEndMs(id, tp) + Number(tp.expirationMs) <= nowMs;
}
