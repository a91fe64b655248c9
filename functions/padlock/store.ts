/**
 * The key store: where wrapped root keys and tombstones live. One interface,
 * three implementations: an embedded file store (local mode), Bigtable and
 * PostgreSQL (production). Stores hold only wrapped keys; they never see a root key.
 */

/** One category of a stored keychain: a wrapped root key, or the tombstone left by its deletion. */
export type StoredCategory = { state: 'active'; wrappedRootKey: Buffer } | { state: 'deleted' };

/**
 * A user's keychain as stored. `deleted` is the tombstone of a deleted user:
 * no key material, and it stops any later create.
 */
export type StoredKeychain =
  | { state: 'absent' }
  | { state: 'deleted' }
  | { state: 'active'; categories: ReadonlyMap<string, StoredCategory> };

/** The kinds of store padlock can run on. */
export const storeKinds = ['embedded', 'bigtable', 'postgres'] as const;
export type StoreKind = (typeof storeKinds)[number];

export interface KeyStore {
  /** Which store this is, for logs and health. */
  readonly kind: StoreKind;
  /** Keychains of `userIds` (every id is in the result). */
  read(userIds: readonly string[]): Promise<Map<string, StoredKeychain>>;
  /**
   * Race-free create-if-absent: stores each of `wrappedRootKeys` whose category has
   * neither a key nor a tombstone, unless the user is deleted. Concurrent calls for
   * one user leave one key per category. Returns the keychain as stored afterwards.
   */
  createIfAbsent(userId: string, wrappedRootKeys: ReadonlyMap<string, Buffer>): Promise<StoredKeychain>;
  /** Destroys every wrapped root key of the user and leaves a user tombstone (also for unknown users). */
  deleteUser(userId: string): Promise<void>;
  /** Destroys the wrapped root key of one category and leaves a category tombstone. */
  deleteCategory(userId: string, category: string): Promise<void>;
  /** Resolves if the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** One page of a store scan, in the store's own order; `cursor` resumes after it (undefined: nothing left). */
export interface KeychainPage {
  keychains: [userId: string, keychain: StoredKeychain][];
  cursor: string | undefined;
}

/** A store whose keychains can be walked page by page (the migration jobs' backfill, verify and repair). */
export interface ScannableKeyStore extends KeyStore {
  /** Up to `limit` users after `cursor` (from the start if undefined), each with its keychain as stored. */
  scan(cursor: string | undefined, limit: number): Promise<KeychainPage>;
}

export function isScannable(store: KeyStore): store is ScannableKeyStore {
  return typeof (store as Partial<ScannableKeyStore>).scan === 'function';
}

/** Applies create-if-absent to a keychain in memory (the embedded store's rule, and its unit-testable core). */
export function withCreated(current: StoredKeychain, wrappedRootKeys: ReadonlyMap<string, Buffer>): StoredKeychain {
  if (current.state === 'deleted') return current;
  const categories = new Map(current.state === 'active' ? current.categories : []);
  for (const [category, wrappedRootKey] of wrappedRootKeys) {
    if (!categories.has(category)) categories.set(category, { state: 'active', wrappedRootKey });
  }
  return { state: 'active', categories };
}
