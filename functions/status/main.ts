/**
 * Entry point: `node --import tsx functions/status/main.ts`.
 * Reads the environment (config.ts), serves until SIGTERM/SIGINT. The only
 * place that exits the process.
 */
import { createLogger } from '../../lib/logger.ts';
import { isAppError } from '../../lib/errors.ts';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { openRegistryStore } from '../../lib/registry/open.ts';
import { loadConfig, type StatusConfig } from './config.ts';
import { startStatusService } from './server.ts';
import { closeOnSignals } from '../../lib/http/index.ts';

const logger = createLogger({ component: 'status' });

async function main(): Promise<void> {
  let config: StatusConfig;
  try {
    config = loadConfig();
  } catch (err) {
    logger.error(isAppError(err) ? err.message : 'Invalid configuration', { error: err });
    process.exit(1);
  }
  const service = await startStatusService({
    host: config.host,
    port: config.port,
    projectId: config.projectId,
    storage: createStorage({ projectId: config.projectId, apiEndpoint: config.storageEndpoint }),
    stagingBucket: config.stagingBucket,
    dataBucket: config.dataBucket,
    registry: openRegistryStore(config.registry, config.projectId),
    pubsub: createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost }),
    tuning: config.tuning,
    logger: createLogger({ component: 'status', level: config.logLevel }),
  });
  logger.info(`partition status: ${service.url}`);
  closeOnSignals(() => service.close(), logger);
}

main().catch((err: unknown) => {
  logger.error('status service failed to start', { error: err });
  process.exit(1);
});
