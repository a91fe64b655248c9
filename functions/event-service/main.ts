/**
 * Entry point: `node --import tsx functions/event-service/main.ts`.
 * Reads the environment (config.ts), serves until SIGTERM/SIGINT, then shuts
 * down gracefully. The only place that exits the process.
 */
import { createLogger } from '../../lib/logger.ts';
import { isAppError } from '../../lib/errors.ts';
import { openRegistryStore } from '../../lib/registry/open.ts';
import { loadConfig } from './config.ts';
import { startEventService } from './server.ts';
import { closeOnSignals } from '../../lib/http/index.ts';

const logger = createLogger({ component: 'event-service' });

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    logger.error(isAppError(err) ? err.message : 'Invalid configuration', { error: err });
    process.exit(1);
  }
  const service = await startEventService(config.service, {
    registry: openRegistryStore(config.registry, config.service.projectId),
    logger: createLogger({ component: 'event-service', level: config.service.logLevel }),
  });
  logger.info(`event service: ${service.url}`);
  closeOnSignals(() => service.close(), logger);
}

main().catch((err: unknown) => {
  logger.error('event service failed to start', { error: err });
  process.exit(1);
});
