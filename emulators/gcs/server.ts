/**
 * The emulator's HTTP server (node:http): fault injection, the admin
 * endpoint under `/_emulator/`, then the JSON API routes.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { answerAdmin, listen } from './emulator-http.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { createDirectoryBackend } from './directory-backend.ts';
import { errorBody, errors, toErrorResponse } from './gcs-errors.ts';
import { FaultInjector, type FaultController } from './faults.ts';
import { drain, sendJson } from './http-util.ts';
import { createMemoryBackend } from './memory-backend.ts';
import { parsePath, route } from './router.ts';
import { Store } from './store.ts';
import { UploadSessions } from './upload-sessions.ts';
import type { RequestContext } from './context.ts';

export interface GcsEmulatorOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Keep data in this directory (kept across restarts); in memory when absent. */
  dir?: string;
  /** Address to listen on; 127.0.0.1 by default. */
  host?: string;
  logger?: Logger;
}

/** A running emulator. */
export interface GcsEmulator {
  /** `http://127.0.0.1:<port>`: use as the client's `apiEndpoint`. */
  url: string;
  port: number;
  /** Run-time fault injection (also reachable over HTTP at `/_emulator/faults`). */
  faults: FaultController;
  /** Stops listening, drops open connections and upload sessions. */
  close(): Promise<void>;
}

/** Path prefix of the emulator's own admin API. */
export const ADMIN_PREFIX = '/_emulator/';

/** Starts the Cloud Storage emulator. */
export async function startGcsEmulator(options: GcsEmulatorOptions = {}): Promise<GcsEmulator> {
  const logger = options.logger ?? createLogger({ component: 'gcs-emulator', level: 'WARNING' });
  const store = await Store.open(options.dir === undefined ? createMemoryBackend() : createDirectoryBackend(options.dir));
  const sessions = new UploadSessions();
  const faults = new FaultInjector();
  const sockets = new Set<Socket>();

  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 70_000 }, (req, res) => {
    void handle(req, res).catch((err: unknown) => {
      logger.error('request failed outside its handler', { err: err instanceof Error ? err : String(err) });
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, errorBody(500, 'Internal error in the storage emulator.'));
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    if (rawUrl.startsWith(ADMIN_PREFIX)) return admin(req, res, rawUrl);
    const method = req.method ?? 'GET';
    let body: AsyncIterable<Buffer> = req;
    const decision = faults.empty ? undefined : faults.decide(method, rawUrl);
    if (decision !== undefined) {
      if (decision.latencyMs > 0) await new Promise((r) => setTimeout(r, decision.latencyMs));
      if (decision.status !== undefined) {
        await drain(req);
        const status = decision.status;
        sendJson(res, status, errorBody(status, `Injected fault: ${status}`), status === 429 || status === 503 ? { 'Retry-After': '1' } : {});
        return;
      }
      if (decision.cut !== undefined) {
        if (decision.cut.afterBytes === 0) {
          req.socket.destroy();
          return;
        }
        if (decision.cut.side === 'request') body = cutRequest(req, decision.cut.afterBytes);
        else cutResponse(res, decision.cut.afterBytes);
      }
    }
    const q = rawUrl.indexOf('?');
    const { api, segments } = parsePath(q === -1 ? rawUrl : rawUrl.slice(0, q));
    const ctx: RequestContext = {
      req,
      res,
      method,
      api,
      segments,
      query: new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1)),
      body,
      baseUrl: req.headers.host === undefined ? url : `http://${req.headers.host}`,
      store,
      sessions,
    };
    try {
      await route(ctx);
    } catch (err) {
      await answerError(req, res, err, logger);
    }
  }

  async function admin(req: IncomingMessage, res: ServerResponse, rawUrl: string): Promise<void> {
    try {
      await answerAdmin(req, res, rawUrl.split('?')[0]!, faults, errors.invalid);
    } catch (err) {
      await answerError(req, res, err, logger);
    }
  }

  const { port, url } = await listen(server, options.host, options.port);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    faults,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const s of sockets) s.destroy();
        await closed;
        await sessions.close();
        await store.close();
      })();
      return closing;
    },
  };
}

async function answerError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): Promise<void> {
  if (err instanceof FaultCut) {
    res.destroy();
    return;
  }
  const { status, body } = toErrorResponse(err);
  if (status >= 500) logger.error('request failed', { method: req.method, path: req.url?.split('?')[0], err: err instanceof Error ? err : String(err) });
  if (res.headersSent || res.destroyed || req.socket?.destroyed !== false) {
    res.destroy();
    return;
  }
  await drain(req);
  if (!res.destroyed) sendJson(res, status, body);
}

/** Raised into a handler whose request connection an injected fault cut. */
class FaultCut extends Error {
  constructor() {
    super('connection cut by an injected fault');
    this.name = 'FaultCut';
  }
}

/** The request body, with the connection destroyed once `limit` bytes went through. */
async function* cutRequest(req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if (seen + chunk.length >= limit) {
      const part = chunk.subarray(0, limit - seen);
      if (part.length > 0) yield part;
      req.socket.destroy();
      throw new FaultCut();
    }
    seen += chunk.length;
    yield chunk;
  }
}

/** Lets `limit` bytes of the response body out, then destroys the connection. */
function cutResponse(res: ServerResponse, limit: number): void {
  let sent = 0;
  const write = res.write.bind(res) as (chunk: Buffer, cb?: () => void) => boolean;
  const end = res.end.bind(res) as (cb?: () => void) => ServerResponse;
  const pass = (chunk: unknown): boolean => {
    if (res.destroyed) return false;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    if (sent + buf.length < limit) {
      sent += buf.length;
      return write(buf);
    }
    const part = buf.subarray(0, limit - sent);
    sent = limit;
    write(part, () => res.socket?.destroy());
    return false;
  };
  res.write = ((chunk: unknown) => pass(chunk)) as ServerResponse['write'];
  res.end = ((chunk?: unknown) => {
    if (chunk !== undefined && typeof chunk !== 'function') {
      if (!pass(chunk)) return res;
    }
    if (sent >= limit) return res;
    return end();
  }) as ServerResponse['end'];
}

