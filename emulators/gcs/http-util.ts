/** Small helpers for the emulator's handlers, over the shared HTTP toolkit (lib/http). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectBody, sendJson as sendJsonWith } from '../../lib/http/index.ts';
import { errors } from './gcs-errors.ts';

export { sendEmpty } from '../../lib/http/index.ts';

export const JSON_TYPE = 'application/json; charset=utf-8';

/** JSON as Cloud Storage and BigQuery send it (`charset=utf-8`). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonWith(res, status, body, { ...headers, 'content-type': JSON_TYPE });
}

/** Largest JSON request body (metadata, not object data). */
const JSON_BODY_LIMIT = 8 * 1024 * 1024;

/** Parses a JSON body (413 past JSON_BODY_LIMIT); an empty body is `{}`. */
export async function readJson(body: AsyncIterable<Buffer>): Promise<Record<string, unknown>> {
  const buf = await collectBody(body, JSON_BODY_LIMIT);
  if (buf.length === 0) return {};
  try {
    const v: unknown = JSON.parse(buf.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw errors.invalid('Request body is not a JSON object.');
}

/** Consumes what is left of a request so the connection can be reused. */
export async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  try {
    for await (const _ of req) {
      // discard
    }
  } catch {
    // the client went away; nothing to answer
  }
}

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a single `Range: bytes=…` header against an object size: a range,
 * `undefined` for the whole object (no or unparseable header, as GCS ignores
 * those), or `'unsatisfiable'`.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined | 'unsatisfiable' {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return size === 0 ? undefined : { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}

/** A query parameter as a non-negative integer, or undefined. */
export function intParam(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw errors.invalid(`Invalid value for ${name}: ${v}`);
  return Number(v);
}

/** A query parameter as a generation (decimal string), or undefined. */
export function generationParam(query: URLSearchParams, name = 'generation'): string | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw errors.invalid(`Invalid value for ${name}: ${v}`);
  return BigInt(v).toString();
}
