/**
 * A store under migration: `primary` answers every call; every create and
 * delete that succeeded on the primary is then also applied to `darkload`, in
 * the background. The darkload gets the keychain *as the primary stored it*
 * (`copyKeychain`), never the freshly wrapped keys of the request, so both
 * stores hold the same key. Its failures are logged and counted, never
 * returned to callers, and its results are ignored; verify + repair catch up
 * on whatever it missed. Switching (`primary=B, darkload=A`) and rolling back
 * are configuration changes (`PADLOCK_STORE`, `PADLOCK_DARKLOAD_STORE`).
 *
 * Order does not matter: a delete that reaches the darkload before the create
 * it followed leaves a tombstone that the create cannot pass.
 */
import type { Logger } from '../../lib/logger.ts';
import { copyKeychain } from './migration.ts';
import type { KeyStore } from './store.ts';

export interface DarkloadStats {
  /** Writes the darkload store accepted. */
  applied: number;
  /** Writes it refused or failed (logged). */
  failed: number;
  /** Writes not attempted because `maxInFlight` writes were already pending (logged). */
  skipped: number;
}

export interface MigratingStore extends KeyStore {
  readonly darkloadKind: KeyStore['kind'];
  darkloadStats(): DarkloadStats;
  /** Resolves once every darkload write started so far has settled. */
  drain(): Promise<void>;
}

export interface MigratingStoreOptions {
  logger: Logger;
  /** Darkload writes pending at once; beyond it, writes are skipped (bounded memory if the darkload is slow or down). */
  maxInFlight?: number;
}

export function createMigratingStore(primary: KeyStore, darkload: KeyStore, opts: MigratingStoreOptions): MigratingStore {
  const maxInFlight = opts.maxInFlight ?? 1_000;
  const stats: DarkloadStats = { applied: 0, failed: 0, skipped: 0 };
  const inFlight = new Set<Promise<void>>();

  const mirror = (op: 'create' | 'delete-user' | 'delete-category', write: () => Promise<unknown>): void => {
    if (inFlight.size >= maxInFlight) {
      stats.skipped++;
      opts.logger.warn('darkload write skipped: too many pending', { store: darkload.kind, op, pending: inFlight.size });
      return;
    }
    const run = (async () => {
      try {
        await write();
        stats.applied++;
      } catch (err) {
        stats.failed++;
        opts.logger.warn('darkload write failed', { store: darkload.kind, op, err });
      }
    })();
    inFlight.add(run);
    void run.then(() => inFlight.delete(run));
  };

  const drain = async (): Promise<void> => {
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  };

  return {
    kind: primary.kind,
    darkloadKind: darkload.kind,
    read: (userIds) => primary.read(userIds),
    async createIfAbsent(userId, wrappedRootKeys) {
      const stored = await primary.createIfAbsent(userId, wrappedRootKeys);
      mirror('create', () => copyKeychain(darkload, userId, stored));
      return stored;
    },
    async deleteUser(userId) {
      await primary.deleteUser(userId);
      mirror('delete-user', () => darkload.deleteUser(userId));
    },
    async deleteCategory(userId, category) {
      await primary.deleteCategory(userId, category);
      mirror('delete-category', () => darkload.deleteCategory(userId, category));
    },
    // Readiness is the primary's: the darkload being down must not take padlock out of service.
    ping: () => primary.ping(),
    darkloadStats: () => ({ ...stats }),
    drain,
    async close() {
      await drain();
      await Promise.all([primary.close(), darkload.close()]);
    },
  };
}
