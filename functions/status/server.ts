/**
 * The partition status service: a read-only HTTP server over the listing
 * pass's cached snapshot (scanner.ts), refreshed every `refreshMs`, and the
 * dead-letter counts (dead-letters.ts), refreshed every `deadLetterIntervalMs`.
 * Requests never list buckets; the manifest and late-counter links read one
 * object each.
 *
 * - `GET /v1/partitions?type=&from=&to=&owner=&priority=` → `{at, partitions: PartitionStatus[]}`
 * - `GET /v1/partitions/<type>/<period>` → one `PartitionStatus` with its dead letters
 * - `GET /v1/partitions/<type>/<period>/manifest` → the `_SUCCESS` manifest; `/late` → the `_LATE` counter
 * - `GET /v1/dead-letters?type=` → dead letters per type and hour
 * - `GET /v1/types/<type>` → settings, schema versions, throughput
 * - `GET /` (grid; `owner`, `priority`, `hours`, `page`), `/types/<type>`, `/partitions/<type>/<period>`: HTML
 * - `GET /healthz`, `/readyz` (ready once the first pass is done)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { AppError, isAppError } from '../../lib/errors.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { latePrefix, parsePeriodKey, successObjectName, lateCounterObjectName, type Period } from '../../lib/partitions.ts';
import type { RegistryReader } from '../../lib/registry/types.ts';
import type { StatusTuning } from './config.ts';
import { DeadLetterCounter, type DeadLetterCount } from './dead-letters.ts';
import { eventTypeParam, intParam, parsePartitionsQuery, priorityParam, singleValues, textParam } from './query.ts';
import { renderGrid, renderPartition, renderType, throughput, escapeHtml, type GridRow } from './render.ts';
import { PartitionScanner, type Snapshot, type TypeView } from './scanner.ts';
import type { PartitionStatus } from './state.ts';

export interface StatusServiceOptions {
  host: string;
  port: number;
  projectId: string;
  storage: Storage;
  stagingBucket: string;
  dataBucket: string;
  registry: RegistryReader;
  /** Dead letters are counted when given (and `tuning.deadLetters`). */
  pubsub?: PubSub;
  tuning: StatusTuning;
  logger?: Logger;
  now?: () => number;
}

export interface RunningStatusService {
  url: string;
  port: number;
  scanner: PartitionScanner;
  /** Runs a listing pass now (tests, and the timer). */
  refresh(): Promise<Snapshot>;
  /** Counts dead letters now. */
  countDeadLetters(): Promise<void>;
  close(): Promise<void>;
}

/** Types shown on one grid page: bounds the page's size (500 types × 72 hours is 36,000 cells). */
const GRID_PAGE_TYPES = 100;

export async function startStatusService(o: StatusServiceOptions): Promise<RunningStatusService> {
  const logger = o.logger ?? createLogger({ component: 'status' });
  const scanner = new PartitionScanner({ storage: o.storage, stagingBucket: o.stagingBucket, dataBucket: o.dataBucket, registry: o.registry, tuning: o.tuning, logger, ...(o.now === undefined ? {} : { now: o.now }) });
  const deadLetters =
    o.pubsub !== undefined && o.tuning.deadLetters ? new DeadLetterCounter({ pubsub: o.pubsub, projectId: o.projectId, max: o.tuning.deadLetterMax, logger }) : undefined;

  const current = async (): Promise<Snapshot> => scanner.snapshot() ?? scanner.refresh();
  const typeOf = (snap: Snapshot, name: string): TypeView => {
    const t = snap.types.find((x) => x.name === name);
    if (t === undefined) throw new AppError('EVENT_TYPE_NOT_FOUND', { message: `unknown event type '${name}'`, details: { type: name } });
    return t;
  };
  const partitionOf = (snap: Snapshot, type: TypeView, periodText: string): { period: Period; status: PartitionStatus } => {
    const period = parsePeriodKey(periodText);
    if (period.granularity !== type.partitioning) {
      throw new AppError('BAD_REQUEST', { message: `'${periodText}' is not a ${type.partitioning} period of ${type.name}`, details: { period: periodText } });
    }
    const status = snap.partitions.get(type.name)?.find((p) => p.period === period.key);
    if (status === undefined) throw new AppError('NOT_FOUND', { message: `period ${period.key} is outside the status window`, details: { period: period.key } });
    return { period, status };
  };
  const deadLetterJson = (d: DeadLetterCount | undefined): unknown =>
    d === undefined ? null : { total: d.total, capped: d.capped, byHour: Object.fromEntries(d.byHour), countedAt: d.countedAt };

  const app = express();
  app.disable('x-powered-by');
  // Flat parameters only: a repeated one arrives as an array and is refused (query.ts).
  app.set('query parser', 'simple');
  const asyncRoute =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      fn(req, res).catch(next);
    };

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', (_req, res) => {
    const ready = scanner.snapshot() !== undefined;
    res.status(ready ? 200 : 503).json({ ready });
  });

  app.get(
    '/v1/partitions',
    asyncRoute(async (req, res) => {
      const q = parsePartitionsQuery(req.query);
      const snap = await current();
      const types = snap.types.filter(
        (t) => (q.type === undefined || t.name === q.type) && (q.owner === undefined || t.owner === q.owner) && (q.priority === undefined || t.priority === q.priority),
      );
      if (q.type !== undefined && types.length === 0) typeOf(snap, q.type);
      const partitions = types.flatMap((t) =>
        (snap.partitions.get(t.name) ?? []).filter((p) => (q.fromMs === undefined || Date.parse(p.end) > q.fromMs) && (q.toMs === undefined || Date.parse(p.start) <= q.toMs)),
      );
      res.json({ at: snap.at, windowStart: new Date(snap.windowStartMs).toISOString(), partitions });
    }),
  );
  app.get(
    '/v1/partitions/:type/:period',
    asyncRoute(async (req, res) => {
      singleValues(req.query, []);
      const snap = await current();
      const type = typeOf(snap, eventTypeParam(String(req.params.type), 'type')!);
      const { status } = partitionOf(snap, type, String(req.params.period));
      res.json({ ...status, deadLetters: deadLetterJson(deadLetters?.get(type.name)) });
    }),
  );
  const objectRoute = (which: 'manifest' | 'late') =>
    asyncRoute(async (req, res) => {
      singleValues(req.query, []);
      const snap = await current();
      const type = typeOf(snap, eventTypeParam(String(req.params.type), 'type')!);
      const { period } = partitionOf(snap, type, String(req.params.period));
      const name = which === 'manifest' ? successObjectName(type.name, period) : lateCounterObjectName(type.name, period);
      try {
        const [bytes] = await o.storage.bucket(o.dataBucket).file(name).download();
        res.type('application/json').send(bytes);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 404) throw err;
        if (which === 'late') {
          res.json({ eventType: type.name, period: period.key, count: 0, files: [], prefix: `gs://${o.dataBucket}/${latePrefix(type.name, period)}` });
          return;
        }
        throw new AppError('NOT_FOUND', { message: `${type.name} ${period.key} is not closed: no _SUCCESS manifest`, details: { object: name } });
      }
    });
  app.get('/v1/partitions/:type/:period/manifest', objectRoute('manifest'));
  app.get('/v1/partitions/:type/:period/late', objectRoute('late'));
  app.get(
    '/v1/dead-letters',
    asyncRoute(async (req, res) => {
      const v = singleValues(req.query, ['type']);
      const snap = await current();
      const only = eventTypeParam(v.get('type'));
      if (only !== undefined) typeOf(snap, only);
      const names = only === undefined ? snap.types.map((t) => t.name) : [only];
      res.json({ counting: deadLetters !== undefined, deadLetters: Object.fromEntries(names.map((n) => [n, deadLetterJson(deadLetters?.get(n))])) });
    }),
  );
  app.get(
    '/v1/types/:type',
    asyncRoute(async (req, res) => {
      singleValues(req.query, []);
      const snap = await current();
      const type = typeOf(snap, eventTypeParam(String(req.params.type), 'type')!);
      const partitions = snap.partitions.get(type.name) ?? [];
      res.json({ ...type, throughput: throughput(partitions, type.partitioning), deadLetters: deadLetterJson(deadLetters?.get(type.name)) });
    }),
  );

  app.get(
    '/',
    asyncRoute(async (req, res) => {
      const v = singleValues(req.query, ['owner', 'priority', 'hours', 'page']);
      const filter = {
        owner: textParam(v.get('owner'), 'owner'),
        priority: priorityParam(v.get('priority')),
        hours: intParam(v.get('hours'), 'hours', 1, o.tuning.windowHours) ?? Math.min(24, o.tuning.windowHours),
        page: intParam(v.get('page'), 'page', 1, 100_000) ?? 1,
      };
      const snap = await current();
      const owners = [...new Set(snap.types.map((t) => t.owner))].sort();
      const chosen = snap.types.filter((t) => (filter.owner === undefined || t.owner === filter.owner) && (filter.priority === undefined || t.priority === filter.priority));
      const pageTypes = chosen.slice((filter.page - 1) * GRID_PAGE_TYPES, filter.page * GRID_PAGE_TYPES);
      const fromMs = snap.atMs - filter.hours * 3_600_000;
      const rows = (granularity: 'hourly' | 'daily'): GridRow[] =>
        pageTypes
          .filter((t) => t.partitioning === granularity)
          .map((type) => ({ type, partitions: (snap.partitions.get(type.name) ?? []).filter((p) => Date.parse(p.end) > fromMs) }));
      const columns = (rs: GridRow[]): string[] => [...new Set(rs.flatMap((r) => r.partitions.map((p) => p.period)))].sort();
      const hourly = rows('hourly');
      const daily = rows('daily');
      res.type('text/html').send(
        renderGrid({ at: snap.at, filter, owners, hourly: { columns: columns(hourly), rows: hourly }, daily: { columns: columns(daily), rows: daily }, totalTypes: chosen.length, pageSize: GRID_PAGE_TYPES }),
      );
    }),
  );
  app.get(
    '/types/:type',
    asyncRoute(async (req, res) => {
      singleValues(req.query, []);
      const snap = await current();
      const type = typeOf(snap, eventTypeParam(String(req.params.type), 'type')!);
      res.type('text/html').send(renderType(type, snap.partitions.get(type.name) ?? [], deadLetters?.get(type.name)));
    }),
  );
  app.get(
    '/partitions/:type/:period',
    asyncRoute(async (req, res) => {
      singleValues(req.query, []);
      const snap = await current();
      const type = typeOf(snap, eventTypeParam(String(req.params.type), 'type')!);
      const { status } = partitionOf(snap, type, String(req.params.period));
      res.type('text/html').send(renderPartition(status, type, deadLetters?.get(type.name)));
    }),
  );

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new AppError('NOT_FOUND', { message: `no such page: ${req.method} ${req.path.slice(0, 200)}` }));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = isAppError(err) ? err : new AppError('INTERNAL', { cause: err });
    if (e.status >= 500) logger.error('request failed', { path: req.path.slice(0, 200), error: err });
    if (req.path.startsWith('/v1/') || req.path === '/healthz' || req.path === '/readyz') {
      res.status(e.status).json(e.toJSON());
      return;
    }
    res
      .status(e.status)
      .type('text/html')
      .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${e.status}</title></head><body><h1>${e.status} ${escapeHtml(e.code)}</h1><p>${escapeHtml(e.message)}</p><p><a href="/">partition status</a></p></body></html>`);
  });

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const refresh = async (): Promise<Snapshot> => {
    const snap = await scanner.refresh();
    const s = scanner.lastPass();
    logger.debug('status refreshed', { types: snap.types.length, listRequests: s.listRequests, objects: s.objectsListed, downloads: s.downloads, ms: Math.round(s.durationMs) });
    return snap;
  };
  const countDeadLetters = async (): Promise<void> => {
    if (deadLetters === undefined) return;
    const snap = await current();
    await deadLetters.countAll(snap.types.map((t) => t.name));
  };
  let stopped = false;
  const loop = (fn: () => Promise<unknown>, everyMs: number, what: string): (() => void) => {
    let timer: NodeJS.Timeout | undefined;
    const run = (): void => {
      fn()
        .catch((err: unknown) => logger.warn(`${what} failed; will retry`, { error: err }))
        .finally(() => {
          if (!stopped) timer = setTimeout(run, everyMs);
        });
    };
    run();
    return () => clearTimeout(timer);
  };
  const stopRefresh = loop(refresh, o.tuning.refreshMs, 'status refresh');
  const stopDeadLetters = deadLetters === undefined ? () => {} : loop(countDeadLetters, o.tuning.deadLetterIntervalMs, 'dead-letter count');

  const host = o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
  return {
    url: `http://${host}:${port}`,
    port,
    scanner,
    refresh,
    countDeadLetters,
    async close() {
      stopped = true;
      stopRefresh();
      stopDeadLetters();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deadLetters?.close();
    },
  };
}
