/**
 * `node --import tsx etl/main.ts`: one ETL worker deployment. Hosts the types
 * in EVENT_TYPES (or every active type), exits 1 naming the variable on bad
 * configuration, and shuts down cleanly on SIGTERM/SIGINT.
 */
import { isAppError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { loadConfig } from './config.ts';
import { FileRegistryReader } from './registry-file.ts';
import { startEtlWorkers } from './workers.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`${isAppError(err) ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const logger = createLogger({ component: 'etl', level: config.logLevel, labels: { instanceId: config.instanceId } });
  const workers = await startEtlWorkers({
    projectId: config.projectId,
    pubsubEmulatorHost: config.pubsubEmulatorHost,
    storageEndpoint: config.storageEndpoint,
    stagingBucket: config.stagingBucket,
    dataBucket: config.dataBucket,
    registry: new FileRegistryReader(config.registryFile),
    eventTypes: config.eventTypes,
    tuning: config.tuning,
    logger,
    instanceId: config.instanceId,
  });
  logger.info('etl workers started', { eventTypes: workers.eventTypes() });
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
