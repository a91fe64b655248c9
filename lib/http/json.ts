/**
 * JSON request bodies: strict UTF-8 (decoding would silently turn invalid bytes
 * into U+FFFD, altering what was sent) and a 400 naming what is wrong.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.ts';
import { bodyOf, requireMediaType } from './body.ts';

export const JSON_MEDIA_TYPE = 'application/json';

/** Parses a JSON body: BODY_INVALID naming the first invalid UTF-8 byte or the parse error. */
export function parseJsonBody(body: Buffer): unknown {
  if (!isUtf8(body)) throw new AppError('BODY_INVALID', { message: `body: not valid UTF-8 (first invalid byte at offset ${firstInvalidUtf8(body)})` });
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new AppError('BODY_INVALID', { message: `body: not valid JSON (${(err as Error).message.slice(0, 200)})` });
  }
}

/**
 * The JSON body of `req`: 415 unless it is `application/json`, 413 past
 * `limit` bytes, 400 if not JSON; undefined if the client went away.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  requireMediaType(req, [JSON_MEDIA_TYPE]);
  const body = await bodyOf(req, limit);
  return body === undefined ? undefined : parseJsonBody(body);
}

/** Offset of the first byte that does not start a valid UTF-8 character (for the reason of a refused body). */
function firstInvalidUtf8(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const extra = (b & 0xe0) === 0xc0 ? 1 : (b & 0xf0) === 0xe0 ? 2 : (b & 0xf8) === 0xf0 ? 3 : 0;
    if (extra === 0 || i + extra >= buf.length) return i;
    let cp = b & (0x3f >> extra);
    for (let k = 1; k <= extra; k++) {
      const c = buf[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    const min = extra === 1 ? 0x80 : extra === 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += extra + 1;
  }
  return i;
}
