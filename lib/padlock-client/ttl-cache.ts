/**
 * A bounded LRU map whose entries expire at a time chosen when they are set.
 * Used by padlock's service (keychains) and client (derived keys); the clock is
 * injectable so tests can prove expiry bounds without waiting.
 */
export type Clock = () => number;

interface Entry<V> {
  value: V;
  expiresAt: number;
  /** `TtlCache.moves` when the entry last went to the most recent end. */
  movedAt: number;
}

export class TtlCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  /** Count of insertions at the most recent end (sets and refreshes). */
  private moves = 0;

  /**
   * @param maxEntries bound on the number of entries (0 disables caching)
   * @param onEvict called with values leaving the cache (expired, evicted, deleted)
   */
  constructor(
    private readonly maxEntries: number,
    private readonly clock: Clock = Date.now,
    private readonly onEvict?: (value: V) => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The live value for `key`, refreshed as most recently used; undefined if
   * absent or expired. An entry already in the most recent half is left where it
   * is (hot keys would otherwise be re-inserted on every hit): at most
   * `maxEntries / 2` insertions came after it, so it is not next to be evicted.
   * `now` lets a caller reading many keys at once read the clock once.
   */
  get(key: K, now = this.clock()): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (now >= entry.expiresAt) {
      this.delete(key);
      return undefined;
    }
    if (this.moves - entry.movedAt >= this.maxEntries / 2) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      entry.movedAt = ++this.moves;
    }
    return entry.value;
  }

  /** Stores `value` until `expiresAt` (clock time); evicts the least recently used beyond the bound. */
  set(key: K, value: V, expiresAt: number): void {
    if (this.maxEntries <= 0 || expiresAt <= this.clock()) return;
    this.delete(key);
    this.entries.set(key, { value, expiresAt, movedAt: ++this.moves });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.onEvict?.(entry.value);
  }

  clear(): void {
    for (const key of [...this.entries.keys()]) this.delete(key);
  }
}
