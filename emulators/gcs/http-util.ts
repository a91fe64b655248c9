/** Small helpers over node:http for the emulator's handlers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors } from './gcs-errors.ts';

export const JSON_TYPE = 'application/json; charset=utf-8';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, 'Content-Type': JSON_TYPE, 'Content-Length': data.length });
  res.end(data);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

/** Reads a small body whole (JSON requests); refuses more than `limit` bytes. */
export async function readSmallBody(body: AsyncIterable<Buffer>, limit = 8 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw errors.invalid('Request body too large.');
    chunks.push(c);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Parses a JSON body; an empty body is `{}`. */
export async function readJson(body: AsyncIterable<Buffer>): Promise<Record<string, unknown>> {
  const buf = await readSmallBody(body);
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
