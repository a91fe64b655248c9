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
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  logger.error('event service failed to start', { error: err });
  process.exit(1);
});
