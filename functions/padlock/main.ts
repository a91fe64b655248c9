/**
 * `node --import tsx functions/padlock/main.ts`: runs padlock alone from the
 * environment (see README). The only file that exits: 1 on bad configuration,
 * naming the variable; 0 after a clean shutdown on SIGINT/SIGTERM.
 */
import { loadConfig, type PadlockConfig } from './config.ts';
import { startPadlock } from './server.ts';
import { createLogger } from '../../lib/logger.ts';

const logger = createLogger({ component: 'padlock' });

let config: PadlockConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const running = await startPadlock(config, { logger }).catch((err: unknown) => {
  process.stderr.write(`padlock failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
process.stdout.write(`padlock: ${running.url}\n`);

const stop = (signal: string): void => {
  logger.info('shutting down', { signal });
  running.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
