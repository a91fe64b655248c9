/**
 * The composer as a running service: `startComposer(config)` opens the
 * registry, builds the provisioner, optionally applies the specs of
 * `config.specsDir`, and serves the REST API. `npm start` wires it in.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { PubSub } from '@google-cloud/pubsub';
import { AppError } from '../lib/errors.ts';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { openRegistryStore } from '../lib/registry/open.ts';
import type { RegistryStore } from '../lib/registry/types.ts';
import { createComposerApp } from './api.ts';
import { Composer, type ApplyResult } from './composer.ts';
import type { ComposerConfig } from './config.ts';
import type { ProvisioningOptions } from './defaults.ts';
import { Provisioner } from './provisioning.ts';
import type { ShredReportEndpoint } from './shred-report/http.ts';
import { formatProblems, loadSpecs } from './spec.ts';

export { loadConfig, type ComposerConfig } from './config.ts';
export { Composer } from './composer.ts';

/** The registry store `config` names (file folder or Firestore). */
export function createRegistryStore(config: Pick<ComposerConfig, 'registry' | 'projectId'>): RegistryStore {
  return openRegistryStore(config.registry, config.projectId);
}

export interface ComposerParts {
  composer: Composer;
  registry: RegistryStore;
  pubsub: PubSub;
  /** Closes what these parts opened (registry, clients). */
  close(): Promise<void>;
}

export interface ComposerOverrides {
  registry?: RegistryStore;
  logger?: Logger;
  provisioning?: Partial<ProvisioningOptions>;
  /** Serves the shred report (`POST /v1/shred-reports`, composer/shred-report/http.ts). */
  shredReport?: ShredReportEndpoint;
}

/** Builds the composer (registry, Pub/Sub provisioner, catalogue) from config. */
export function createComposerParts(config: ComposerConfig, overrides: ComposerOverrides = {}): ComposerParts {
  const logger = overrides.logger ?? createLogger({ component: 'composer' });
  const registry = overrides.registry ?? createRegistryStore(config);
  const pubsub = createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost });
  const storage =
    config.gcs === undefined
      ? undefined
      : { client: createStorage({ projectId: config.projectId, apiEndpoint: config.gcs.apiEndpoint }), bucket: config.gcs.bucket };
  // The Pub/Sub emulator refuses subscription retention beyond 7 days.
  const endpointLimits = config.pubsubEmulatorHost === undefined ? {} : { deadLetterRetentionSeconds: 7 * 24 * 3600 };
  const provisioner = new Provisioner({
    pubsub,
    logger,
    mode: config.provisioning,
    options: { ...endpointLimits, ...overrides.provisioning },
    ...(storage === undefined ? {} : { storage }),
  });
  const composer = new Composer({ registry, provisioner, catalogue: config.catalogue, logger });
  return {
    composer,
    registry,
    pubsub,
    close: async () => {
      await provisioner.close();
      await pubsub.close();
      if (overrides.registry === undefined) await registry.close?.();
    },
  };
}

/** Applies every spec in a file or folder; throws SPEC_INVALID listing every problem. */
export async function applySpecs(composer: Composer, fileOrDir: string, options: { force?: boolean; concurrency?: number } = {}): Promise<ApplyResult[]> {
  const { specs, problems } = await loadSpecs(fileOrDir, composer.catalogue);
  if (problems.length > 0) {
    throw new AppError('SPEC_INVALID', { message: `invalid specs:\n${formatProblems(problems)}`, details: { problems } });
  }
  return mapConcurrent(specs, options.concurrency ?? 8, ({ spec }) => composer.apply(spec, { force: options.force ?? false }));
}

/** Runs `fn` over `items`, at most `limit` at a time, results in input order. */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface RunningComposer {
  /** Base URL of the REST API, e.g. `http://127.0.0.1:8090`. */
  url: string;
  composer: Composer;
  close(): Promise<void>;
}

/**
 * Starts the composer: registry, provisioner, REST API on `config.host:port`.
 * With `config.specsDir`, applies those specs first (a bad spec fails the start).
 */
export async function startComposer(config: ComposerConfig, overrides: ComposerOverrides = {}): Promise<RunningComposer> {
  const logger = overrides.logger ?? createLogger({ component: 'composer' });
  const parts = createComposerParts(config, { ...overrides, logger });
  try {
    if (config.specsDir !== undefined) {
      const applied = await applySpecs(parts.composer, config.specsDir);
      logger.info('specs applied at start', { count: applied.length, changed: applied.filter((a) => a.action !== 'none' || a.changes.length > 0).length });
    }
    if (config.tokens.size === 0) logger.warn('no COMPOSER_TOKENS configured: every API request will be refused (401)');
    const app = createComposerApp({ composer: parts.composer, tokens: config.tokens, bodyLimit: config.bodyLimit, logger, ...(overrides.shredReport ? { shredReport: overrides.shredReport } : {}) });
    const server: Server = await new Promise((resolve, reject) => {
      const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    const { port } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    logger.info('composer listening', { url });
    return {
      url,
      composer: parts.composer,
      close: async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await closed;
        await parts.close();
      },
    };
  } catch (err) {
    await parts.close();
    throw err;
  }
}
