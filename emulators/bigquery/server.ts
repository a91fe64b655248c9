/**
 * The emulator's HTTP server (node:http): fault injection, the admin
 * endpoint under `/_emulator/`, then the BigQuery v2 REST routes.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { answerAdmin, listen } from '../gcs/emulator-http.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { FaultInjector, type FaultController } from '../gcs/faults.ts';
import { drain, sendJson } from '../gcs/http-util.ts';
import { Catalog } from './catalog.ts';
import { errorBody, errors, toErrorResponse } from './errors.ts';
import { gcsSource } from './gcs-source.ts';
import { parsePath, route } from './handlers.ts';
import { JobRunner } from './jobs.ts';
import { directoryPersistence, memoryPersistence } from './persistence.ts';

export interface BigQueryEmulatorOptions {
  /** Base URL of the Cloud Storage JSON API that `gs://` source URIs are read from (the GCS emulator). */
  gcsEndpoint: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Keep datasets, tables and jobs in this directory (kept across restarts); in memory when absent. */
  dir?: string;
  /** Address to listen on; 127.0.0.1 by default. */
  host?: string;
  /** Time each job spends in PENDING and at least in RUNNING (default 0), so tests can watch jobs.get go through them. */
  jobStepMs?: number;
  /** Largest total input of one load job in bytes (default 1 GiB). */
  maxLoadBytes?: number;
  logger?: Logger;
}

/** A running emulator. */
export interface BigQueryEmulator {
  /** `http://127.0.0.1:<port>`: use as the client's `apiEndpoint`. */
  url: string;
  port: number;
  /** Run-time fault injection (also reachable over HTTP at `/_emulator/faults`). */
  faults: FaultController;
  /** Stops listening, drops connections, waits for running jobs and pending writes. */
  close(): Promise<void>;
}

/** Path prefix of the emulator's own admin API. */
export const ADMIN_PREFIX = '/_emulator/';

/** Starts the BigQuery emulator. */
export async function startBigQueryEmulator(options: BigQueryEmulatorOptions): Promise<BigQueryEmulator> {
  const logger = options.logger ?? createLogger({ component: 'bigquery-emulator', level: 'WARNING' });
  const catalog = await Catalog.open(options.dir === undefined ? memoryPersistence : directoryPersistence(options.dir), logger);
  const jobs = new JobRunner(catalog, gcsSource(options.gcsEndpoint), { jobStepMs: options.jobStepMs ?? 0, maxLoadBytes: options.maxLoadBytes ?? 1024 ** 3 }, logger);
  jobs.resume();
  const faults = new FaultInjector();
  const sockets = new Set<Socket>();

  const server = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 70_000 }, (req, res) => {
    void handle(req, res).catch((err: unknown) => {
      logger.error('request failed outside its handler', { err: err instanceof Error ? err : String(err) });
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, errorBody(500, 'Internal error in the BigQuery emulator.'));
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
        // Any cut resets the connection before an answer (the request may or may not have been handled: see the README).
        if (decision.cut.side === 'response') await dispatch(req, new DiscardedResponse(req) as unknown as ServerResponse, rawUrl, method);
        req.socket.destroy();
        return;
      }
    }
    await dispatch(req, res, rawUrl, method);
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, rawUrl: string, method: string): Promise<void> {
    const q = rawUrl.indexOf('?');
    try {
      await route({
        req,
        res,
        method,
        segments: parsePath(q === -1 ? rawUrl : rawUrl.slice(0, q)),
        query: new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1)),
        baseUrl: req.headers.host === undefined ? url : `http://${req.headers.host}`,
        catalog,
        jobs,
      });
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
        await jobs.close();
        await catalog.flush();
      })();
      return closing;
    },
  };
}

async function answerError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): Promise<void> {
  const { status, body } = toErrorResponse(err);
  if (status >= 500 && status !== 503) logger.error('request failed', { method: req.method, path: req.url?.split('?')[0], err: err instanceof Error ? err : String(err) });
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  await drain(req);
  if (!res.destroyed) sendJson(res, status, body);
}

/** A response that goes nowhere: the request is handled, its answer lost (a `cut: "response"` fault). */
class DiscardedResponse {
  headersSent = false;
  destroyed = false;
  constructor(readonly req: IncomingMessage) {}
  writeHead(): this {
    this.headersSent = true;
    return this;
  }
  setHeader(): this {
    return this;
  }
  write(): boolean {
    return true;
  }
  end(): this {
    this.headersSent = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}
