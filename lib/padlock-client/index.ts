/**
 * The padlock client, used by the ETL and by consumers: derived keys by
 * (userId, category), cached for `cacheTtlMs`, with concurrent lookups of one
 * tick coalesced into one multi-get, and every request under a deadline.
 * Failures are AppErrors: UNAVAILABLE (retryable) when padlock is down or
 * late, the service's own code (e.g. KEY_STORE_UNAVAILABLE) otherwise.
 *
 * Padlock runs as independent deployment groups (padlock, padlock-mirror), each
 * able to take all traffic: given several URLs, a request the current group
 * can't answer (unreachable, late, 5xx, 429) goes to the next one, which then
 * stays current. Every route is safe to repeat (create-if-absent is race-free in
 * the store, deletes are idempotent). A 4xx is the answer, not a failure.
 * A user id padlock would refuse (lib/user-id.ts) is refused here with the
 * same 400 BODY_INVALID, before any request.
 */
import { AppError, errorCatalogue, isAppError, type ErrorCode } from '../errors.ts';
import {
  KEYCHAINS_PATH,
  KEYSETS_PATH,
  LOOKUP_PATH,
  authorizationHeader,
  type CreateKeychainResponse,
  type DeleteResponse,
  type KeysetsResponse,
  type LookupRequest,
  type LookupResponse,
} from './protocol.ts';
import type { Clock } from './ttl-cache.ts';
import { KeyCache } from './key-cache.ts';
import { userIdProblem } from '../user-id.ts';

export * from './protocol.ts';
export { TtlCache, type Clock } from './ttl-cache.ts';

/** A service's key for one user and category: AES-256 key plus its Tink key id (uint32). */
export interface DerivedKey {
  keyId: number;
  /** 32 bytes. */
  key: Buffer;
}

export type KeyLookup = { status: 'found'; key: DerivedKey } | { status: 'absent' } | { status: 'deleted' };

export interface KeyRequest {
  userId: string;
  category: string;
}

/** A user's Tink keysets (serialized `Keyset`, what BigQuery's AEAD functions take), by category. */
export type UserKeysets =
  | { userId: string; status: 'found'; categories: Map<string, KeysetLookup> }
  | { userId: string; status: 'absent' }
  | { userId: string; status: 'deleted' };

export type KeysetLookup = { status: 'found'; keyId: number; keyset: Buffer } | { status: 'absent' } | { status: 'deleted' };

export interface PadlockClientOptions {
  /** Base URL of padlock, e.g. `http://127.0.0.1:8090`, or of each deployment group, primary first. */
  url: string | readonly string[];
  service: string;
  secret: string;
  /** Default key context (the service's default context if absent). */
  context?: string;
  /** How long a looked-up key (or its absence / deletion) is reused. Default 2000; 0 disables the cache. */
  cacheTtlMs?: number;
  /** Bound on the users whose keys are cached. Default 100 000. */
  cacheMaxUsers?: number;
  /** Deadline of one HTTP request. Default 2000. */
  deadlineMs?: number;
  /** Users per multi-get request (larger lookups are split). Default 500. */
  maxUsersPerRequest?: number;
  /** Time source of the cache (tests). */
  clock?: Clock;
  /**
   * An identity token whose audience is a group's base URL, sent as
   * `X-Serverless-Authorization: Bearer …`: Cloud Run's IAM check reads it there
   * and leaves `Authorization` (the service credentials) to padlock.
   */
  idToken?: (audience: string) => Promise<string>;
}

export interface PadlockClient {
  /** Keys in `items` order. Cached and coalesced; `createIfAbsent` creates missing keychains (the ETL's sign-up path). */
  getKeys(items: readonly KeyRequest[], opts?: { createIfAbsent?: boolean; context?: string }): Promise<KeyLookup[]>;
  /**
   * The Tink keysets of this service's derived keys for `userIds` (every
   * personal category unless `categories` is given), in `userIds` order. Never
   * cached, never creates keys: a keys table rewritten from the answer drops a
   * shredded user as soon as padlock answers `deleted`. Split into requests of
   * `maxUsersPerRequest` users.
   */
  getKeysets(userIds: readonly string[], opts?: { categories?: readonly string[]; context?: string }): Promise<UserKeysets[]>;
  /** Create-if-absent of a user's keychain (sign-up). Rejects with KEYCHAIN_DELETED for a deleted user. */
  createKeychain(userId: string): Promise<CreateKeychainResponse>;
  /** Shreds every category of a user (admin services only); drops the user from this client's cache. */
  deleteUser(userId: string): Promise<DeleteResponse>;
  /** Shreds one category of a user (opt-out; admin services only). */
  deleteCategory(userId: string, category: string): Promise<DeleteResponse>;
  /** Lookups this client sent to padlock (for tests and metrics). */
  readonly stats: { requests: number; cacheHits: number };
}

export const clientDefaults = {
  cacheTtlMs: 2_000,
  cacheMaxUsers: 100_000,
  deadlineMs: 2_000,
  maxUsersPerRequest: 500,
} as const;

interface Waiter {
  item: KeyRequest;
  resolve(value: KeyLookup): void;
  reject(err: unknown): void;
}

/** Lookups waiting for the end of the tick, per (context, createIfAbsent). */
interface PendingBatch {
  context: string | undefined;
  createIfAbsent: boolean;
  /** Callers, each with its waiters: a 400 is answered per caller, not to everyone in the batch. */
  callers: Waiter[][];
}

const SEP = '\u0000';

/** The HTTP side of the client: one call to padlock, failing over along its deployment groups. */
type PadlockCaller = <T>(method: string, path: string, body?: unknown) => Promise<T>;

function createPadlockCaller(options: PadlockClientOptions): PadlockCaller {
  const bases = (typeof options.url === 'string' ? [options.url] : options.url).map((u) => u.replace(/\/+$/, ''));
  if (bases.length === 0) throw new AppError('CONFIG_INVALID', { message: 'Invalid configuration: padlock client needs at least one URL' });
  /** The group that answered last. */
  let current = 0;
  const auth = authorizationHeader(options.service, options.secret);
  const deadlineMs = options.deadlineMs ?? clientDefaults.deadlineMs;

  const identityHeader = async (base: string): Promise<Record<string, string>> => {
    if (options.idToken === undefined) return {};
    try {
      return { 'x-serverless-authorization': `Bearer ${await options.idToken(base)}` };
    } catch (cause) {
      throw new AppError('UNAVAILABLE', { message: 'No identity token for padlock', details: { reason: 'id-token' }, cause });
    }
  };

  const callGroup = async <T>(base: string, method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: auth, ...(await identityHeader(base)), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(deadlineMs),
      });
    } catch (cause) {
      if (isAppError(cause)) throw cause;
      const timedOut = (cause as { name?: string }).name === 'TimeoutError';
      throw new AppError('UNAVAILABLE', {
        message: timedOut ? `Padlock did not answer within ${deadlineMs} ms` : 'Padlock is unreachable',
        details: { reason: timedOut ? 'deadline' : 'unreachable' },
        cause,
      });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (cause) {
      throw new AppError('UNAVAILABLE', { message: 'Padlock response was cut', details: { reason: 'deadline' }, cause });
    }
    if (res.ok) return JSON.parse(text) as T;
    throw errorFromResponse(res.status, text);
  };

  /** `callGroup` on the current group, then on each other group while they fail over. */
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let failure: AppError | undefined;
    for (let attempt = 0; attempt < bases.length; attempt++) {
      const group = (current + attempt) % bases.length;
      try {
        const result = await callGroup<T>(bases[group]!, method, path, body);
        current = group;
        return result;
      } catch (err) {
        if (!failsOver(err)) throw err;
        failure = err;
      }
    }
    if (bases.length === 1) throw failure!;
    throw new AppError(failure!.code, { message: `${failure!.message} (every padlock group failed: ${bases.length})`, details: failure!.details, cause: failure });
  };

  return call;
}

/** Each asked (user, category) of a lookup response, as `userId SEP category` → its lookup. */
function collectLookups(response: LookupResponse, byUser: ReadonlyMap<string, ReadonlySet<string>>, results: Map<string, KeyLookup>): void {
  for (const u of response.users) {
    for (const category of byUser.get(u.userId) ?? []) {
      let result: KeyLookup;
      if (u.status !== 'found') result = { status: u.status };
      else {
        // The category is one this client asked for; an inherited name must not read as an answer.
        const c = Object.hasOwn(u.categories, category) ? u.categories[category] : undefined;
        result = c?.status === 'found' ? { status: 'found', key: { keyId: c.keyId, key: Buffer.from(c.key, 'base64') } } : { status: c?.status ?? 'absent' };
      }
      results.set(`${u.userId}${SEP}${category}`, result);
    }
  }
}

export function createPadlockClient(options: PadlockClientOptions): PadlockClient {
  const call = createPadlockCaller(options);
  const ttl = options.cacheTtlMs ?? clientDefaults.cacheTtlMs;
  const maxUsers = options.maxUsersPerRequest ?? clientDefaults.maxUsersPerRequest;
  const clock = options.clock ?? Date.now;
  const cache = new KeyCache<KeyLookup>(ttl > 0 ? (options.cacheMaxUsers ?? clientDefaults.cacheMaxUsers) : 0, clock);
  /** Lookups on the wire, so a later tick asking for the same key joins them. */
  const inflight = new Map<string, Promise<KeyLookup>>();
  const pending = new Map<string, PendingBatch>();
  let flushScheduled = false;
  const stats = { requests: 0, cacheHits: 0 };

  const lookupBatch = async (batch: PendingBatch, waiters: Waiter[]): Promise<void> => {
    const byUser = new Map<string, Set<string>>();
    for (const w of waiters) {
      const set = byUser.get(w.item.userId) ?? new Set<string>();
      set.add(w.item.category);
      byUser.set(w.item.userId, set);
    }
    const users = [...byUser].map(([userId, categories]) => ({ userId, categories: [...categories].sort() }));
    const requestedAt = clock();
    const results = new Map<string, KeyLookup>();
    let context = batch.context;
    for (let i = 0; i < users.length; i += maxUsers) {
      const request: LookupRequest = {
        ...usersForm(users.slice(i, i + maxUsers)),
        ...(batch.context ? { context: batch.context } : {}),
        ...(batch.createIfAbsent ? { createIfAbsent: true } : {}),
      };
      stats.requests++;
      const response = await call<LookupResponse>('POST', LOOKUP_PATH, request);
      context = response.context;
      collectLookups(response, byUser, results);
    }
    for (const w of waiters) {
      const result = results.get(`${w.item.userId}${SEP}${w.item.category}`) ?? { status: 'absent' };
      // Cached until TTL after the request *started*: with padlock's own TTL this bounds deletion propagation.
      cache.set(batch.context ?? '', w.item.userId, w.item.category, result, requestedAt + ttl);
      if (context !== batch.context) cache.set(context ?? '', w.item.userId, w.item.category, result, requestedAt + ttl);
      w.resolve(result);
    }
  };

  const flush = (): void => {
    flushScheduled = false;
    const batches = [...pending.values()];
    pending.clear();
    for (const batch of batches) {
      const all = batch.callers.flat();
      lookupBatch(batch, all).catch(async (err: unknown) => {
        // A 400 (e.g. an unknown category) or a refusal naming one user (KEY_UNREADABLE) belongs to one
        // caller: ask again per caller so the others get their keys.
        if (err instanceof AppError && (err.status === 400 || err.code === 'KEY_UNREADABLE') && batch.callers.length > 1) {
          for (const waiters of batch.callers) await lookupBatch(batch, waiters).catch((e: unknown) => waiters.forEach((w) => w.reject(e)));
        } else {
          for (const w of all) w.reject(err);
        }
      });
    }
  };

  const getKeys: PadlockClient['getKeys'] = (items, opts = {}) => {
    for (let i = 0; i < items.length; i++) {
      const problem = userIdProblem(items[i]!.userId);
      // Refused here, for this caller alone: padlock would refuse the whole multi-get it joined.
      if (problem !== undefined) return Promise.reject(invalidUserId(`items[${i}].userId`, problem));
    }
    const context = opts.context ?? options.context;
    const createIfAbsent = opts.createIfAbsent === true;
    /** The context as the cache and the in-flight lookups name it ('' for the service's default). */
    const contextKey = context ?? '';
    const batchKey = `${contextKey}${SEP}${createIfAbsent}`;
    const waiters: Waiter[] = [];
    // Cache hits are answered in place: a batch of hot keys costs no promise per key.
    const results = new Array<KeyLookup>(items.length);
    const misses: Promise<void>[] = [];
    const now = clock();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const cached = cache.get(contextKey, item.userId, item.category, now);
      // A cached absence does not answer a create-if-absent.
      if (cached !== undefined && !(createIfAbsent && cached.status === 'absent')) {
        stats.cacheHits++;
        results[i] = cached;
        continue;
      }
      const flightKey = `${contextKey}${SEP}${item.userId}${SEP}${item.category}${SEP}${createIfAbsent}`;
      let promise = inflight.get(flightKey);
      if (promise === undefined) {
        const started = new Promise<KeyLookup>((resolve, reject) => waiters.push({ item, resolve, reject }));
        inflight.set(flightKey, started);
        const done = (): void => {
          if (inflight.get(flightKey) === started) inflight.delete(flightKey);
        };
        started.then(done, done);
        promise = started;
      }
      misses.push(promise.then((result) => void (results[i] = result)));
    }
    if (waiters.length > 0) {
      const batch = pending.get(batchKey) ?? { context, createIfAbsent, callers: [] };
      batch.callers.push(waiters);
      pending.set(batchKey, batch);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    }
    return misses.length === 0 ? Promise.resolve(results) : Promise.all(misses).then(() => results);
  };

  const getKeysets = (userIds: readonly string[], opts: { categories?: readonly string[]; context?: string } = {}): Promise<UserKeysets[]> =>
    fetchKeysets(call, userIds, opts, maxUsers, stats);

  return {
    getKeys,
    getKeysets,
    stats,
    async createKeychain(userId) {
      checkUserId(userId);
      return call<CreateKeychainResponse>('POST', KEYCHAINS_PATH, { userId });
    },
    async deleteUser(userId) {
      checkUserId(userId);
      const res = await call<DeleteResponse>('DELETE', `${KEYCHAINS_PATH}/${encodeURIComponent(userId)}`);
      cache.forget(userId);
      return res;
    },
    async deleteCategory(userId, category) {
      checkUserId(userId);
      const res = await call<DeleteResponse>('DELETE', `${KEYCHAINS_PATH}/${encodeURIComponent(userId)}/categories/${encodeURIComponent(category)}`);
      cache.forget(userId);
      return res;
    },
  };
}

/** `getKeysets`: the users' keysets, `maxUsers` per request, in the order asked. */
async function fetchKeysets(
  call: PadlockCaller,
  userIds: readonly string[],
  opts: { categories?: readonly string[]; context?: string },
  maxUsers: number,
  stats: { requests: number },
): Promise<UserKeysets[]> {
  userIds.forEach((userId, i) => {
    const problem = userIdProblem(userId);
    if (problem !== undefined) throw invalidUserId(`userIds[${i}]`, problem);
  });
  const out: UserKeysets[] = [];
  for (let i = 0; i < userIds.length; i += maxUsers) {
    const batch = userIds.slice(i, i + maxUsers);
    stats.requests++;
    const res = await call<KeysetsResponse>('POST', KEYSETS_PATH, {
      ...(opts.context === undefined ? {} : { context: opts.context }),
      userIds: batch,
      ...(opts.categories === undefined ? {} : { categories: [...opts.categories] }),
    });
    if (res.users.length !== batch.length || res.users.some((u, j) => u.userId !== batch[j])) {
      throw new AppError('INTERNAL', { message: 'Padlock answered keysets for other users than asked' });
    }
    for (const u of res.users) out.push(keysetsOf(u));
  }
  return out;
}

/** One user of a keysets response, keysets decoded. */
function keysetsOf(u: KeysetsResponse['users'][number]): UserKeysets {
  if (u.status !== 'found') return { userId: u.userId, status: u.status };
  const categories = new Map<string, KeysetLookup>();
  for (const [name, c] of Object.entries(u.categories)) {
    categories.set(name, c.status === 'found' ? { status: 'found', keyId: c.keyId, keyset: Buffer.from(c.keyset, 'base64') } : { status: c.status });
  }
  return { userId: u.userId, status: 'found', categories };
}

/** 400 BODY_INVALID naming the field, as padlock answers it. */
function invalidUserId(field: string, problem: string): AppError {
  return new AppError('BODY_INVALID', { message: `${field}: ${problem}`, details: { field } });
}

/** A user id padlock would refuse (lib/user-id.ts) is refused before any request. */
function checkUserId(userId: string): void {
  const problem = userIdProblem(userId);
  if (problem !== undefined) throw invalidUserId('userId', problem);
}

/** The users of one request: as `userIds` with their shared categories when all ask the same (the usual batch), else each with its own. */
export function usersForm(users: readonly { userId: string; categories: string[] }[]): { userIds: string[]; categories: string[] } | { users: { userId: string; categories: string[] }[] } {
  const shared = users[0]?.categories;
  const same = shared !== undefined && users.every((u) => u.categories.length === shared.length && u.categories.every((c, i) => c === shared[i]));
  return same ? { userIds: users.map((u) => u.userId), categories: shared } : { users: [...users] };
}

/** Whether another deployment group may answer where this one failed: down, late, 5xx or 429, not a 4xx verdict. */
function failsOver(err: unknown): err is AppError {
  if (!isAppError(err) || !err.retryable) return false;
  const status = err.details?.status;
  return typeof status !== 'number' || status >= 500 || status === 429;
}

/** The AppError of a non-2xx answer: the service's catalogue code when it sent one. */
function errorFromResponse(status: number, text: string): AppError {
  let body: { code?: unknown; message?: unknown; details?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not our JSON (a proxy?): classify by status below.
  }
  const code = typeof body.code === 'string' && Object.hasOwn(errorCatalogue, body.code) ? (body.code as ErrorCode) : status >= 500 ? 'UNAVAILABLE' : 'INTERNAL';
  return new AppError(code, {
    ...(typeof body.message === 'string' ? { message: body.message } : {}),
    details: { status, ...(typeof body.details === 'object' && body.details !== null ? (body.details as Record<string, unknown>) : {}) },
  });
}
