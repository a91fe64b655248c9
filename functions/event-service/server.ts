/**
 * The event service's HTTP server: `POST /v1/events`, `GET /healthz`,
 * `GET /readyz`, `GET /metrics`; graceful close (stop accepting, finish
 * in-flight publishes, flush audit counts). Bodies, error answers, health and
 * shutdown come from the shared HTTP toolkit (lib/http).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { PubSub } from '@google-cloud/pubsub';
import { AppError } from '../../lib/errors.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { answerHealth, bodyOf, closeServer, JSON_MEDIA_TYPE, listen, parseJsonBody, requireMediaType, sendError, sendJson } from '../../lib/http/index.ts';
import type { RegistryReader } from '../../lib/registry/types.ts';
import { hourKey } from '../../lib/events/contract.ts';
import { AuditCounter, GcsAuditSink, type AuditSink } from './audit.ts';
import type { EventServiceConfig } from './config.ts';
import { batchStatus, Ingestor, type EventResult } from './ingest.ts';
import { ServiceMetrics } from './metrics.ts';
import { PublisherPool } from './publishers.ts';
import { RegistryCache } from './registry-cache.ts';

const AVRO_MEDIA_TYPE = 'application/vnd.apache.avro+binary';

/** How long a closing service lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 30_000;

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

/** What ingestion is made of: built from the config, with the dependencies given. */
interface IngestionParts {
  pubsub: PubSub;
  ownPubSub: boolean;
  metrics: ServiceMetrics;
  cache: RegistryCache;
  publishers: PublisherPool;
  audit: AuditCounter;
  ingestor: Ingestor;
}

function buildIngestion(config: EventServiceConfig, deps: EventServiceDeps, logger: Logger): IngestionParts {
  const ownPubSub = deps.pubsub === undefined;
  const pubsub = deps.pubsub ?? createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost });
  const sink = deps.auditSink ?? gcsAuditSink(config);
  const metrics = new ServiceMetrics();
  const cache = new RegistryCache(deps.registry, { refreshMs: config.registryRefreshMs, logger });
  const publishers = new PublisherPool(pubsub, {
    budgetBytes: config.limits.typeBudgetBytes,
    batching: config.batching,
    publishTimeoutMs: config.publishTimeoutMs,
  });
  metrics.inFlightBytesGauge(() => publishers.all().map((p) => ({ eventType: p.eventType, value: p.bytesInFlight })));
  const audit = new AuditCounter({ instanceId: config.instanceId, sink, flushMs: config.auditFlushMs, heartbeatMs: config.auditHeartbeatMs, logger, now: () => now(config) });
  const ingestor = new Ingestor({ cache, publishers, metrics, audit, limits: config.limits, publishTimeoutMs: config.publishTimeoutMs, logger });
  return { pubsub, ownPubSub, metrics, cache, publishers, audit, ingestor };
}

function gcsAuditSink(config: EventServiceConfig): AuditSink {
  if (config.stagingBucket === undefined) {
    throw new AppError('CONFIG_INVALID', { message: 'Invalid configuration: a staging bucket (STAGING_BUCKET) or an audit sink is required' });
  }
  return new GcsAuditSink(createStorage({ projectId: config.projectId, apiEndpoint: config.gcsEndpoint }), config.stagingBucket);
}

/** Starts the event service; resolves once it listens (readiness follows the first registry load). */
export async function startEventService(config: EventServiceConfig, deps: EventServiceDeps): Promise<RunningEventService> {
  const logger = deps.logger ?? createLogger({ component: 'event-service', level: config.logLevel });
  const parts = buildIngestion(config, deps, logger);
  const routes = new EventRoutes(config, parts);
  const server = http.createServer((req, res) => routes.handle(req, res, logger));
  server.on('clientError', answerMalformedRequest);
  server.keepAliveTimeout = 65_000;

  await parts.cache.start();
  parts.audit.start();
  const { port, url } = await listen(server, config.host, config.port);
  logger.info('event service listening', { port, instanceId: config.instanceId });

  let intakeStopped: Promise<void> | undefined;
  const stopIntake = (): Promise<void> => (intakeStopped ??= routes.stopIntake().then(() => parts.publishers.drain()));

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const closed = closeServer(server, CLOSE_GRACE_MS);
      await stopIntake();
      // Intake stopped and every publish settled: the counts are final (audit.ts).
      await parts.audit.stop();
      parts.cache.stop();
      await closed;
      if (parts.ownPubSub) await parts.pubsub.close().catch(() => undefined);
      logger.info('event service stopped', { instanceId: config.instanceId });
    })());

  return { url, port, instanceId: config.instanceId, metrics: parts.metrics, audit: parts.audit, stopIntake, close };
}

/** The service's clock: the system clock shifted by `CLOCK_OFFSET_MS` (tests and drills; 0 in production). */
function now(config: EventServiceConfig): Date {
  return new Date(Date.now() + config.clockOffsetMs);
}

/** A request node could not parse: 400 and close, never a crash. */
function answerMalformedRequest(_err: Error, socket: Socket): void {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  else socket.destroy();
}

/** The routes, with admission control: requests in flight and bytes of bodies buffered. */
class EventRoutes {
  private active = 0;
  private bufferedBodyBytes = 0;
  private shuttingDown = false;
  private idle: (() => void) | undefined;

  constructor(
    private readonly config: EventServiceConfig,
    private readonly parts: IngestionParts,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
    this.active++;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let work: Promise<void> | void;
    try {
      work = this.route(req, res, path);
    } catch (err) {
      work = Promise.reject(err);
    }
    void Promise.resolve(work)
      .catch((err: unknown) => {
        logger.error('request failed', { error: err });
        this.fail(req, res, new AppError('INTERNAL', { cause: err }));
      })
      .finally(() => {
        if (--this.active === 0 && this.idle !== undefined) this.idle();
      });
  }

  /** Stops intake (503 from now on); resolves once the requests in flight are answered. */
  async stopIntake(): Promise<void> {
    this.shuttingDown = true;
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  private route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> | void {
    if (req.method === 'POST' && path === '/v1/events') return this.events(req, res);
    if (answerHealth(req, res, path, () => this.notReady())) return;
    if (req.method === 'GET' && path === '/metrics') {
      const text = this.parts.metrics.render();
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
      return;
    }
    this.fail(req, res, new AppError('NOT_FOUND', { message: `No route ${req.method ?? ''} ${path}` }));
  }

  private notReady(): string | undefined {
    if (this.shuttingDown) return 'shutting down';
    return this.parts.cache.ready ? undefined : 'registry not loaded';
  }

  /** `POST /v1/events`: admitted, its body reserved against the buffered-bytes bound, ingested. */
  private async events(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receiveTime = now(this.config);
    const refused = this.admission();
    if (refused !== undefined) return this.fail(req, res, refused);
    let mediaType: string;
    try {
      mediaType = requireMediaType(req, [JSON_MEDIA_TYPE, AVRO_MEDIA_TYPE]);
    } catch (err) {
      return this.fail(req, res, err);
    }
    const { limits } = this.config;
    const declared = Number(req.headers['content-length']);
    const reservation = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, limits.maxBodyBytes) : limits.maxBodyBytes;
    if (this.bufferedBodyBytes > 0 && this.bufferedBodyBytes + reservation > limits.maxBufferedBodyBytes) return this.fail(req, res, new AppError('OVERLOADED'));
    this.bufferedBodyBytes += reservation;
    // The hour of this request's receive time cannot get a final audit count while it runs (audit.ts).
    const hour = hourKey(receiveTime);
    this.parts.audit.requestStarted(hour);
    try {
      const body = await bodyOf(req, limits.maxBodyBytes);
      if (body === undefined) return;
      const results =
        mediaType === AVRO_MEDIA_TYPE
          ? await this.parts.ingestor.ingestSingleObject(body, headerValue(req, 'x-event-type'), headerValue(req, 'x-event-id'), receiveTime)
          : await this.parts.ingestor.ingestJson(this.jsonBatch(body), receiveTime);
      const response: IngestResponse = { results, accepted: 0, rejected: 0, failed: 0 };
      for (const r of results) response[r.status]++;
      const status = batchStatus(results);
      this.parts.metrics.response(status);
      this.send(res, status, response);
    } catch (err) {
      if (err instanceof AppError) return this.fail(req, res, err);
      throw err;
    } finally {
      this.parts.audit.requestDone(hour);
      this.bufferedBodyBytes -= reservation;
    }
  }

  /** Why a request is refused before its body is read, if it is. */
  private admission(): AppError | undefined {
    if (this.shuttingDown) return new AppError('UNAVAILABLE', { message: 'Service is shutting down, retry on another instance' });
    if (!this.parts.cache.ready) return new AppError('UNAVAILABLE', { message: 'Event-type registry not loaded yet, retry later' });
    if (this.active > this.config.limits.maxConcurrentRequests) return new AppError('OVERLOADED');
    return undefined;
  }

  /** The `events` array of a JSON batch, within the batch limit. */
  private jsonBatch(body: Buffer): unknown[] {
    const parsed = parseJsonBody(body);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new AppError('BODY_INVALID', { message: 'body: expected an object {"events": [...]}' });
    }
    const events = (parsed as Record<string, unknown>).events;
    if (!Array.isArray(events)) throw new AppError('BODY_INVALID', { message: 'events: expected an array of events' });
    if (events.length === 0) throw new AppError('BODY_INVALID', { message: 'events: must hold at least one event' });
    const limit = this.config.limits.maxBatchEvents;
    if (events.length > limit) {
      throw new AppError('BATCH_TOO_LARGE', { message: `events: ${events.length} events, limit ${limit} per batch`, details: { limitEvents: limit } });
    }
    return events;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const headers: Record<string, string> = {};
    if (status === 429 || status === 503) headers['retry-after'] = String(this.config.retryAfterSeconds);
    if (this.shuttingDown) headers.connection = 'close';
    sendJson(res, status, body, headers);
  }

  /** The error answer (lib/http's sendError), counted; `Connection: close` while shutting down. */
  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const headers = this.shuttingDown ? { connection: 'close' } : {};
    const error = sendError(req, res, err, { retryAfterSeconds: this.config.retryAfterSeconds, headers });
    this.parts.metrics.response(error.status);
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
