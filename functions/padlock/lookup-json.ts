/**
 * The `LookupResponse` JSON, spliced from each user's element (which the key
 * service keeps with its cached keychain: see `renderUser`): on the hot path
 * this replaces a JSON.stringify of the whole response. It is pure ASCII
 * (characters beyond it are \u-escaped), so its length is its byte count and it
 * is written to the socket as latin1, a plain copy.
 */
import type { UserResult } from './keychains.ts';

/** One user's element of `users` in the lookup response. */
export function userJson(r: UserResult): string {
  let out = `{"userId":${asciiJson(r.userId)},"status":"${r.status}"`;
  if (r.status === 'found') {
    out += ',"categories":{';
    let first = true;
    for (const [name, c] of r.categories) {
      out += `${first ? '' : ','}${asciiJson(name)}:${c.status === 'found' ? `{"status":"found","keyId":${c.key.keyId},"key":"${c.key.keyBase64}"}` : `{"status":"${c.status}"}`}`;
      first = false;
    }
    out += '}';
  }
  return `${out}}`;
}

/** The start of a lookup response for `context`, up to the first user. */
export function lookupPrefix(context: string): string {
  return `{"context":${asciiJson(context)},"users":[`;
}

/** JSON.stringify of a string, with every character beyond ASCII written as `\uXXXX` (same value once parsed). */
export function asciiJson(text: string): string {
  return JSON.stringify(text).replace(NOT_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const NOT_ASCII = /[\u0080-\uffff]/g;

/** The whole lookup response. */
export function lookupJson(context: string, results: readonly UserResult[]): string {
  return assembleLookup(lookupPrefix(context), results.map(userJson));
}

/** The response from the context's prefix and each user's cached element. */
export function assembleLookup(prefix: string, users: readonly string[]): string {
  let out = prefix;
  for (let i = 0; i < users.length; i++) out += i > 0 ? ',' + users[i]! : users[i]!;
  return out + ']}';
}
