/**
 * Padlock's HTTP/JSON API on node:http (a hot path: no framework). Every error
 * leaves as `{code, message, details}` with its catalogue status; bad input is a
 * 400 naming the field. Logs carry routes and counts, never user ids or keys.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { AppError, isAppError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { KEYCHAINS_PATH, LOOKUP_PATH, type CategoryKeyWire, type LookupResponse, type UserKeysWire } from '../../lib/padlock-client/protocol.ts';
import type { KeychainService, UserResult } from './keychains.ts';
import { authoriseContext, requireAdmin, type ServiceRegistry } from './services.ts';

export interface ApiOptions {
  keychains: KeychainService;
  services: ServiceRegistry;
  logger: Logger;
  maxUsersPerRequest: number;
  maxBodyBytes: number;
}

const userIdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');

const lookupSchema = z.object({
  context: z.string().min(1).max(63).optional(),
  createIfAbsent: z.boolean().optional(),
  users: z.array(z.object({ userId: userIdSchema, categories: z.array(z.string()).optional() })).min(1, 'must list at least one user'),
});

const createSchema = z.object({ userId: userIdSchema });

/** The request handler of the API. */
export function createApi(opts: ApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { keychains, services, logger } = opts;
  const known = new Set(keychains.categories);

  const checkCategory = (category: string, field: string): void => {
    if (!known.has(category)) {
      throw new AppError('CATEGORY_UNKNOWN', {
        message: `${field}: unknown data category '${category.slice(0, 64)}'`,
        details: { field, category: category.slice(0, 64), known: [...known] },
      });
    }
  };

  const lookup = async (req: IncomingMessage): Promise<string> => {
    const caller = services.authenticate(req.headers.authorization);
    const body = parse(lookupSchema, await readJson(req, opts.maxBodyBytes));
    if (body.users.length > opts.maxUsersPerRequest) {
      throw new AppError('PAYLOAD_TOO_LARGE', { message: `users: at most ${opts.maxUsersPerRequest} users per request`, details: { field: 'users' } });
    }
    const context = authoriseContext(caller, body.context);
    const users = body.users.map((u, i) => {
      if (u.categories === undefined) return { userId: u.userId, categories: keychains.categories };
      u.categories.forEach((c, j) => checkCategory(c, `users[${i}].categories[${j}]`));
      return { userId: u.userId, categories: [...new Set(u.categories)] };
    });
    const results = await keychains.lookup(context, users, body.createIfAbsent === true);
    return lookupJson(context, results);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawUrl = req.url ?? '/';
    const query = rawUrl.indexOf('?');
    const pathname = query === -1 ? rawUrl : rawUrl.slice(0, query);
    const method = req.method ?? 'GET';
    if (method === 'POST' && pathname === LOOKUP_PATH) return sendText(res, 200, await lookup(req));
    const url = { pathname };
    const parts = pathname.split('/').filter(Boolean).map((p) => safeDecode(p));
    if (method === 'GET' && url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
    if (method === 'GET' && url.pathname === '/readyz') {
      await keychains.ready();
      return send(res, 200, { status: 'ready' });
    }
    if (method === 'POST' && url.pathname === KEYCHAINS_PATH) {
      const caller = services.authenticate(req.headers.authorization);
      const { userId } = parse(createSchema, await readJson(req, opts.maxBodyBytes));
      const result = await keychains.create(userId);
      logger.info('keychain create', { service: caller.name, created: result.created });
      return send(res, result.created ? 201 : 200, { userId, status: result.created ? 'created' : 'exists', categories: Object.fromEntries(result.categories) });
    }
    // DELETE /v1/keychains/<userId>[/categories/<category>]
    if (method === 'DELETE' && parts[0] === 'v1' && parts[1] === 'keychains' && parts[2] !== undefined) {
      const caller = services.authenticate(req.headers.authorization);
      requireAdmin(caller);
      const userId = parse(userIdSchema, parts[2], 'userId');
      if (parts.length === 3) {
        await keychains.deleteUser(userId);
        logger.info('keychain deleted', { service: caller.name, scope: 'user' });
        return send(res, 200, { userId, status: 'deleted' });
      }
      if (parts.length === 5 && parts[3] === 'categories' && parts[4] !== undefined) {
        const category = parts[4];
        checkCategory(category, 'category');
        await keychains.deleteCategory(userId, category);
        logger.info('keychain category deleted', { service: caller.name, scope: 'category', category });
        return send(res, 200, { userId, category, status: 'deleted' });
      }
    }
    throw new AppError('NOT_FOUND', { message: `No route for ${method} ${url.pathname.split('/').slice(0, 3).join('/')}` });
  };

  return (req, res) => {
    const started = performance.now();
    route(req, res).then(
      () => logger.debug('request', { method: req.method, status: res.statusCode, ms: Math.round(performance.now() - started) }),
      (err: unknown) => {
        const appError = isAppError(err) ? err : new AppError('INTERNAL', { cause: err });
        if (appError.status >= 500) logger.error('request failed', { method: req.method, code: appError.code, err: isAppError(err) ? appError : err });
        else logger.info('request rejected', { method: req.method, code: appError.code });
        if (res.headersSent) return void res.destroy();
        if (appError.code === 'PAYLOAD_TOO_LARGE' || !req.complete) res.setHeader('connection', 'close');
        send(res, appError.status, appError.toJSON());
      },
    );
  };
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new AppError('BAD_REQUEST', { message: 'Path is not valid percent-encoding' });
  }
}

/**
 * The `LookupResponse` JSON, spliced from each key's precomputed JSON: on the hot
 * path this replaces a JSON.stringify of the whole response (same bytes).
 */
export function lookupJson(context: string, results: readonly UserResult[]): string {
  let out = `{"context":${JSON.stringify(context)},"users":[`;
  results.forEach((r, i) => {
    if (i > 0) out += ',';
    out += `{"userId":${JSON.stringify(r.userId)},"status":"${r.status}"`;
    if (r.status === 'found') {
      out += ',"categories":{';
      let first = true;
      for (const [name, c] of r.categories) {
        out += `${first ? '' : ','}${JSON.stringify(name)}:${c.status === 'found' ? c.key.json : `{"status":"${c.status}"}`}`;
        first = false;
      }
      out += '}';
    }
    out += '}';
  });
  return `${out}]}`;
}

/** The plain-object form of a lookup result (the reference `lookupJson` must match). */
export function toWire(context: string, results: readonly UserResult[]): LookupResponse {
  return {
    context,
    users: results.map((result): UserKeysWire => {
      if (result.status !== 'found') return { userId: result.userId, status: result.status };
      const categories: Record<string, CategoryKeyWire> = {};
      for (const [name, c] of result.categories) {
        categories[name] = c.status === 'found' ? { status: 'found', keyId: c.key.keyId, key: c.key.keyBase64 } : { status: c.status };
      }
      return { userId: result.userId, status: 'found', categories };
    }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request body as JSON: 415 if not JSON, 413 beyond `limit`, 400 if unparsable. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', { message: 'Expected content-type: application/json' });
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new AppError('PAYLOAD_TOO_LARGE', { details: { limit } });
  // Plain events rather than async iteration: this is the hot path.
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        reject(new AppError('PAYLOAD_TOO_LARGE', { details: { limit } }));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('BODY_INVALID', { message: 'Request body is not valid JSON' });
  }
}

/** Validates with zod; a failure is a 400 naming the first offending field (`users[2].userId`). */
function parse<T>(schema: z.ZodType<T>, value: unknown, root = ''): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = fieldName(root, issue?.path ?? []) || '(body)';
  throw new AppError('BODY_INVALID', { message: `${field}: ${issue?.message ?? 'invalid'}`, details: { field } });
}

function fieldName(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}
