/**
 * `startPadlock(config)`: builds the KEK, the store and the service from a
 * validated config, and listens. `close()` stops listening and closes the store.
 */
import http from 'node:http';
import { createKms } from '../../lib/gcp/clients.ts';
import { closeServer, listen } from '../../lib/http/index.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import type { Clock } from '../../lib/padlock-client/ttl-cache.ts';
import type { PadlockConfig } from './config.ts';
import { createApi } from './http.ts';
import { createKmsKek, createLocalKek, kmsCallsOf, loadOrCreateKekFile, type Kek, type KmsCalls } from './kek.ts';
import { KeychainService } from './keychains.ts';
import { userJson } from './lookup-json.ts';
import { openServingStore } from './open-store.ts';
import { ServiceRegistry } from './services.ts';
import type { KeyStore } from './store.ts';

/** How long a closing padlock lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 10_000;

export interface PadlockDeps {
  logger?: Logger;
  /** Time source of the cache (tests prove the deletion bound with a fake clock). */
  clock?: Clock;
  /** Replaces the Cloud KMS client's two calls (unit tests: there is no KMS emulator). */
  kms?: KmsCalls;
  /** Replaces the store built from config (tests of failure modes). */
  store?: KeyStore;
}

export interface RunningPadlock {
  url: string;
  close(): Promise<void>;
}

export async function startPadlock(config: PadlockConfig, deps: PadlockDeps = {}): Promise<RunningPadlock> {
  const logger = deps.logger ?? createLogger({ component: 'padlock' });
  const kek = buildKek(config, deps);
  const store = deps.store ?? (await openServingStore(config, logger));
  const keychains = new KeychainService({
    store,
    kek,
    categories: config.categories,
    cacheTtlMs: config.cacheTtlMs,
    cacheMaxUsers: config.cacheMaxUsers,
    storeDeadlineMs: config.storeDeadlineMs,
    logger,
    renderUser: userJson,
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  const server = http.createServer(
    createApi({ keychains, services: new ServiceRegistry(config.services), logger, maxUsersPerRequest: config.maxUsersPerRequest, maxBodyBytes: config.maxBodyBytes }),
  );
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const { url } = await listen(server, config.host, config.port);
  logger.info('padlock listening', { url, mode: config.mode, store: store.kind, kek: kek.kind, services: config.services.length });

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        await closeServer(server, CLOSE_GRACE_MS);
        await store.close();
        logger.info('padlock stopped');
      })()),
  };
}

function buildKek(config: PadlockConfig, deps: PadlockDeps): Kek {
  if (config.kek.kind === 'kms') {
    const kms = deps.kms ?? kmsCallsOf(createKms({ apiEndpoint: config.kek.apiEndpoint }), config.kek.deadlineMs);
    return createKmsKek(kms, config.kek.keyName);
  }
  return createLocalKek(loadOrCreateKekFile(config.kek.path));
}
