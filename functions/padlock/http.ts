/**
 * Padlock's HTTP/JSON API on node:http and the shared toolkit (lib/http; a hot
 * path: no framework). Every error leaves as `{code, message, details}` with
 * its catalogue status; bad input is a 400 naming the field. Logs carry routes
 * and counts, never user ids or keys.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, isAppError } from '../../lib/errors.ts';
import {
  ABORTED,
  answerHealth,
  JSON_MEDIA_TYPE,
  parseJsonBody,
  readBody,
  readJsonBody,
  requireMediaType,
  sendAsciiJson,
  sendError,
  sendJson,
  type BodyOutcome,
} from '../../lib/http/index.ts';
import type { Logger } from '../../lib/logger.ts';
import {
  KEYCHAINS_PATH,
  KEYSETS_PATH,
  LOOKUP_PATH,
  type CategoryKeysetWire,
  type CategoryKeyWire,
  type KeysetsResponse,
  type LookupResponse,
  type UserKeysetsWire,
  type UserKeysWire,
} from '../../lib/padlock-client/protocol.ts';
import { tinkKeyset } from '../../lib/crypto/aead.ts';
import type { KeychainService, LookupUser, UserResult } from './keychains.ts';
import { userIdProblem } from '../../lib/user-id.ts';
import { parseLookupBody, type LookupBody } from './lookup-body.ts';
import { assembleLookup, lookupJson, lookupPrefix } from './lookup-json.ts';
import { authoriseContext, requireAdmin, type Caller, type ServiceRegistry } from './services.ts';

export { lookupJson } from './lookup-json.ts';

export interface ApiOptions {
  keychains: KeychainService;
  services: ServiceRegistry;
  logger: Logger;
  maxUsersPerRequest: number;
  maxBodyBytes: number;
}

/** A user id (lib/user-id.ts): 400 naming the field otherwise. */
function checkedUserId(value: unknown, field: string): string {
  const problem = userIdProblem(value);
  if (problem !== undefined) throw new AppError('BODY_INVALID', { message: `${field}: ${problem}`, details: { field } });
  return value as string;
}

/** The request handler of the API. */
export function createApi(opts: ApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const api = new Api(opts);
  return (req, res) => {
    const url = req.url;
    if (req.method === 'POST' && url !== undefined && url.startsWith(LOOKUP_PATH) && (url.length === LOOKUP_PATH.length || url[LOOKUP_PATH.length] === '?')) {
      api.startLookup(req, res);
      return;
    }
    const started = performance.now();
    api.route(req, res).then(
      () => api.done(req, res, started),
      (err: unknown) => api.fail(req, res, err),
    );
  };
}

/** Per-request state of a lookup, hung on the request so its listeners are shared functions, not closures. */
const LOOKUP = Symbol('padlock.lookup');
type LookupRequest = IncomingMessage & { [LOOKUP]?: LookupCall };

interface LookupCall {
  api: Api;
  res: ServerResponse;
  caller: Caller;
  started: number;
}

/** How reading a lookup's body ended (lib/http's readBody): answer it, refuse it, or nothing (the client left). */
function onLookupBody(req: LookupRequest, outcome: BodyOutcome): void {
  const call = req[LOOKUP]!;
  if (outcome === ABORTED) return;
  if (outcome instanceof AppError) call.api.fail(req, call.res, outcome);
  else call.api.answerLookup(req, call, outcome);
}

/** The routes, with what they share. */
class Api {
  private readonly keychains: KeychainService;
  private readonly services: ServiceRegistry;
  private readonly logger: Logger;
  private readonly known: ReadonlySet<string>;
  private readonly maxUsersPerRequest: number;
  readonly maxBodyBytes: number;
  private readonly prefixes = new Map<string, string>();

  constructor(opts: ApiOptions) {
    this.keychains = opts.keychains;
    this.services = opts.services;
    this.logger = opts.logger;
    this.known = new Set(opts.keychains.categories);
    this.maxUsersPerRequest = opts.maxUsersPerRequest;
    this.maxBodyBytes = opts.maxBodyBytes;
  }

  /**
   * `POST /v1/keys/lookup`, the hot path: authenticated from the header (cached),
   * body read with shared listeners (no closure per request), and answered
   * synchronously, in one write, when every user is in the cache; otherwise
   * through the store.
   */
  startLookup(req: LookupRequest, res: ServerResponse): void {
    const started = performance.now();
    let caller: Caller;
    try {
      caller = this.services.authenticate(req.headers.authorization);
      requireMediaType(req, JSON_ONLY);
    } catch (err) {
      this.fail(req, res, err);
      return;
    }
    req[LOOKUP] = { api: this, res, caller, started };
    // Nothing to release when a client leaves mid-body: no abort listener on the hot path.
    readBody(req, this.maxBodyBytes, onLookupBody, false);
  }

  answerLookup(req: LookupRequest, call: LookupCall, body: Buffer): void {
    const { res } = call;
    let context: string;
    let users: LookupUser[];
    let createIfAbsent: boolean;
    let listed: 'users' | 'userIds';
    try {
      const lookup = parseLookupBody(parseJsonBody(body));
      listed = lookup.userIds === undefined ? 'users' : 'userIds';
      if ((lookup.userIds ?? lookup.users).length > this.maxUsersPerRequest) {
        throw new AppError('PAYLOAD_TOO_LARGE', { message: `${listed}: at most ${this.maxUsersPerRequest} users per request`, details: { field: listed } });
      }
      context = authoriseContext(call.caller, lookup.context);
      users = this.lookupUsers(lookup);
      createIfAbsent = lookup.createIfAbsent === true;
      const cached = this.keychains.lookupRendered(context, users, createIfAbsent);
      if (cached !== undefined) {
        sendAsciiJson(res, 200, assembleLookup(this.prefix(context), cached));
        this.done(req, res, call.started);
        return;
      }
    } catch (err) {
      this.fail(req, res, err);
      return;
    }
    this.keychains.lookup(context, users, createIfAbsent).then(
      (results) => {
        sendAsciiJson(res, 200, lookupJson(context, results));
        this.done(req, res, call.started);
      },
      (err: unknown) => this.fail(req, res, namingUser(err, listed)),
    );
  }

  /** The response prefix of `context` (contexts are the configured ones: bounded). */
  private prefix(context: string): string {
    let prefix = this.prefixes.get(context);
    if (prefix === undefined) this.prefixes.set(context, (prefix = lookupPrefix(context)));
    return prefix;
  }

  /**
   * Each user with the categories to look up: all if unlisted, else the listed
   * ones (known, without repeats). Users sharing a list share one checked array
   * (the cache keys responses by it): all of the `userIds` form, and in the
   * `users` form a user listing the same categories as the one before.
   */
  private lookupUsers(body: LookupBody): LookupUser[] {
    if (body.userIds !== undefined) {
      const categories = body.categories === undefined ? this.keychains.categories : this.checkedCategories(body.categories, 'categories');
      return body.userIds.map((userId) => ({ userId, categories }));
    }
    const out = new Array<LookupUser>(body.users.length);
    let listed: readonly string[] | undefined;
    let checked: readonly string[] = this.keychains.categories;
    for (let i = 0; i < body.users.length; i++) {
      const { userId, categories } = body.users[i]!;
      if (categories === undefined) {
        out[i] = { userId, categories: this.keychains.categories };
        continue;
      }
      if (listed === undefined || !sameList(categories, listed)) {
        listed = categories;
        checked = this.checkedCategories(categories, `users[${i}].categories`);
      }
      out[i] = { userId, categories: checked };
    }
    return out;
  }

  /** `categories` if all are known (400 naming the first unknown one otherwise), without repeats. */
  private checkedCategories(categories: readonly string[], field: string): readonly string[] {
    for (let j = 0; j < categories.length; j++) {
      const category = categories[j]!;
      if (!this.known.has(category)) this.unknownCategory(category, `${field}[${j}]`);
    }
    return withoutRepeats(categories);
  }

  private unknownCategory(category: string, field: string): never {
    throw new AppError('CATEGORY_UNKNOWN', {
      message: `${field}: unknown data category '${category.slice(0, 64)}'`,
      details: { field, category: category.slice(0, 64), known: [...this.known] },
    });
  }

  /** Every route but the lookup (not hot). */
  async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { keychains, services, logger } = this;
    const rawUrl = req.url ?? '/';
    const query = rawUrl.indexOf('?');
    const pathname = query === -1 ? rawUrl : rawUrl.slice(0, query);
    const method = req.method ?? 'GET';
    const parts = pathname.split('/').filter(Boolean).map((p) => safeDecode(p));
    if (answerHealth(req, res, pathname, () => keychains.ready().then(() => undefined))) return;
    if (method === 'POST' && pathname === KEYSETS_PATH) return this.keysets(req, res);
    if (method === 'POST' && pathname === KEYCHAINS_PATH) {
      const caller = services.authenticate(req.headers.authorization);
      const body = await readJsonBody(req, this.maxBodyBytes);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError('BODY_INVALID', { message: '(body): expected an object {"userId": …}', details: { field: '(body)' } });
      const userId = checkedUserId((body as { userId?: unknown }).userId, 'userId');
      const result = await keychains.create(userId);
      logger.info('keychain create', { service: caller.name, created: result.created });
      return sendJson(res, result.created ? 201 : 200, { userId, status: result.created ? 'created' : 'exists', categories: Object.fromEntries(result.categories) });
    }
    // DELETE /v1/keychains/<userId>[/categories/<category>]
    if (method === 'DELETE' && parts[0] === 'v1' && parts[1] === 'keychains' && parts[2] !== undefined) {
      const caller = services.authenticate(req.headers.authorization);
      requireAdmin(caller);
      const userId = checkedUserId(parts[2], 'userId');
      if (parts.length === 3) {
        await keychains.deleteUser(userId);
        logger.info('keychain deleted', { service: caller.name, scope: 'user' });
        return sendJson(res, 200, { userId, status: 'deleted' });
      }
      if (parts.length === 5 && parts[3] === 'categories' && parts[4] !== undefined) {
        const category = parts[4];
        if (!this.known.has(category)) this.unknownCategory(category, 'category');
        await keychains.deleteCategory(userId, category);
        logger.info('keychain category deleted', { service: caller.name, scope: 'category', category });
        return sendJson(res, 200, { userId, category, status: 'deleted' });
      }
    }
    throw new AppError('NOT_FOUND', { message: `No route for ${method} ${pathname.split('/').slice(0, 3).join('/')}` });
  }

  /**
   * `POST /v1/keys/keysets`: a lookup whose found keys are answered as Tink
   * keysets, for a consumer's BigQuery keys table. Authorised like a lookup
   * (the caller's contexts: derived keys only, never a root key); it never
   * creates keys, so asking for a user cannot give them a keychain.
   */
  private async keysets(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const caller = this.services.authenticate(req.headers.authorization);
    const body = parseLookupBody(await readJsonBody(req, this.maxBodyBytes));
    if (body.createIfAbsent !== undefined) {
      throw new AppError('BODY_INVALID', { message: 'createIfAbsent: keysets are served for existing keys only', details: { field: 'createIfAbsent' } });
    }
    const listed = body.userIds === undefined ? 'users' : 'userIds';
    if ((body.userIds ?? body.users).length > this.maxUsersPerRequest) {
      throw new AppError('PAYLOAD_TOO_LARGE', { message: `${listed}: at most ${this.maxUsersPerRequest} users per request`, details: { field: listed } });
    }
    const context = authoriseContext(caller, body.context);
    const users = this.lookupUsers(body);
    const results = await this.keychains.lookup(context, users, false).catch((err: unknown) => {
      throw namingUser(err, listed);
    });
    this.logger.info('keysets served', { service: caller.name, users: users.length });
    sendJson(res, 200, toKeysetsWire(context, results));
  }

  done(req: IncomingMessage, res: ServerResponse, started: number): void {
    this.logger.debug('request', { method: req.method, status: res.statusCode, ms: Math.round(performance.now() - started) });
  }

  /** The error answer (lib/http's sendError: `{code, message, details}` with the catalogue status), logged without user data. */
  fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const appError = sendError(req, res, err);
    if (appError.status >= 500) this.logger.error('request failed', { method: req.method, code: appError.code, err: isAppError(err) ? appError : err });
    else this.logger.info('request rejected', { method: req.method, code: appError.code });
  }
}

/** A KEY_UNREADABLE error naming the request field of its user (`userIds[3]`, `users[0].userId`), without the id. */
function namingUser(err: unknown, listed: 'users' | 'userIds'): unknown {
  const index = isAppError(err) && err.code === 'KEY_UNREADABLE' ? err.details?.userIndex : undefined;
  if (typeof index !== 'number') return err;
  const field = listed === 'userIds' ? `userIds[${index}]` : `users[${index}].userId`;
  return new AppError('KEY_UNREADABLE', {
    message: `${field}: the stored root key of this user does not unwrap under the key-encryption key; no key can be served for it`,
    details: { field },
  });
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `categories` itself when it has no repeats (the usual case), else its distinct values in order. */
function withoutRepeats(categories: readonly string[]): readonly string[] {
  for (let j = 1; j < categories.length; j++) {
    for (let k = 0; k < j; k++) if (categories[k] === categories[j]) return [...new Set(categories)];
  }
  return categories;
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new AppError('BAD_REQUEST', { message: 'Path is not valid percent-encoding' });
  }
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

/** A lookup result with each found key as its serialized Tink keyset (base64). */
export function toKeysetsWire(context: string, results: readonly UserResult[]): KeysetsResponse {
  return {
    context,
    users: results.map((result): UserKeysetsWire => {
      if (result.status !== 'found') return { userId: result.userId, status: result.status };
      const categories: Record<string, CategoryKeysetWire> = {};
      for (const [name, c] of result.categories) {
        categories[name] = c.status === 'found' ? { status: 'found', keyId: c.key.keyId, keyset: tinkKeyset(c.key).toString('base64') } : { status: c.status };
      }
      return { userId: result.userId, status: 'found', categories };
    }),
  };
}

const JSON_ONLY = [JSON_MEDIA_TYPE];
