/** The shared HTTP toolkit (lib/http) against real connections on loopback: limits, polite 413, errors, health, shutdown. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rawJson, rawRequest } from '../support/raw-request.ts';
import { AppError } from '../../lib/errors.ts';
import { ABORTED, answerHealth, bodyOf, closeServer, listen, readBody, readJsonBody, sendError, sendJson, type BodyOutcome } from '../../lib/http/index.ts';

const LIMIT = 64 * 1024;
const open: http.Server[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: http.Server; port: number; url: string }> {
  const server = http.createServer(handler);
  open.push(server);
  return { server, ...(await listen(server)) };
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => closeServer(s, 0)));
});

/** Echoes a JSON body back, or answers its error. */
const echoJson = (req: IncomingMessage, res: ServerResponse): void => {
  readJsonBody(req, LIMIT).then(
    (body) => sendJson(res, 200, { body }),
    (err: unknown) => sendError(req, res, err),
  );
};

const post = async (url: string, body: string | Uint8Array, type = 'application/json'): Promise<{ status: number; json: Record<string, unknown> }> => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body: body as BodyInit });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
};

describe('lib/http bodies', () => {
  it('reads a JSON body within the limit, in one chunk or many', async () => {
    const { url } = await serve(echoJson);
    expect(await post(url, '{"a":[1,2,"é"]}', 'application/json; charset=utf-8')).toEqual({ status: 200, json: { body: { a: [1, 2, 'é'] } } });
    const big = JSON.stringify({ s: 'x'.repeat(LIMIT - 20) });
    expect((await post(url, big)).json).toEqual({ body: { s: 'x'.repeat(LIMIT - 20) } });
  });

  it.each([
    ['a declared length over the limit', true],
    ['a chunked body that grows over the limit', false],
  ])('answers 413 naming the limit to %s, and closes politely (FIN, no reset) while the client still sends', async (_name, declared) => {
    const { port, url } = await serve(echoJson);
    const size = 16 * LIMIT;
    const head =
      'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      (declared ? `Content-Length: ${size}\r\n\r\n` : `Transfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n`);
    const answer = await rawRequest(port, head, size);
    expect(answer.ending).toBe('end');
    expect(answer.response).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.response).toMatch(/\r\nconnection: close\r\n/i);
    expect(rawJson(answer)).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: `Request body larger than ${LIMIT} bytes`, details: { limitBytes: LIMIT } });
    // The server still serves.
    expect((await post(url, '{}')).status).toBe(200);
  });

  it('refuses invalid UTF-8 naming the offset, invalid JSON with the parser reason, and other media types with 415', async () => {
    const { url } = await serve(echoJson);
    const bad = await post(url, Buffer.concat([Buffer.from('{"u":"ab'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]));
    expect(bad).toEqual({ status: 400, json: { code: 'BODY_INVALID', message: 'body: not valid UTF-8 (first invalid byte at offset 8)' } });
    const broken = await post(url, '{"a":');
    expect(broken.status).toBe(400);
    expect(broken.json.message).toMatch(/^body: not valid JSON \(/);
    const text = await post(url, 'hello', 'text/plain');
    expect(text).toEqual({ status: 415, json: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Content-Type must be application/json', details: { accepted: ['application/json'] } } });
  });

  it('tells the listener exactly once that a client went away mid-body', async () => {
    const outcomes: BodyOutcome[] = [];
    let told!: () => void;
    const done = new Promise<void>((resolve) => (told = resolve));
    const { port } = await serve((req) =>
      readBody(req, LIMIT, (_req, outcome) => {
        outcomes.push(outcome);
        told();
      }),
    );
    // Send the head and part of the body, then leave.
    const socket = net.connect(port, '127.0.0.1');
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc');
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await done;
    await new Promise((r) => setTimeout(r, 50));
    expect(outcomes).toEqual([ABORTED]);
  });

  it('bodyOf resolves an empty body as an empty buffer', async () => {
    let seen: Buffer | undefined;
    const { url } = await serve((req, res) => {
      void bodyOf(req, LIMIT).then((b) => {
        seen = b;
        sendJson(res, 200, {});
      });
    });
    await fetch(url, { method: 'POST' });
    expect(seen).toEqual(Buffer.alloc(0));
  });
});

describe('lib/http errors', () => {
  it('answers an AppError with its catalogue status and Retry-After, anything else as INTERNAL without its message', async () => {
    const { url } = await serve((req, res) => {
      if (req.url === '/busy') sendError(req, res, new AppError('OVERLOADED'), { retryAfterSeconds: 3 });
      else sendError(req, res, new Error('secret detail of the failure'));
    });
    const busy = await fetch(`${url}/busy`);
    expect([busy.status, busy.headers.get('retry-after'), await busy.json()]).toEqual([429, '3', { code: 'OVERLOADED', message: 'Too many requests, retry later' }]);
    const broken = await fetch(`${url}/x`);
    expect([broken.status, await broken.json()]).toEqual([500, { code: 'INTERNAL', message: 'Internal error' }]);
    // A bodiless request keeps its connection.
    expect(busy.headers.get('connection')).not.toBe('close');
  });
});

describe('lib/http health', () => {
  it('answers /healthz, and /readyz from the readiness check: ready, a reason, or the error it throws', async () => {
    let state: 'ready' | 'loading' | 'down' = 'loading';
    const { url } = await serve((req, res) => {
      const handled = answerHealth(req, res, req.url ?? '/', () => {
        if (state === 'down') throw new AppError('KEY_STORE_UNAVAILABLE');
        return state === 'ready' ? undefined : 'registry not loaded';
      });
      if (!handled) sendJson(res, 404, {});
    });
    const get = async (path: string): Promise<[number, unknown]> => {
      const r = await fetch(url + path);
      return [r.status, await r.json()];
    };
    expect(await get('/healthz')).toEqual([200, { status: 'ok' }]);
    expect(await get('/readyz')).toEqual([503, { status: 'registry not loaded' }]);
    state = 'ready';
    expect(await get('/readyz')).toEqual([200, { status: 'ready' }]);
    state = 'down';
    expect(await get('/readyz')).toEqual([503, { code: 'KEY_STORE_UNAVAILABLE', message: 'Key store unavailable' }]);
    expect(await get('/other')).toEqual([404, {}]);
  });
});

describe('lib/http shutdown', () => {
  it('lets a request in flight finish, closes its keep-alive connection, and refuses new connections', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { server, url } = await serve((req, res) => {
      if (req.url === '/slow') void held.then(() => sendJson(res, 200, { slow: true }));
      else sendJson(res, 200, { fast: true });
    });
    const agent = new http.Agent({ keepAlive: true });
    const get = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        http
          .get(url + path, { agent }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    expect((await get('/fast')).status).toBe(200);
    const slow = get('/slow');
    await new Promise((r) => setTimeout(r, 50));
    let closed = false;
    const closing = closeServer(server, 10_000).then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    await expect(fetch(url + '/fast')).rejects.toThrow();
    release();
    expect(await slow).toEqual({ status: 200, body: '{"slow":true}' });
    await closing;
    expect(closed).toBe(true);
    agent.destroy();
  });

  it('cuts what is still open once the grace period is over', async () => {
    const { server, url } = await serve(() => undefined);
    const hanging = fetch(url).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 50));
    await closeServer(server, 100);
    expect(await hanging).toBeInstanceOf(Error);
  });
});
