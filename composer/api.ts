/**
 * The composer's REST API (express 5). Every route needs `Authorization:
 * Bearer <token>`; the token names the team (config `tokens`). Only the owning
 * team may change a type (403 NOT_OWNER). Errors are `{code, message,
 * details}` (lib/errors.ts).
 *
 * | method | path | does |
 * |---|---|---|
 * | PUT | /v1/event-types/:name | create or update from a spec (JSON, or YAML with `Content-Type: application/yaml`); `?force=true` allows making a personal field non-personal |
 * | GET | /v1/event-types | list (summaries) |
 * | GET | /v1/event-types/:name | the registry record |
 * | POST | /v1/event-types/:name/deprecate | deprecate (also `DELETE /v1/event-types/:name`) |
 * | GET | /v1/event-types/:name/versions | schema versions |
 * | POST | /v1/event-types/:name/compatibility | check `{schema}` against the type, registering nothing |
 * | GET | /v1/event-types/:name/provisioning | provisioning status |
 * | POST | /v1/event-types/:name/reconcile | re-run provisioning |
 * | POST | /v1/shred-reports | the shred report of `{userId}`, privacy team only, when configured (shred-report/http.ts) |
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { AppError, isAppError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import { currentVersion, type AvroSchemaJson, type EventTypeRecord } from '../lib/registry/types.ts';
import type { Composer } from './composer.ts';
import { shredReportHandler, type ShredReportEndpoint } from './shred-report/http.ts';
import { parseSpecText, validateSpec } from './spec.ts';
import { TeamTokens } from './team-tokens.ts';

export interface ApiOptions {
  composer: Composer;
  /** Bearer token → team. */
  tokens: ReadonlyMap<string, string>;
  bodyLimit?: string;
  logger?: Logger;
  /** Serves `POST /v1/shred-reports` when given. */
  shredReport?: ShredReportEndpoint;
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

/** A summary line of a type, for lists. */
export function summaryOf(r: EventTypeRecord): Record<string, unknown> {
  const v = currentVersion(r);
  return {
    name: r.settings.name,
    owner: r.settings.owner,
    priority: r.settings.priority,
    status: r.status,
    version: v.version,
    fingerprint: v.fingerprint,
    provisioning: r.provisioning.state,
    updatedAt: r.updatedAt,
  };
}

export function createComposerApp(options: ApiOptions): express.Express {
  const { composer } = options;
  const tokens = new TeamTokens(options.tokens);
  const logger = options.logger ?? silentLogger;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const limit = options.bodyLimit ?? '1mb';

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const v1 = express.Router();
  v1.use((req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const team = match?.[1] === undefined ? undefined : tokens.teamOf(match[1]);
    if (team === undefined) {
      next(new AppError('UNAUTHENTICATED', { message: 'a valid bearer token is required (Authorization: Bearer <token>)' }));
      return;
    }
    res.locals.team = team;
    next();
  });
  v1.use(express.json({ limit, type: ['application/json', 'application/*+json'] }));
  v1.use(express.text({ limit, type: YAML_TYPES }));

  const teamOf = (res: Response): string => String(res.locals.team);

  v1.put('/event-types/:name', async (req, res) => {
    const name = req.params.name as string;
    const raw = bodyObject(req);
    const force = req.query.force === 'true' || raw.force === true;
    delete raw.force;
    if (raw.name === undefined) raw.name = name;
    if (raw.name !== name) throw new AppError('SPEC_INVALID', { message: `spec name ${JSON.stringify(raw.name)} does not match the URL's ${name}`, details: { problems: [{ file: '<request>', path: 'name', rule: 'name-matches-url', message: 'name must match the URL' }] } });
    const result = await validateSpec(raw, { catalogue: composer.catalogue });
    if (!result.ok) {
      throw new AppError('SPEC_INVALID', { message: `spec is not valid: ${result.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, details: { problems: result.problems } });
    }
    const applied = await composer.apply(result.spec, { team: teamOf(res), force });
    res.status(applied.action === 'create' ? 201 : 200).json({
      eventType: applied.eventType,
      action: applied.action,
      details: applied.details,
      ...(applied.newVersion === undefined ? {} : { newVersion: applied.newVersion }),
      changes: applied.changes,
      record: applied.record,
    });
  });

  v1.get('/event-types', async (_req, res) => {
    const records = await composer.registry.listEventTypes();
    res.json({ eventTypes: records.map(summaryOf) });
  });

  v1.get('/event-types/:name', async (req, res) => {
    res.json(await composer.get(req.params.name as string));
  });

  const deprecate = async (req: Request, res: Response): Promise<void> => {
    const result = await composer.deprecate(req.params.name as string, { team: teamOf(res) });
    res.json({ eventType: result.eventType, status: result.record.status, provisioning: result.record.provisioning, changes: result.changes });
  };
  v1.post('/event-types/:name/deprecate', deprecate);
  v1.delete('/event-types/:name', deprecate);

  v1.get('/event-types/:name/versions', async (req, res) => {
    const r = await composer.get(req.params.name as string);
    res.json({ eventType: r.settings.name, versions: r.versions });
  });

  v1.post('/event-types/:name/compatibility', async (req, res) => {
    const body = bodyObject(req);
    const schema = body.schema;
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new AppError('BODY_INVALID', { message: 'expected {"schema": <Avro record schema>}' });
    }
    res.json(await composer.checkCandidate(req.params.name as string, schema as AvroSchemaJson, { force: body.force === true }));
  });

  v1.get('/event-types/:name/provisioning', async (req, res) => {
    const r = await composer.get(req.params.name as string);
    res.json({ eventType: r.settings.name, status: r.status, provisioning: r.provisioning });
  });

  v1.post('/event-types/:name/reconcile', async (req, res) => {
    const name = req.params.name as string;
    const r = await composer.get(name);
    if (r.settings.owner !== teamOf(res)) throw new AppError('NOT_OWNER', { details: { eventType: name, team: teamOf(res) } });
    const result = await composer.reconcile(name);
    res.json({ eventType: name, changes: result.changes, provisioning: result.record.provisioning });
  });

  if (options.shredReport !== undefined) v1.post('/shred-reports', shredReportHandler(options.shredReport, teamOf));

  app.use('/v1', v1);
  app.use((_req, _res, next) => next(new AppError('NOT_FOUND', { message: 'no such route' })));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const appErr = toHttpError(err);
    if (appErr.status >= 500) logger.error('request failed', { err });
    res.status(appErr.status).json(appErr.toJSON());
  });
  return app;
}

/** The request body as a plain object: JSON, or YAML text parsed here. */
function bodyObject(req: Request): Record<string, unknown> {
  let body: unknown = req.body;
  if (typeof body === 'string') {
    const parsed = parseSpecText(body);
    if (!parsed.ok) throw new AppError('BODY_INVALID', { message: parsed.problems[0]?.message ?? 'body is not valid YAML', details: { problems: parsed.problems } });
    body = parsed.value;
  }
  if (body === undefined) {
    if (req.get('content-type') === undefined) throw new AppError('BODY_INVALID', { message: 'a body is required (application/json or application/yaml)' });
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', { message: `unsupported content type ${req.get('content-type')}; use application/json or application/yaml` });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError('BODY_INVALID', { message: 'the body must be an object' });
  return { ...(body as Record<string, unknown>) };
}

/** Maps body-parser and other errors to the catalogue. */
function toHttpError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: unknown; status?: unknown } | undefined;
  if (e?.type === 'entity.parse.failed') return new AppError('BODY_INVALID', { message: 'body is not valid JSON' });
  if (e?.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new AppError('UNSUPPORTED_MEDIA_TYPE');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new AppError('BAD_REQUEST', { message: err instanceof Error ? err.message : 'bad request' });
  return new AppError('INTERNAL', { cause: err });
}
