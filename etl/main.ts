/**
 * `node --import tsx etl/main.ts`: one ETL worker deployment. Hosts the types
 * in EVENT_TYPES (or every active type), exits 1 naming the variable on bad
 * configuration, and shuts down cleanly on SIGTERM/SIGINT. Variables: the
 * table in etl/config.ts.
 *
 * The registry is read like the rest of the platform reads it: the
 * composer's embedded store (`FileRegistryStore` over REGISTRY_DIR) locally,
 * its Firestore store (`FirestoreRegistryStore`, REGISTRY_STORE=firestore) in
 * production. Types stored in BigQuery are loaded into BIGQUERY_DATASET
 * (BIGQUERY_ENDPOINT: the emulator). With PADLOCK_URL, personal fields are encrypted
 * (`createEncryptionTransform` over a padlock client); without it, a type
 * with personal fields is refused, never delivered in clear.
 */
import { aeadImplementation } from '../lib/crypto/aead.ts';
import { isAppError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { googleIdTokens } from '../lib/padlock-client/google-id-token.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { openRegistryStore } from '../lib/registry/open.ts';
import { loadConfig, type EtlMainConfig } from './config.ts';
import { createEncryptionTransform } from './encryption-transform.ts';
import type { RecordTransform } from './transform.ts';
import { startEtlWorkers } from './workers.ts';

function transformOf(config: EtlMainConfig, logger: ReturnType<typeof createLogger>): RecordTransform | undefined {
  if (config.padlock === undefined) return undefined;
  const { urls, idToken, service, secret, keyContext } = config.padlock;
  const keys = createPadlockClient({ url: urls, service, secret, context: keyContext, ...(idToken ? { idToken: googleIdTokens() } : {}) });
  if (aeadImplementation !== 'native') logger.warn('native AES-256-GCM sealer not built (npm run build:native): sealing with node:crypto, about 5x the CPU per value');
  return createEncryptionTransform({ keys, keyContext, logger });
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`${isAppError(err) ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const logger = createLogger({ component: 'etl', level: config.logLevel, labels: { instanceId: config.instanceId } });
  const transform = transformOf(config, logger);
  const workers = await startEtlWorkers({
    projectId: config.projectId,
    pubsubEmulatorHost: config.pubsubEmulatorHost,
    storageEndpoint: config.storageEndpoint,
    stagingBucket: config.stagingBucket,
    dataBucket: config.dataBucket,
    registry: openRegistryStore(config.registry, config.projectId),
    eventTypes: config.eventTypes,
    tuning: config.tuning,
    logger,
    instanceId: config.instanceId,
    ...(config.clockOffsetMs === 0 ? {} : { now: () => Date.now() + config.clockOffsetMs }),
    bigQuery: { dataset: config.bigQuery.dataset, endpoint: config.bigQuery.endpoint, location: config.bigQuery.location, createTables: config.bigQuery.createTables },
    ...(transform === undefined ? {} : { transform }),
    ...(config.metricsPort === undefined ? {} : { metrics: { port: config.metricsPort, processMetrics: true } }),
  });
  logger.info('etl workers started', {
    eventTypes: workers.eventTypes(),
    registry: config.registry.kind,
    encryption: transform === undefined ? 'off' : 'padlock',
    refused: Object.keys(workers.refused()),
    bigQueryLoaders: Object.keys(workers.loaderStats()),
    metrics: workers.metricsUrl ?? 'off',
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void workers.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
