/**
 * The little SQL the emulator answers (GoogleSQL only):
 *
 *   SELECT COUNT(*) [AS name] FROM `[project.]dataset.table` [WHERE …]
 *   SELECT * FROM `[project.]dataset.table` [WHERE …] [LIMIT n]
 *
 * where WHERE is conditions joined by AND, each `column op value` (op: = != <>
 * < <= > >=) or `column BETWEEN value AND value`, on a top-level scalar
 * column or _PARTITIONTIME / _PARTITIONDATE; a value is a literal (TIMESTAMP
 * '…', DATE '…', DATETIME '…', 'text', a number, TRUE/FALSE) or a named
 * @parameter. Anything else is a 400 `invalidQuery`. A table with
 * requirePartitionFilter refuses a query without a condition on its
 * partitioning column, as BigQuery does.
 */
import { Catalog, partitionsOf } from './catalog.ts';
import { errors } from './errors.ts';
import { NULL_PARTITION, partitionStartMs } from './partitioning.ts';
import { findField, type FieldType, type TableField } from './schema.ts';
import { formatDate, type Cell, type Row } from './values.ts';

type Op = '=' | '!=' | '<' | '<=' | '>' | '>=';

interface Condition {
  column: string;
  op: Op;
  value: Literal;
}

interface Literal {
  kind: 'TIMESTAMP' | 'DATE' | 'DATETIME' | 'STRING' | 'NUMBER' | 'BOOL';
  text: string;
}

export interface QueryPlan {
  projectId: string;
  datasetId: string;
  tableId: string;
  select: { count: true; alias: string } | { count: false };
  where: Condition[];
  limit: number | undefined;
}

const MAX_QUERY_LENGTH = 100_000;

/** Parses `configuration.query` (jobs.insert) or a jobs.query request body. */
export function parseQuery(projectId: string, config: unknown): QueryPlan {
  if (typeof config !== 'object' || config === null) throw errors.invalid('configuration.query: expected an object.');
  const c = config as { query?: unknown; useLegacySql?: unknown; queryParameters?: unknown; defaultDataset?: { datasetId?: unknown; projectId?: unknown } };
  if (typeof c.query !== 'string' || c.query.trim() === '') throw errors.required('Required parameter is missing: query');
  if (c.query.length > MAX_QUERY_LENGTH) throw errors.invalidQuery('The query is too long for the emulator.');
  if (c.useLegacySql === true) throw errors.invalidQuery('Legacy SQL is not supported by the emulator; set useLegacySql to false.');
  const params = new Map<string, Literal>();
  if (Array.isArray(c.queryParameters)) {
    for (const p of c.queryParameters as { name?: unknown; parameterType?: { type?: unknown }; parameterValue?: { value?: unknown } }[]) {
      const type = p.parameterType?.type;
      const value = p.parameterValue?.value;
      if (typeof p.name !== 'string' || typeof type !== 'string' || typeof value !== 'string') throw errors.invalidQuery('The emulator takes named scalar query parameters only.');
      const kind = type === 'TIMESTAMP' || type === 'DATE' || type === 'DATETIME' ? type : type === 'STRING' ? 'STRING' : type === 'BOOL' ? 'BOOL' : 'NUMBER';
      params.set(p.name.toLowerCase(), { kind, text: value });
    }
  }
  const tokens = tokenize(c.query);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const next = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw errors.invalidQuery('Syntax error: Unexpected end of script');
    return t;
  };
  const expect = (word: string): void => {
    const t = next();
    if (t.toUpperCase() !== word) throw errors.invalidQuery(`Syntax error: Expected keyword ${word} but got ${JSON.stringify(t)}`);
  };
  const unsupported = (what: string): Error => errors.invalidQuery(`${what} is not supported by the emulator (see emulators/bigquery/README.md).`);

  expect('SELECT');
  let select: QueryPlan['select'];
  if (peek() === '*') {
    next();
    select = { count: false };
  } else if (peek()?.toUpperCase() === 'COUNT') {
    next();
    expect('(');
    expect('*');
    expect(')');
    let alias = 'f0_';
    if (peek()?.toUpperCase() === 'AS') {
      next();
      alias = identifier(next());
    }
    select = { count: true, alias };
  } else throw unsupported(`SELECT ${peek() ?? ''}`);
  expect('FROM');
  const path = identifier(next()).split('.');
  let ref: { projectId: string; datasetId: string; tableId: string };
  const defaultDataset = typeof c.defaultDataset?.datasetId === 'string' ? c.defaultDataset.datasetId : undefined;
  if (path.length === 3) ref = { projectId: path[0]!, datasetId: path[1]!, tableId: path[2]! };
  else if (path.length === 2) ref = { projectId, datasetId: path[0]!, tableId: path[1]! };
  else if (path.length === 1 && defaultDataset !== undefined) ref = { projectId, datasetId: defaultDataset, tableId: path[0]! };
  else throw errors.invalidQuery(`Table name "${path.join('.')}" missing dataset while no default dataset is set in the request.`);
  const where: Condition[] = [];
  if (peek()?.toUpperCase() === 'WHERE') {
    next();
    for (;;) {
      const column = identifier(next());
      if (column.includes('.')) throw unsupported('A condition on a nested field');
      const opTok = next();
      if (opTok.toUpperCase() === 'BETWEEN') {
        const lo = literal(next, params);
        expect('AND');
        const hi = literal(next, params);
        where.push({ column, op: '>=', value: lo }, { column, op: '<=', value: hi });
      } else {
        const op = opTok === '<>' ? '!=' : opTok;
        if (op !== '=' && op !== '!=' && op !== '<' && op !== '<=' && op !== '>' && op !== '>=') throw unsupported(`Operator ${opTok}`);
        where.push({ column, op, value: literal(next, params) });
      }
      if (peek()?.toUpperCase() !== 'AND') break;
      next();
    }
  }
  let limit: number | undefined;
  if (peek()?.toUpperCase() === 'LIMIT') {
    next();
    const n = next();
    if (!/^\d{1,9}$/.test(n)) throw errors.invalidQuery('LIMIT expects an integer literal.');
    limit = Number(n);
  }
  if (peek() === ';') next();
  if (peek() !== undefined) throw unsupported(`${peek()!.toUpperCase()}`);
  return { ...ref, select, where, limit };
}

/** Runs a plan against the catalog. */
export function runQuery(catalog: Catalog, plan: QueryPlan): { schema: TableField[]; rows: Row[] } {
  const { table } = catalog.getTable(plan.projectId, plan.datasetId, plan.tableId);
  const meta = table.meta;
  const tp = meta.timePartitioning;
  const pseudo = (name: string): boolean => tp !== undefined && tp.field === undefined && (name.toUpperCase() === '_PARTITIONTIME' || name.toUpperCase() === '_PARTITIONDATE');
  const partitionColumn = tp?.field;
  if (meta.requirePartitionFilter === true) {
    const filtered = plan.where.some((c) => (partitionColumn !== undefined ? c.column.toLowerCase() === partitionColumn.toLowerCase() : pseudo(c.column)));
    if (!filtered) {
      throw errors.invalidQuery(`Cannot query over table '${meta.datasetId}.${meta.tableId}' without a filter over column(s) '${partitionColumn ?? '_PARTITION_LOAD_TIME, _PARTITIONDATE, _PARTITIONTIME'}' that can be used for partition elimination`);
    }
  }
  const checks = plan.where.map((c) => {
    if (pseudo(c.column)) {
      const type: FieldType = c.column.toUpperCase() === '_PARTITIONDATE' ? 'DATE' : 'TIMESTAMP';
      const rhs = coerce(c.value, type, c.column);
      return { partitionLevel: true, test: (pid: string): boolean => compare(pseudoValue(pid, type), rhs, type, c.op) };
    }
    const field = findField(meta.schema, c.column);
    if (field === undefined) throw errors.invalidQuery(`Unrecognized name: ${c.column}`);
    if (field.mode === 'REPEATED' || field.type === 'RECORD') throw errors.invalidQuery(`The emulator compares scalar columns only; ${field.name} is ${field.mode === 'REPEATED' ? 'REPEATED' : 'RECORD'}.`);
    const rhs = coerce(c.value, field.type, field.name);
    return { partitionLevel: false, test: (row: Row): boolean => compare(Object.hasOwn(row, field.name) ? (row[field.name] as Cell) : null, rhs, field.type, c.op) };
  });
  const rowChecks = checks.filter((c) => !c.partitionLevel).map((c) => c.test as (r: Row) => boolean);
  const partChecks = checks.filter((c) => c.partitionLevel).map((c) => c.test as (p: string) => boolean);
  const rows: Row[] = [];
  let count = 0;
  for (const p of partitionsOf(table, undefined)) {
    if (!partChecks.every((t) => t(p.id))) continue;
    for (const r of p.rows) {
      if (!rowChecks.every((t) => t(r))) continue;
      count++;
      if (!plan.select.count && (plan.limit === undefined || rows.length < plan.limit)) rows.push(r);
    }
  }
  if (plan.select.count) {
    const row = Object.create(null) as Row;
    row[plan.select.alias] = String(count);
    return { schema: [{ name: plan.select.alias, type: 'INTEGER', mode: 'NULLABLE' }], rows: [row] };
  }
  return { schema: meta.schema, rows };
}

function pseudoValue(pid: string, type: FieldType): Cell {
  if (pid === NULL_PARTITION || pid === '__UNPARTITIONED__') return null;
  const ms = partitionStartMs(pid) ?? 0;
  return type === 'DATE' ? (formatDate(Math.floor(ms / 86_400_000)) ?? null) : String(BigInt(ms) * 1000n);
}

type Comparable = { kind: 'big'; v: bigint } | { kind: 'num'; v: number } | { kind: 'str'; v: string };

/** A literal as a value of the column's type; 400 when it cannot be one. */
function coerce(lit: Literal, type: FieldType, column: string): Comparable {
  const bad = (): Error => errors.invalidQuery(`No matching signature for operator between ${type} (column ${column}) and ${lit.kind} ${JSON.stringify(lit.text)}.`);
  switch (type) {
    case 'TIMESTAMP': {
      if (lit.kind !== 'TIMESTAMP' && lit.kind !== 'STRING' && lit.kind !== 'DATE') throw bad();
      const micros = parseTimestamp(lit.text);
      if (micros === undefined) throw errors.invalidQuery(`Invalid TIMESTAMP literal ${JSON.stringify(lit.text)}.`);
      return { kind: 'big', v: micros };
    }
    case 'DATE':
    case 'DATETIME': {
      if (lit.kind !== type && lit.kind !== 'STRING' && !(type === 'DATETIME' && lit.kind === 'DATE')) throw bad();
      let text = type === 'DATETIME' ? lit.text.trim().replace(' ', 'T') : lit.text.trim();
      if (type === 'DATETIME' && text.length === 10) text += 'T00:00:00';
      if (!(type === 'DATE' ? /^\d{4}-\d{2}-\d{2}$/ : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/).test(text)) {
        throw errors.invalidQuery(`Invalid ${type} literal ${JSON.stringify(lit.text)}.`);
      }
      // Stored DATETIMEs carry 6 fraction digits, or none when it is zero.
      const [whole, frac] = text.split('.') as [string, string | undefined];
      const micros = (frac ?? '').padEnd(6, '0');
      return { kind: 'str', v: /^0+$/.test(micros) ? whole : `${whole}.${micros}` };
    }
    case 'INTEGER':
      if (lit.kind !== 'NUMBER' || !/^-?\d+$/.test(lit.text)) throw bad();
      return { kind: 'big', v: BigInt(lit.text) };
    case 'FLOAT':
    case 'NUMERIC':
    case 'BIGNUMERIC':
      if (lit.kind !== 'NUMBER') throw bad();
      return { kind: 'num', v: Number(lit.text) };
    case 'BOOLEAN':
      if (lit.kind !== 'BOOL') throw bad();
      return { kind: 'str', v: lit.text.toLowerCase() };
    case 'STRING':
      if (lit.kind !== 'STRING') throw bad();
      return { kind: 'str', v: lit.text };
    default:
      throw errors.invalidQuery(`The emulator does not compare ${type} columns (${column}).`);
  }
}

function compare(cell: Cell, rhs: Comparable, type: FieldType, op: Op): boolean {
  if (cell === null || typeof cell !== 'string') return false; // NULL compares as unknown
  let d: number;
  if (rhs.kind === 'big') {
    const l = BigInt(cell);
    d = l === rhs.v ? 0 : l < rhs.v ? -1 : 1;
  } else if (rhs.kind === 'num') {
    const l = Number(cell);
    d = l === rhs.v ? 0 : l < rhs.v ? -1 : 1;
  } else {
    d = cell === rhs.v ? 0 : cell < rhs.v ? -1 : 1;
  }
  switch (op) {
    case '=':
      return d === 0;
    case '!=':
      return d !== 0;
    case '<':
      return d < 0;
    case '<=':
      return d <= 0;
    case '>':
      return d > 0;
    case '>=':
      return d >= 0;
  }
}

/** `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|UTC|±HH[:MM]]` → microseconds since the epoch (UTC by default). */
export function parseTimestamp(text: string): bigint | undefined {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  const check = new Date(ms);
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1) return undefined;
  let offsetMin = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z' && zone.toUpperCase() !== 'UTC') {
    const zm = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(zone)!;
    offsetMin = (zm[1] === '-' ? -1 : 1) * (Number(zm[2]) * 60 + Number(zm[3] ?? 0));
  }
  return (BigInt(ms) - BigInt(offsetMin) * 60_000n) * 1000n + BigInt(frac.padEnd(6, '0') || '0');
}

function literal(next: () => string, params: ReadonlyMap<string, Literal>): Literal {
  const t = next();
  const upper = t.toUpperCase();
  if (upper === 'TIMESTAMP' || upper === 'DATE' || upper === 'DATETIME') {
    const s = next();
    if (!s.startsWith("'")) throw errors.invalidQuery(`Syntax error: ${upper} expects a string literal.`);
    return { kind: upper, text: unquote(s) };
  }
  if (t.startsWith("'")) return { kind: 'STRING', text: unquote(t) };
  if (upper === 'TRUE' || upper === 'FALSE') return { kind: 'BOOL', text: upper };
  if (/^-?\d+(\.\d+)?$/.test(t)) return { kind: 'NUMBER', text: t };
  if (t.startsWith('@')) {
    const p = params.get(t.slice(1).toLowerCase());
    if (p === undefined) throw errors.invalidQuery(`Query parameter '${t.slice(1)}' not found`);
    return p;
  }
  throw errors.invalidQuery(`Syntax error: Unexpected ${JSON.stringify(t)}`);
}

function unquote(s: string): string {
  return s.slice(1, -1).replace(/\\'/g, "'").replace(/\\\\/g, '\\');
}

/** `a.b`, `` `p.d.t` `` or `` `p`.`d`.`t` `` → dotted name. */
function identifier(t: string): string {
  if (!/^(`[^`]+`|[A-Za-z_][A-Za-z0-9_-]*)(\.(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*))*$/.test(t)) throw errors.invalidQuery(`Syntax error: Unexpected ${JSON.stringify(t)}`);
  return t.replace(/`/g, '');
}

function tokenize(sql: string): string[] {
  const out: string[] = [];
  const re = /\s+|--[^\n]*|(`[^`]*`(?:\.`[^`]*`|\.[A-Za-z_][A-Za-z0-9_]*)*|[A-Za-z_][A-Za-z0-9_-]*(?:\.(?:`[^`]*`|[A-Za-z_][A-Za-z0-9_]*))*|'(?:[^'\\]|\\.)*'|@[A-Za-z_][A-Za-z0-9_]*|-?\d+(?:\.\d+)?|<=|>=|<>|!=|[=<>(),*;])/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < sql.length) {
    re.lastIndex = pos;
    m = re.exec(sql);
    if (m === null) throw errors.invalidQuery(`Syntax error: Illegal input character ${JSON.stringify(sql[pos])} at [1:${pos + 1}]`);
    if (m[1] !== undefined) out.push(m[1]);
    pos = re.lastIndex;
    if (out.length > 10_000) throw errors.invalidQuery('The query is too long for the emulator.');
  }
  return out;
}

