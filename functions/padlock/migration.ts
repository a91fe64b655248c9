/**
 * The rules of a key store migration, shared by the darkload, the backfill,
 * verify and repair:
 *
 * - `copyKeychain` applies a keychain as one store holds it to another, with
 *   that store's own race-free operations only: tombstones through its deletes
 *   (a deletion is final in every store), keys through its create-if-absent
 *   (which keeps a key already there, so a copy never gives a user a second
 *   key). Copies therefore commute with each other and with live traffic.
 * - `differences` compares two keychains category by category.
 */
import type { KeyStore, StoredKeychain } from './store.ts';

/** Kinds of difference between the source (A) and the target (B) of a migration. */
export const differenceKinds = ['missing-in-b', 'missing-in-a', 'different-wrapped-key', 'deleted-in-a-only', 'deleted-in-b-only'] as const;
export type DifferenceKind = (typeof differenceKinds)[number];

/** One difference; `category` is absent when it concerns the whole user (a user tombstone). */
export interface Difference {
  kind: DifferenceKind;
  category?: string;
}

type CategoryState = { state: 'active'; key: Buffer } | { state: 'deleted' } | { state: 'none' };

function categoryOf(k: StoredKeychain, category: string): CategoryState {
  if (k.state === 'deleted') return { state: 'deleted' };
  if (k.state === 'absent') return { state: 'none' };
  const c = k.categories.get(category);
  if (c === undefined) return { state: 'none' };
  return c.state === 'active' ? { state: 'active', key: c.wrappedRootKey } : c;
}

/** How `b` differs from `a` (empty when they hold the same keys and the same tombstones). */
export function differences(a: StoredKeychain, b: StoredKeychain): Difference[] {
  if (a.state === 'deleted' && b.state === 'deleted') return [];
  if (a.state === 'deleted') return [{ kind: 'deleted-in-a-only' }];
  if (b.state === 'deleted') return [{ kind: 'deleted-in-b-only' }];
  const names = new Set([...(a.state === 'active' ? a.categories.keys() : []), ...(b.state === 'active' ? b.categories.keys() : [])]);
  const out: Difference[] = [];
  for (const category of [...names].sort()) {
    const x = categoryOf(a, category);
    const y = categoryOf(b, category);
    if (x.state === y.state && (x.state !== 'active' || (y.state === 'active' && x.key.equals(y.key)))) continue;
    if (x.state === 'deleted') out.push({ kind: 'deleted-in-a-only', category });
    else if (y.state === 'deleted') out.push({ kind: 'deleted-in-b-only', category });
    else if (x.state === 'active' && y.state === 'active') out.push({ kind: 'different-wrapped-key', category });
    else out.push({ kind: x.state === 'active' ? 'missing-in-b' : 'missing-in-a', category });
  }
  return out;
}

/**
 * Applies `keychain` (as another store holds it) to `to`: its tombstones, then
 * its keys through create-if-absent. Never removes a key `to` holds unless the
 * keychain has a tombstone for it; never replaces one.
 */
export async function copyKeychain(to: KeyStore, userId: string, keychain: StoredKeychain): Promise<void> {
  if (keychain.state === 'absent') return;
  if (keychain.state === 'deleted') {
    await to.deleteUser(userId);
    return;
  }
  const keys = new Map<string, Buffer>();
  for (const [category, c] of keychain.categories) {
    if (c.state === 'deleted') await to.deleteCategory(userId, category);
    else keys.set(category, c.wrappedRootKey);
  }
  if (keys.size > 0) await to.createIfAbsent(userId, keys);
}
