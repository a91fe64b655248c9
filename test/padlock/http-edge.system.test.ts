/**
 * Padlock's HTTP edge on the shared toolkit (lib/http): oversize bodies get a
 * 413 the client can read (no reset), and bodies that are not UTF-8 are
 * refused rather than decoded into a different user id.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawJson, rawRequest } from '../support/raw-request.ts';
import { silentLogger } from '../../lib/logger.ts';
import { LOOKUP_PATH, authorizationHeader } from '../../lib/padlock-client/index.ts';
import { loadConfig } from '../../functions/padlock/config.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';

const SECRET = 'http-test-secret-0123456789abcdef';
/** Padlock's body limit (config.ts default). */
const MAX_BODY = 1 << 20;

describe('padlock HTTP edge', () => {
  let padlock: RunningPadlock;
  let port: number;

  beforeAll(async () => {
    padlock = await startPadlock(
      loadConfig({
        PADLOCK_PORT: '0',
        PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', SECRET)]),
        PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'padlock-http-')),
      }),
      { logger: silentLogger },
    );
    port = Number(new URL(padlock.url).port);
  });
  afterAll(async () => {
    await padlock?.close();
  });

  it.each([
    [LOOKUP_PATH, true],
    [LOOKUP_PATH, false],
    ['/v1/keychains', false],
  ])('answers 413 naming the limit to an oversize body on %s (declared length: %s), and closes politely', async (route, declared) => {
    const size = 4 * MAX_BODY;
    const head =
      `POST ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: ${authorizationHeader('etl', SECRET)}\r\n` +
      (declared ? `Content-Length: ${size}\r\n\r\n` : `Transfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n`);
    const answer = await rawRequest(port, head, size);
    expect(answer.ending).toBe('end');
    expect(answer.response).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.response).toMatch(/\r\nconnection: close\r\n/i);
    expect(rawJson(answer)).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: `Request body larger than ${MAX_BODY} bytes`, details: { limitBytes: MAX_BODY } });
    expect((await fetch(`${padlock.url}/healthz`)).status).toBe(200);
  });

  it('refuses a lookup or a keychain creation whose body is not UTF-8, naming the offset (never a lookup of U+FFFD)', async () => {
    // "u\xff1": decoded leniently it would be the user id "u\ufffd1".
    const body = Buffer.concat([Buffer.from('{"userIds":["u'), Buffer.from([0xff]), Buffer.from('1"]}')]);
    for (const route of [LOOKUP_PATH, '/v1/keychains']) {
      const r = await fetch(padlock.url + route, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: authorizationHeader('etl', SECRET) },
        body: route === LOOKUP_PATH ? body : Buffer.concat([Buffer.from('{"userId":"u'), Buffer.from([0xff]), Buffer.from('1"}')]),
      });
      expect([route, r.status, await r.json()]).toEqual([route, 400, { code: 'BODY_INVALID', message: `body: not valid UTF-8 (first invalid byte at offset ${route === LOOKUP_PATH ? 14 : 12})` }]);
    }
  });
});
