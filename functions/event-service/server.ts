/**
 * The event service's HTTP server: `POST /v1/events`, `GET /healthz`,
 * `GET /readyz`, `GET /metrics`; graceful close (stop accepting, finish
 * in-flight publishes, flush audit counts).
 */
import { isUtf8 } from 'node:buffer';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { PubSub } from '@google-cloud/pubsub';
import { AppError, type ErrorCode } from '../../lib/errors.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import type { RegistryReader } from '../../lib/registry/types.ts';
import { hourKey } from '../../lib/events/contract.ts';
import { AuditCounter, GcsAuditSink, type AuditSink } from './audit.ts';
import type { EventServiceConfig } from './config.ts';
import { batchStatus, Ingestor, type EventResult } from './ingest.ts';
import { ServiceMetrics } from './metrics.ts';
import { PublisherPool } from './publishers.ts';
import { RegistryCache } from './registry-cache.ts';

export const JSON_MEDIA_TYPE = 'application/json';
export const AVRO_MEDIA_TYPE = 'application/vnd.apache.avro+binary';

/**
 * After answering 413 with `Connection: close`, how long the rest of the body
 * is still read and discarded before the socket is destroyed: closing with
 * unread data makes the kernel reset the connection, and a client still
 * sending would lose our answer with it.
 */
const LINGER_MS = 2_000;

export interface EventServiceDeps {
  /** Where event types come from (the file store locally, the production store on GCP). */
  registry: RegistryReader;
  /** Pub/Sub client; by default one built from the config (and closed with the service). */
  pubsub?: PubSub;
  /** Audit count sink; by default GCS at `config.stagingBucket`. */
  auditSink?: AuditSink;
  logger?: Logger;
}

export interface RunningEventService {
  /** `http://host:port` */
  url: string;
  port: number;
  /** This process's id in audit object names. */
  instanceId: string;
  metrics: ServiceMetrics;
  audit: AuditCounter;
  /**
   * Stops intake but keeps listening: every `POST /v1/events` from now on is
   * answered 503 with `Retry-After` (and `/readyz` 503); resolves once the
   * requests in flight are answered and their publishes confirmed. Idempotent.
   */
  stopIntake(): Promise<void>;
  /** Stops accepting, finishes in-flight requests and publishes, flushes audit counts. Idempotent. */
  close(): Promise<void>;
}

/** The JSON body of a `POST /v1/events` answer. */
export interface IngestResponse {
  results: EventResult[];
  accepted: number;
  rejected: number;
  failed: number;
}

/** Starts the event service; resolves once it listens (readiness follows the first registry load). */
export async function startEventService(config: EventServiceConfig, deps: EventServiceDeps): Promise<RunningEventService> {
  const logger = deps.logger ?? createLogger({ component: 'event-service', level: config.logLevel });
  const ownPubSub = deps.pubsub === undefined;
  const pubsub = deps.pubsub ?? createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost });
  let sink = deps.auditSink;
  if (sink === undefined) {
    if (config.stagingBucket === undefined) {
      throw new AppError('CONFIG_INVALID', { message: 'Invalid configuration: a staging bucket (STAGING_BUCKET) or an audit sink is required' });
    }
    sink = new GcsAuditSink(createStorage({ projectId: config.projectId, apiEndpoint: config.gcsEndpoint }), config.stagingBucket);
  }
  const metrics = new ServiceMetrics();
  const cache = new RegistryCache(deps.registry, { refreshMs: config.registryRefreshMs, logger });
  const publishers = new PublisherPool(pubsub, {
    budgetBytes: config.limits.typeBudgetBytes,
    batching: config.batching,
    publishTimeoutMs: config.publishTimeoutMs,
  });
  metrics.inFlightBytesGauge(() => publishers.all().map((p) => ({ eventType: p.eventType, value: p.bytesInFlight })));
  const now = (): Date => new Date(Date.now() + config.clockOffsetMs);
  const audit = new AuditCounter({ instanceId: config.instanceId, sink, flushMs: config.auditFlushMs, heartbeatMs: config.auditHeartbeatMs, logger, now });
  const ingestor = new Ingestor({ cache, publishers, metrics, audit, limits: config.limits, publishTimeoutMs: config.publishTimeoutMs, logger });

  let active = 0;
  let bufferedBodyBytes = 0;
  let shuttingDown = false;
  let idle: (() => void) | undefined;
  const retryAfter = String(config.retryAfterSeconds);

  const sendJson = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    const text = JSON.stringify(body);
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...extra };
    if (status === 429 || status === 503) headers['Retry-After'] = retryAfter;
    if (shuttingDown) headers.Connection = 'close';
    res.writeHead(status, headers).end(text);
  };
  const sendError = (res: ServerResponse, code: ErrorCode, message?: string, details?: Record<string, unknown>, extra?: Record<string, string>): void => {
    const err = new AppError(code, { ...(message === undefined ? {} : { message }), ...(details === undefined ? {} : { details }) });
    metrics.response(err.status);
    sendJson(res, err.status, err.toJSON(), extra);
  };

  const handleEvents = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const receiveTime = now();
    if (shuttingDown) return sendError(res, 'UNAVAILABLE', 'Service is shutting down, retry on another instance');
    if (!cache.ready) return sendError(res, 'UNAVAILABLE', 'Event-type registry not loaded yet, retry later');
    if (active > config.limits.maxConcurrentRequests) return sendError(res, 'OVERLOADED');
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== JSON_MEDIA_TYPE && mediaType !== AVRO_MEDIA_TYPE) {
      req.resume();
      return sendError(res, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${JSON_MEDIA_TYPE} or ${AVRO_MEDIA_TYPE}`);
    }
    const declared = Number(req.headers['content-length']);
    const reservation = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, config.limits.maxBodyBytes) : config.limits.maxBodyBytes;
    if (bufferedBodyBytes > 0 && bufferedBodyBytes + reservation > config.limits.maxBufferedBodyBytes) {
      req.resume();
      return sendError(res, 'OVERLOADED');
    }
    bufferedBodyBytes += reservation;
    // The hour of this request's receive time cannot get a final audit count while it runs (audit.ts).
    const hour = hourKey(receiveTime);
    audit.requestStarted(hour);
    try {
      await handleBody(req, res, mediaType, receiveTime);
    } finally {
      audit.requestDone(hour);
      bufferedBodyBytes -= reservation;
    }
  };

  const handleBody = async (req: IncomingMessage, res: ServerResponse, mediaType: string, receiveTime: Date): Promise<void> => {
    const body = await readBody(req, config.limits.maxBodyBytes);
    if (body === 'too-large') {
      // Answer at once, then close politely: the rest of the body is discarded for a while, not reset (lingerOnClose).
      lingerOnClose(req.socket);
      const limit = config.limits.maxBodyBytes;
      return sendError(res, 'PAYLOAD_TOO_LARGE', `Request body larger than ${limit} bytes`, { limitBytes: limit }, { Connection: 'close' });
    }
    if (body === 'aborted') return;
    let results: EventResult[];
    if (mediaType === AVRO_MEDIA_TYPE) {
      results = await ingestor.ingestSingleObject(body, headerValue(req, 'x-event-type'), headerValue(req, 'x-event-id'), receiveTime);
    } else {
      // Decoding would silently turn invalid UTF-8 into U+FFFD: refuse it instead.
      if (!isUtf8(body)) return sendError(res, 'BODY_INVALID', `body: not valid UTF-8 (first invalid byte at offset ${firstInvalidUtf8(body)})`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (err) {
        return sendError(res, 'BODY_INVALID', `body: not valid JSON (${(err as Error).message.slice(0, 200)})`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return sendError(res, 'BODY_INVALID', 'body: expected an object {"events": [...]}');
      }
      const events = (parsed as Record<string, unknown>).events;
      if (!Array.isArray(events)) return sendError(res, 'BODY_INVALID', 'events: expected an array of events');
      if (events.length === 0) return sendError(res, 'BODY_INVALID', 'events: must hold at least one event');
      if (events.length > config.limits.maxBatchEvents) {
        return sendError(res, 'BATCH_TOO_LARGE', `events: ${events.length} events, limit ${config.limits.maxBatchEvents} per batch`, {
          limitEvents: config.limits.maxBatchEvents,
        });
      }
      results = await ingestor.ingestJson(events, receiveTime);
    }
    const response: IngestResponse = { results, accepted: 0, rejected: 0, failed: 0 };
    for (const r of results) response[r.status]++;
    const status = batchStatus(results);
    metrics.response(status);
    sendJson(res, status, response);
  };

  const server = http.createServer((req, res) => {
    active++;
    const finish = (): void => {
      if (--active === 0 && idle !== undefined) idle();
    };
    const path = (req.url ?? '/').split('?')[0];
    let work: Promise<void> | void = undefined;
    try {
      if (req.method === 'POST' && path === '/v1/events') work = handleEvents(req, res);
      else if (req.method === 'GET' && path === '/healthz') sendJson(res, 200, { status: 'ok' });
      else if (req.method === 'GET' && path === '/readyz') {
        const ready = cache.ready && !shuttingDown;
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : shuttingDown ? 'shutting down' : 'registry not loaded' });
      } else if (req.method === 'GET' && path === '/metrics') {
        const text = metrics.render();
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
      } else {
        req.resume();
        sendError(res, 'NOT_FOUND', `No route ${req.method ?? ''} ${path ?? ''}`);
      }
    } catch (err) {
      work = Promise.reject(err);
    }
    void Promise.resolve(work)
      .catch((err: unknown) => {
        logger.error('request failed', { error: err });
        if (!res.headersSent) sendError(res, 'INTERNAL');
        else res.destroy();
      })
      .finally(finish);
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  server.keepAliveTimeout = 65_000;

  await cache.start();
  audit.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info('event service listening', { port, instanceId: config.instanceId });

  let intakeStopped: Promise<void> | undefined;
  const stopIntake = (): Promise<void> =>
    (intakeStopped ??= (async () => {
      shuttingDown = true;
      if (active > 0) await new Promise<void>((resolve) => (idle = resolve));
      await publishers.drain();
    })());

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await stopIntake();
      // Intake stopped and every publish settled: the counts are final (audit.ts).
      await audit.stop();
      cache.stop();
      server.closeAllConnections();
      await closed;
      if (ownPubSub) await pubsub.close().catch(() => undefined);
      logger.info('event service stopped', { instanceId: config.instanceId });
    })());

  return { url: `http://${shownHost}:${port}`, port, instanceId: config.instanceId, metrics, audit, stopIntake, close };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads a body up to `limit` bytes; 'too-large' as soon as it is known to be
 * over (declared or received). The rest of an oversize body keeps being read
 * and discarded (the caller answers 413 and closes with lingerOnClose).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > limit;
    if (tooLarge) resolve('too-large');
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks, size)));
    req.on('error', () => resolve(tooLarge ? 'too-large' : 'aborted'));
    req.on('close', () => {
      if (!req.complete) resolve(tooLarge ? 'too-large' : 'aborted');
    });
  });
}

/**
 * Node destroys a `Connection: close` socket as soon as the response is
 * written; with the client still sending its body, that resets the
 * connection and the client may never read the answer. Instead: half-close
 * (our FIN after the answer), keep reading and discarding, and destroy once
 * the client closes its side or after LINGER_MS.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingeringClose(this: Socket): void {
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
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
