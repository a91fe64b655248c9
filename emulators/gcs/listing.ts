/**
 * Object listing as the JSON API does it: names in lexicographic (byte)
 * order, `prefix`, `delimiter` (common prefixes counted once, in `prefixes`),
 * `startOffset` (inclusive), `endOffset` (exclusive), `maxResults` over items
 * and prefixes together, and an opaque `pageToken`.
 */
import { errors } from './gcs-errors.ts';

export interface ListQuery {
  prefix?: string;
  delimiter?: string;
  startOffset?: string;
  endOffset?: string;
  maxResults?: number;
  pageToken?: string;
  includeTrailingDelimiter?: boolean;
}

export interface ListPage {
  names: string[];
  prefixes: string[];
  nextPageToken?: string;
}

/** GCS's default and cap for `maxResults`. */
export const MAX_LIST_RESULTS = 1000;

interface Cursor {
  /** Last key returned: an object name, or a prefix whose names are all skipped. */
  after: string;
  prefix: boolean;
}

function encodeToken(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeToken(token: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Cursor;
    if (typeof c.after === 'string' && typeof c.prefix === 'boolean') return c;
  } catch {
    // fall through
  }
  throw errors.invalid('Invalid page token.');
}

/** Byte-order comparison of UTF-8 names (GCS orders by bytes, not UTF-16 units). */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order equals UTF-8 byte order except around surrogates.
    if (x < 0xd800 && y < 0xd800) return x - y;
    return Buffer.compare(Buffer.from(a.slice(i)), Buffer.from(b.slice(i)));
  }
  return a.length - b.length;
}

/** First index in `sorted` whose name is >= `key` (byte order). */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(sorted[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One page of `sorted` (names in byte order) for `q`. */
export function listPage(sorted: readonly string[], q: ListQuery): ListPage {
  const prefix = q.prefix ?? '';
  const delimiter = q.delimiter ?? '';
  const max = Math.min(Math.max(q.maxResults ?? MAX_LIST_RESULTS, 1), MAX_LIST_RESULTS);
  const cursor = q.pageToken === undefined || q.pageToken === '' ? undefined : decodeToken(q.pageToken);

  let from = prefix;
  if (q.startOffset !== undefined && compareNames(q.startOffset, from) > 0) from = q.startOffset;
  let i = lowerBound(sorted, from);
  if (cursor !== undefined) i = Math.max(i, lowerBound(sorted, cursor.after));

  const names: string[] = [];
  const prefixes: string[] = [];
  let last: Cursor | undefined;
  let count = 0;
  for (; i < sorted.length; i++) {
    const name = sorted[i]!;
    if (!name.startsWith(prefix)) break;
    if (q.endOffset !== undefined && compareNames(name, q.endOffset) >= 0) break;
    if (cursor !== undefined) {
      if (cursor.prefix ? name.startsWith(cursor.after) : name === cursor.after) continue;
    }
    const at = delimiter === '' ? -1 : name.indexOf(delimiter, prefix.length);
    const p = at === -1 ? undefined : name.slice(0, at + delimiter.length);
    if (p !== undefined && last?.prefix === true && last.after === p) {
      if (q.includeTrailingDelimiter === true && name === p) names.push(name);
      continue;
    }
    if (count >= max) {
      return { names, prefixes, nextPageToken: last === undefined ? undefined : encodeToken(last) };
    }
    if (p !== undefined) {
      prefixes.push(p);
      count++;
      last = { after: p, prefix: true };
      if (q.includeTrailingDelimiter === true && name === p) names.push(name);
      continue;
    }
    names.push(name);
    count++;
    last = { after: name, prefix: false };
  }
  return { names, prefixes };
}
