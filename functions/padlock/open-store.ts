/**
 * Builds a key store from its configuration: the primary alone, or, during a
 * migration, the primary with a darkloaded second store (`migrating-store.ts`).
 */
import { createBigtable } from '../../lib/gcp/clients.ts';
import type { Logger } from '../../lib/logger.ts';
import { createBigtableStore, ensureKeychainTable } from './bigtable-store.ts';
import type { PadlockConfig, StoreConfig } from './config.ts';
import { createEmbeddedStore } from './embedded-store.ts';
import { createMigratingStore } from './migrating-store.ts';
import { createPostgresStore } from './postgres-store.ts';
import type { KeyStore } from './store.ts';

/** One store; `deadlineMs` bounds each of its calls (fail fast, no retries). */
export async function openStore(config: StoreConfig, deadlineMs: number, logger: Logger, opts: { optional?: boolean } = {}): Promise<KeyStore> {
  // A darkloaded store that is down must not keep padlock from starting: its writes fail (counted) until it is back.
  const prepare = async (store: KeyStore, create: () => Promise<void>): Promise<void> => {
    try {
      await create();
    } catch (err) {
      if (!opts.optional) {
        await store.close();
        throw err;
      }
      logger.warn('darkload store not ready at start', { store: store.kind, err });
    }
  };
  switch (config.kind) {
    case 'embedded':
      return createEmbeddedStore(config.dataDir);
    case 'bigtable': {
      const bigtable = createBigtable({ projectId: config.projectId, emulatorHost: config.emulatorHost, appProfileId: config.appProfileId });
      const store = createBigtableStore(bigtable, { instanceId: config.instanceId, tableId: config.tableId, deadlineMs });
      if (config.createTable) await prepare(store, () => ensureKeychainTable(bigtable, config.instanceId, config.tableId));
      return store;
    }
    case 'postgres': {
      const store = createPostgresStore({
        ...config,
        deadlineMs,
        onIdleError: (err) => logger.warn('idle PostgreSQL connection failed', { store: 'postgres', err }),
      });
      await prepare(store, () => store.ensureSchema());
      return store;
    }
  }
}

/** Why creates fail while `PADLOCK_CREATES_PAUSED` is set (a 503 KEY_STORE_UNAVAILABLE to callers, who retry). */
export const CREATES_PAUSED = 'creates are paused for a key store switch (PADLOCK_CREATES_PAUSED)';

/**
 * The store padlock serves from: the primary, with the darkloaded store
 * mirrored during a migration, and creates refused while paused.
 */
export async function openServingStore(config: Pick<PadlockConfig, 'store' | 'darkload' | 'createsPaused' | 'storeDeadlineMs'>, logger: Logger): Promise<KeyStore> {
  let store = await openStore(config.store, config.storeDeadlineMs, logger);
  if (config.darkload !== undefined) {
    let second: KeyStore;
    try {
      second = await openStore(config.darkload, config.storeDeadlineMs, logger, { optional: true });
    } catch (err) {
      await store.close();
      throw err;
    }
    store = createMigratingStore(store, second, { logger });
  }
  if (!config.createsPaused) return store;
  const serving = store;
  return { ...serving, kind: serving.kind, createIfAbsent: () => Promise.reject(new Error(CREATES_PAUSED)) };
}
