/**
 * The `LookupResponse` JSON, spliced from each key's precomputed JSON: on the hot
 * path this replaces a JSON.stringify of the whole response (same bytes).
 */
import type { UserResult } from './keychains.ts';

/** One user's element of `users` in the lookup response. */
export function userJson(r: UserResult): string {
  let out = `{"userId":${JSON.stringify(r.userId)},"status":"${r.status}"`;
  if (r.status === 'found') {
    out += ',"categories":{';
    let first = true;
    for (const [name, c] of r.categories) {
      out += `${first ? '' : ','}${JSON.stringify(name)}:${c.status === 'found' ? c.key.json : `{"status":"${c.status}"}`}`;
      first = false;
    }
    out += '}';
  }
  return `${out}}`;
}

/** The start of a lookup response for `context`, up to the first user. */
export function lookupPrefix(context: string): string {
  return `{"context":${JSON.stringify(context)},"users":[`;
}

/** The whole lookup response. */
export function lookupJson(context: string, results: readonly UserResult[]): string {
  let out = lookupPrefix(context);
  for (let i = 0; i < results.length; i++) out += (i > 0 ? ',' : '') + userJson(results[i]!);
  return `${out}]}`;
}

const COMMA = 0x2c;
const SUFFIX = Buffer.from(']}');

/** The response bytes from the context's prefix and each user's cached element (one copy each, no re-encoding). */
export function assembleLookup(prefix: Buffer, users: readonly Buffer[]): Buffer {
  let size = prefix.length + SUFFIX.length + Math.max(0, users.length - 1);
  for (let i = 0; i < users.length; i++) size += users[i]!.length;
  const out = Buffer.allocUnsafe(size);
  // TypedArray#set: Buffer#copy's argument checks cost more than these short copies.
  out.set(prefix, 0);
  let at = prefix.length;
  for (let i = 0; i < users.length; i++) {
    const user = users[i]!;
    if (i > 0) out[at++] = COMMA;
    out.set(user, at);
    at += user.length;
  }
  out.set(SUFFIX, at);
  return out;
}
