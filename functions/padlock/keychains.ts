/**
 * The key service's core, without HTTP: resolves keychains through a bounded
 * TTL cache and the store, creates missing root keys (CSPRNG, wrapped by the
 * KEK), derives per-context keys, and shreds on delete. Unwrapped root keys
 * stay inside this module; only derived keys leave it.
 */
import { randomBytes } from 'node:crypto';
import { AppError, isAppError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { TtlCache, type Clock } from '../../lib/padlock-client/ttl-cache.ts';
import { deriveKey, type DerivedKey } from './derive.ts';
import { wrapAad, type Kek } from './kek.ts';
import type { KeyStore, StoredKeychain } from './store.ts';

export interface KeychainServiceOptions {
  store: KeyStore;
  kek: Kek;
  /** Known data categories (personal categories of the semantic-type catalogue). */
  categories: readonly string[];
  /** How long a keychain read from the store may be served from memory. */
  cacheTtlMs: number;
  /** Bound on cached users. */
  cacheMaxUsers: number;
  /** Deadline of every store call; beyond it the request fails with KEY_STORE_UNAVAILABLE. */
  storeDeadlineMs: number;
  logger: Logger;
  /**
   * How the HTTP layer writes one user's element of a lookup answer. The
   * service keeps each rendered element with the cached keychain (the hot path
   * then splices cached elements instead of serializing), but never looks inside.
   */
  renderUser: RenderUser;
  clock?: Clock;
}

/** Renders one user's lookup result for the wire. */
export type RenderUser = (result: UserResult) => string;

/** A derived key with its base64 form computed once. */
export interface ServedKey extends DerivedKey {
  keyBase64: string;
}

/** A user of a lookup, with the categories to look up. */
export interface LookupUser {
  userId: string;
  categories: readonly string[];
}

export type CategoryResult = { status: 'found'; key: ServedKey } | { status: 'absent' } | { status: 'deleted' };

export type UserResult =
  | { userId: string; status: 'found'; categories: Map<string, CategoryResult> }
  | { userId: string; status: 'absent' }
  | { userId: string; status: 'deleted' };

interface ActiveCategory {
  state: 'active';
  wrapped: Buffer;
  /** The unwrapped root key, once needed; never leaves this module. */
  rootKey?: Buffer;
  unwrapping?: Promise<Buffer> | undefined;
  /** Derived keys by context. */
  derived: Map<string, ServedKey>;
}
type CachedCategory = ActiveCategory | { state: 'deleted' };
/**
 * When a cached keychain that is still being asked for is read again, in the
 * background: halfway through its TTL. A hot user then never waits for the
 * store, and the entry read afresh still expires TTL after *that* read started,
 * so the deletion bound holds.
 */
interface Refresh {
  refreshAt: number;
  refreshing: boolean;
}
interface ActiveKeychain extends Refresh {
  state: 'active';
  categories: Map<string, CachedCategory>;
  /**
   * This user's rendered element of lookup responses (`renderUser`), by context and categories asked.
   * It hangs on the cached keychain, so it lives and dies with it: same TTL,
   * same LRU bound, gone with the entry on every delete.
   */
  responses?: Map<string, string>;
}
type CachedKeychain = ({ state: 'absent' } & Refresh) | ({ state: 'deleted' } & Refresh) | ActiveKeychain;

/** Bound on cached response elements per user (contexts x category lists asked). */
export const RESPONSES_PER_USER_MAX = 16;

export interface CreateResult {
  created: boolean;
  categories: Map<string, 'active' | 'deleted'>;
}

export class KeychainService {
  private readonly cache: TtlCache<string, CachedKeychain>;
  private readonly clock: Clock;
  /** Bumped by every delete: a store read that overlapped one is not cached. */
  private deleteEpoch = 0;
  /** Store reads in flight, by user. */
  private readonly reading = new Map<string, Promise<CachedKeychain>>();

  constructor(private readonly opts: KeychainServiceOptions) {
    this.clock = opts.clock ?? Date.now;
    this.cache = new TtlCache(opts.cacheMaxUsers, this.clock);
  }

  get categories(): readonly string[] {
    return this.opts.categories;
  }

  /** Derived keys of `context` for each user's categories, in request order. */
  async lookup(context: string, users: readonly LookupUser[], createIfAbsent: boolean): Promise<UserResult[]> {
    const keychains = await this.resolve([...new Set(users.map((u) => u.userId))]);
    if (createIfAbsent) {
      const incomplete = [...keychains].filter(([, k]) => k.state === 'absent' || (k.state === 'active' && this.missing(k).length > 0));
      await Promise.all(
        incomplete.map(async ([userId, known]) => {
          keychains.set(userId, (await this.createMissing(userId, known)).keychain);
        }),
      );
    }
    return Promise.all(
      users.map((u, i) => {
        const result = this.derive(context, u.userId, u.categories, keychains.get(u.userId) ?? toCached({ state: 'absent' }));
        return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(withUserIndex(err, i))) : result;
      }),
    );
  }

  /** Create-if-absent of the whole keychain (sign-up). 410 KEYCHAIN_DELETED for a deleted user. */
  async create(userId: string): Promise<CreateResult> {
    const { keychain, created } = await this.createMissing(userId);
    if (keychain.state !== 'active') throw new AppError('KEYCHAIN_DELETED', { message: 'The keychain of this user was deleted and is never recreated' });
    const categories = new Map<string, 'active' | 'deleted'>();
    for (const [name, c] of keychain.categories) categories.set(name, c.state);
    return { created, categories };
  }

  async deleteUser(userId: string): Promise<void> {
    this.deleteEpoch++;
    this.reading.delete(userId);
    this.cache.delete(userId);
    await this.callStore(() => this.opts.store.deleteUser(userId));
    this.cache.delete(userId);
  }

  async deleteCategory(userId: string, category: string): Promise<void> {
    this.deleteEpoch++;
    this.reading.delete(userId);
    this.cache.delete(userId);
    await this.callStore(() => this.opts.store.deleteCategory(userId, category));
    this.cache.delete(userId);
  }

  async ready(): Promise<void> {
    await this.callStore(() => this.opts.store.ping());
  }

  /**
   * Keychains from the cache, then from reads already in flight (when a hot
   * entry expires, concurrent requests share one store read), the rest from the
   * store in one read.
   */
  private async resolve(userIds: readonly string[]): Promise<Map<string, CachedKeychain>> {
    const out = new Map<string, CachedKeychain>();
    const joined: Promise<void>[] = [];
    const misses: string[] = [];
    for (const id of userIds) {
      const hit = this.cache.get(id);
      if (hit !== undefined) {
        out.set(id, hit);
        continue;
      }
      const running = this.reading.get(id);
      if (running !== undefined) joined.push(running.then((k) => void out.set(id, k)));
      else misses.push(id);
    }
    if (misses.length > 0) {
      const readAt = this.clock();
      const epoch = this.deleteEpoch;
      const read = this.callStore(() => this.opts.store.read(misses));
      const ours = new Map<string, Promise<CachedKeychain>>();
      for (const id of misses) {
        const one = read.then((stored) => entryOf(stored, id));
        this.reading.set(id, one);
        ours.set(id, one);
        const done = (): void => {
          if (this.reading.get(id) === one) this.reading.delete(id);
        };
        one.then(done, done);
      }
      await read;
      for (const [id, one] of ours) {
        // One object per user, shared with the requests that joined this read.
        const keychain = await one;
        out.set(id, keychain);
        this.remember(id, keychain, readAt, epoch);
      }
    }
    await Promise.all(joined);
    return out;
  }

  private remember(userId: string, keychain: CachedKeychain, readAt: number, epoch: number): void {
    if (epoch !== this.deleteEpoch) return;
    // The entry expires TTL after the read *started*: the deletion bound holds even for slow reads.
    keychain.refreshAt = readAt + this.opts.cacheTtlMs / 2;
    keychain.refreshing = false;
    this.cache.set(userId, keychain, readAt + this.opts.cacheTtlMs);
  }

  /**
   * Reads `userIds` again in the background (their entries are due); see
   * `refreshed` for what is kept. A failure is logged by `callStore`; the
   * entries then expire at their TTL.
   */
  private refresh(userIds: string[]): void {
    const readAt = this.clock();
    const epoch = this.deleteEpoch;
    this.callStore(() => this.opts.store.read(userIds)).then(
      (stored) => {
        for (const id of userIds) {
          const fresh = entryOf(stored, id);
          const current = this.cache.get(id);
          this.remember(id, current === undefined ? fresh : refreshed(current, fresh), readAt, epoch);
        }
      },
      () => undefined,
    );
  }

  private missing(keychain: CachedKeychain): string[] {
    if (keychain.state === 'deleted') return [];
    if (keychain.state === 'absent') return [...this.opts.categories];
    return this.opts.categories.filter((c) => !keychain.categories.has(c));
  }

  /** Generates, wraps and conditionally stores root keys for every missing category. */
  /**
   * `known` is a state just read (possibly cached): the conditional write makes a
   * stale one harmless, it only saves a read.
   */
  private async createMissing(userId: string, known?: CachedKeychain): Promise<{ keychain: CachedKeychain; created: boolean }> {
    const readAt = this.clock();
    const epoch = this.deleteEpoch;
    const current = known ?? entryOf(await this.callStore(() => this.opts.store.read([userId])), userId);
    const missing = this.missing(current);
    if (missing.length === 0) {
      if (known === undefined) this.remember(userId, current, readAt, epoch);
      return { keychain: current, created: false };
    }
    const roots = new Map(missing.map((c) => [c, randomBytes(32)]));
    const wrapped = new Map(
      await Promise.all([...roots].map(async ([c, root]) => [c, await this.opts.kek.wrap(root, wrapAad(userId, c))] as const)),
    );
    const writeAt = this.clock();
    const writeEpoch = this.deleteEpoch;
    const stored = await this.callStore(() => this.opts.store.createIfAbsent(userId, wrapped));
    const keychain = toCached(stored);
    let created = false;
    if (keychain.state === 'active') {
      for (const [c, entry] of keychain.categories) {
        const ours = wrapped.get(c);
        const root = roots.get(c);
        // Our key won the conditional write: no need to unwrap it again.
        if (entry.state === 'active' && ours !== undefined && root !== undefined && entry.wrapped.equals(ours)) {
          entry.rootKey = root;
          created = true;
        }
      }
    }
    this.remember(userId, keychain, writeAt, writeEpoch);
    return { keychain, created };
  }

  /**
   * The hot path: each user's rendered element of the answer (`renderUser`),
   * computed synchronously when every user is cached with the needed root keys
   * unwrapped (or their keys already derived); undefined otherwise (then
   * `lookup`). With `createIfAbsent`, an absent or incomplete keychain also
   * means undefined. An element is served from the cached keychain when it was
   * rendered before, else rendered and kept there. Users sharing one categories
   * array share its key.
   */
  lookupRendered(context: string, users: readonly LookupUser[], createIfAbsent: boolean): string[] | undefined {
    const now = this.clock();
    const due: string[] = [];
    try {
      return this.cachedElements(context, users, createIfAbsent, now, due);
    } finally {
      if (due.length > 0) this.refresh(due);
    }
  }

  /** `lookupRendered`'s work; users whose entry is due for a refresh go to `due`. */
  private cachedElements(
    context: string,
    users: readonly LookupUser[],
    createIfAbsent: boolean,
    now: number,
    due: string[],
  ): string[] | undefined {
    const out = new Array<string>(users.length);
    let keyOf: readonly string[] | undefined;
    let key = '';
    for (let i = 0; i < users.length; i++) {
      const user = users[i]!;
      const keychain = this.cache.get(user.userId, now);
      if (keychain === undefined) return undefined;
      if (now >= keychain.refreshAt && !keychain.refreshing) {
        keychain.refreshing = true;
        due.push(user.userId);
      }
      if (createIfAbsent && this.missing(keychain).length > 0) return undefined;
      if (keychain.state !== 'active') {
        out[i] = this.opts.renderUser({ userId: user.userId, status: keychain.state });
        continue;
      }
      if (user.categories !== keyOf) key = responseKey(context, (keyOf = user.categories));
      let element = keychain.responses?.get(key);
      if (element === undefined) {
        if (!derivable(context, user.categories, keychain)) return undefined;
        element = this.opts.renderUser(this.deriveNow(context, user.userId, user.categories, keychain));
        const responses = (keychain.responses ??= new Map());
        if (responses.size < RESPONSES_PER_USER_MAX) responses.set(key, element);
      }
      out[i] = element;
    }
    return out;
  }

  /** Synchronous once the needed root keys are unwrapped (the hot path: no promise per key). */
  private derive(context: string, userId: string, categories: readonly string[], keychain: CachedKeychain): UserResult | Promise<UserResult> {
    if (keychain.state !== 'active') return { userId, status: keychain.state };
    const pending: Promise<Buffer>[] = [];
    for (const category of categories) {
      const entry = keychain.categories.get(category);
      if (needsUnwrap(entry, context)) {
        entry.unwrapping ??= this.unwrap(entry, userId, category);
        pending.push(entry.unwrapping);
      }
    }
    if (pending.length > 0) return Promise.all(pending).then(() => this.deriveNow(context, userId, categories, keychain));
    return this.deriveNow(context, userId, categories, keychain);
  }

  /** `derive` once every needed root key is unwrapped (`derivable`). */
  private deriveNow(context: string, userId: string, categories: readonly string[], keychain: CachedKeychain): UserResult {
    if (keychain.state !== 'active') return { userId, status: keychain.state };
    const results = new Map<string, CategoryResult>();
    for (const category of categories) {
      const entry = keychain.categories.get(category);
      if (entry === undefined) results.set(category, ABSENT);
      else if (entry.state === 'deleted') results.set(category, DELETED);
      else {
        let served = entry.derived.get(context);
        if (served === undefined) {
          const derived = deriveKey(entry.rootKey!, { context, category, userId });
          served = { ...derived, keyBase64: derived.key.toString('base64') };
          entry.derived.set(context, served);
        }
        results.set(category, { status: 'found', key: served });
      }
    }
    return { userId, status: 'found', categories: results };
  }

  private async unwrap(entry: ActiveCategory, userId: string, category: string): Promise<Buffer> {
    try {
      entry.rootKey = await this.opts.kek.unwrap(entry.wrapped, wrapAad(userId, category));
      return entry.rootKey;
    } finally {
      // A failed unwrap (KMS down) must not stick in the cache.
      entry.unwrapping = undefined;
    }
  }

  /** One store call under the deadline; every failure becomes KEY_STORE_UNAVAILABLE (no retries here). */
  private async callStore<T>(call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AppError('KEY_STORE_UNAVAILABLE', { message: `Key store did not answer within ${this.opts.storeDeadlineMs} ms` })),
        this.opts.storeDeadlineMs,
      );
    });
    try {
      return await Promise.race([call(), deadline]);
    } catch (err) {
      if (isAppError(err)) throw err;
      this.opts.logger.warn('key store call failed', { store: this.opts.store.kind, err });
      throw new AppError('KEY_STORE_UNAVAILABLE', { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * A KEY_UNREADABLE error (this user's stored key does not unwrap) with the
 * user's position in the lookup, so the answer can name the field; other
 * errors as they are.
 */
function withUserIndex(err: unknown, index: number): unknown {
  if (!isAppError(err) || err.code !== 'KEY_UNREADABLE') return err;
  return new AppError('KEY_UNREADABLE', { message: err.message, details: { userIndex: index }, cause: err });
}

/** Contexts are lowercase names and categories known names: neither holds a NUL. */
function responseKey(context: string, categories: readonly string[]): string {
  let key = context;
  for (let i = 0; i < categories.length; i++) key += '\0' + categories[i]!;
  return key;
}

const ABSENT: CategoryResult = Object.freeze({ status: 'absent' });
const DELETED: CategoryResult = Object.freeze({ status: 'deleted' });

/** Whether every needed key of `categories` can be derived without unwrapping. */
function derivable(context: string, categories: readonly string[], keychain: CachedKeychain): boolean {
  if (keychain.state !== 'active') return true;
  for (const category of categories) {
    if (needsUnwrap(keychain.categories.get(category), context)) return false;
  }
  return true;
}

/** Whether a key of `context` needs this category's root key unwrapped first (active, not unwrapped, not derived yet). */
function needsUnwrap(entry: CachedCategory | undefined, context: string): entry is ActiveCategory {
  return entry?.state === 'active' && entry.rootKey === undefined && !entry.derived.has(context);
}

/** The cache entry for `userId` from a store read (absent if the store has nothing). */
function entryOf(stored: ReadonlyMap<string, StoredKeychain>, userId: string): CachedKeychain {
  return toCached(stored.get(userId) ?? { state: 'absent' });
}

/** A cache entry for a keychain as stored (`remember` sets when it is due for a refresh). */
function toCached(stored: StoredKeychain): CachedKeychain {
  if (stored.state !== 'active') return { state: stored.state, refreshAt: Infinity, refreshing: false };
  const categories = new Map<string, CachedCategory>();
  for (const [name, c] of stored.categories) {
    categories.set(name, c.state === 'active' ? { state: 'active', wrapped: c.wrappedRootKey, derived: new Map() } : { state: 'deleted' });
  }
  return { state: 'active', categories, refreshAt: Infinity, refreshing: false };
}

/**
 * The entry for a keychain read again: the cached one itself if the store holds
 * it unchanged (its unwrapped root keys, derived keys and response elements
 * stay); else the fresh one, keeping the cached state of each category whose
 * wrapped key is unchanged (a key is what its wrapped key says it is).
 */
function refreshed(current: CachedKeychain, fresh: CachedKeychain): CachedKeychain {
  if (current.state !== 'active' || fresh.state !== 'active') return current.state === fresh.state ? current : fresh;
  let same = current.categories.size === fresh.categories.size;
  for (const [name, c] of fresh.categories) {
    const old = current.categories.get(name);
    if (c.state === 'active' && old?.state === 'active' && old.wrapped.equals(c.wrapped)) fresh.categories.set(name, old);
    else if (c.state !== 'deleted' || old?.state !== 'deleted') same = false;
  }
  return same ? current : fresh;
}
