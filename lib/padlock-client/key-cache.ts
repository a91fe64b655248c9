/**
 * The client's cache of key lookups: per user, then per key context and
 * category, each answer with its own expiry; users in least-recently-used
 * order, bounded (TtlCache). Nested maps rather than one map keyed by
 * `context‖userId‖category`: a hit then builds no string (a concatenated key
 * cost ≈ 0.3 µs to flatten and hash, on the ETL's path for every personal
 * value), and forgetting a user is one delete, not a scan.
 */
import { TtlCache, type Clock } from './ttl-cache.ts';

interface Cached<V> {
  value: V;
  expiresAt: number;
}

/** One user's answers: context → category → answer. */
type UserEntries<V> = Map<string, Map<string, Cached<V>>>;

export class KeyCache<V> {
  private readonly users: TtlCache<string, UserEntries<V>>;

  /** @param maxUsers bound on the users held (0 disables caching) */
  constructor(
    maxUsers: number,
    private readonly clock: Clock,
  ) {
    this.users = new TtlCache(maxUsers, clock);
  }

  /** The live answer for (`context`, `userId`, `category`), or undefined. */
  get(context: string, userId: string, category: string, now: number): V | undefined {
    const cached = this.users.get(userId, now)?.get(context)?.get(category);
    return cached === undefined || now >= cached.expiresAt ? undefined : cached.value;
  }

  /** Keeps `value` until `expiresAt` (clock time). */
  set(context: string, userId: string, category: string, value: V, expiresAt: number): void {
    const now = this.clock();
    if (expiresAt <= now) return;
    const entries = this.users.get(userId, now) ?? new Map<string, Map<string, Cached<V>>>();
    let byCategory = entries.get(context);
    if (byCategory === undefined) entries.set(context, (byCategory = new Map()));
    byCategory.set(category, { value, expiresAt });
    // The user lives as long as its latest answer; each answer is checked against its own expiry.
    let latest = expiresAt;
    for (const answers of entries.values()) for (const a of answers.values()) latest = Math.max(latest, a.expiresAt);
    this.users.set(userId, entries, latest);
  }

  /** Drops every answer about `userId`. */
  forget(userId: string): void {
    this.users.delete(userId);
  }
}
