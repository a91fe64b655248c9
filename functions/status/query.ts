/**
 * Query parameters of the status API and pages, validated once: a bad one is
 * a 400 `BAD_REQUEST` naming the parameter and what was expected.
 */
import { AppError } from '../../lib/errors.ts';
import { eventTypeNamePattern } from '../../lib/names.ts';
import { periodOf } from '../../lib/partitions.ts';
import type { Priority } from '../../lib/registry/types.ts';

export type Query = Record<string, unknown>;

const priorities: readonly Priority[] = ['high', 'normal', 'low'];

function bad(message: string, parameter: string): AppError {
  return new AppError('BAD_REQUEST', { message, details: { parameter } });
}

/** Refuses parameters not in `allowed` and repeated ones; returns each given value. */
export function singleValues(query: Query, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(query)) {
    if (!allowed.includes(name)) throw bad(`unknown query parameter '${name}' (expected ${allowed.join(', ')})`, name);
    if (typeof value !== 'string') throw bad(`query parameter '${name}' must be given once, as text`, name);
    out.set(name, value);
  }
  return out;
}

/** An event type name, validated against the naming rule (not yet against the registry). */
export function eventTypeParam(value: string | undefined, parameter = 'type'): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!eventTypeNamePattern.test(value)) throw bad(`'${parameter}' is not an event type name: expected ${eventTypeNamePattern.source}`, parameter);
  return value;
}

/**
 * A time bound: a period key (`YYYY-MM-DDTHH`, `YYYY-MM-DD`) or an ISO-8601
 * UTC timestamp (`2026-11-30T16:20:00Z`). Returns epoch ms.
 */
export function timeParam(value: string | undefined, parameter: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  let ms = NaN;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) ms = Date.parse(`${value}T00:00:00.000Z`);
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(value)) ms = Date.parse(`${value}:00:00.000Z`);
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) ms = Date.parse(value);
  if (Number.isNaN(ms)) {
    throw bad(`'${parameter}' is not a time: expected YYYY-MM-DDTHH, YYYY-MM-DD or an ISO-8601 timestamp with a zone, got '${value.slice(0, 40)}'`, parameter);
  }
  // A key that Date.parse rolled over (hour 24, 31 February) is not a period.
  if (!/T\d{2}:/.test(value) && periodOf(ms, value.length === 10 ? 'daily' : 'hourly').key !== value) {
    throw bad(`'${parameter}' is not a valid period: '${value}'`, parameter);
  }
  return ms;
}

export function priorityParam(value: string | undefined): Priority | undefined {
  if (value === undefined || value === '') return undefined;
  const p = priorities.find((x) => x === value);
  if (p === undefined) throw bad(`'priority' must be one of ${priorities.join(', ')}`, 'priority');
  return p;
}

/** Free text matched exactly (owner); bounded. */
export function textParam(value: string | undefined, parameter: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (value.length > 200) throw bad(`'${parameter}' is longer than 200 characters`, parameter);
  return value;
}

export function intParam(value: string | undefined, parameter: string, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,6}$/.test(value) || Number(value) < min || Number(value) > max) throw bad(`'${parameter}' must be a whole number from ${min} to ${max}`, parameter);
  return Number(value);
}

/** `GET /v1/partitions` parameters. */
export interface PartitionsQuery {
  type: string | undefined;
  fromMs: number | undefined;
  toMs: number | undefined;
  owner: string | undefined;
  priority: Priority | undefined;
}

export function parsePartitionsQuery(query: Query): PartitionsQuery {
  const v = singleValues(query, ['type', 'from', 'to', 'owner', 'priority']);
  const q: PartitionsQuery = {
    type: eventTypeParam(v.get('type')),
    fromMs: timeParam(v.get('from'), 'from'),
    toMs: timeParam(v.get('to'), 'to'),
    owner: textParam(v.get('owner'), 'owner'),
    priority: priorityParam(v.get('priority')),
  };
  if (q.fromMs !== undefined && q.toMs !== undefined && q.fromMs > q.toMs) throw bad("'from' is after 'to'", 'from');
  return q;
}
