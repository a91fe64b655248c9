/**
 * `npm run emulator:gcs -- --port <port> [--dir <folder>] [--host <addr>]`:
 * runs the emulator until SIGINT/SIGTERM; prints `gcs: http://127.0.0.1:<port>`
 * once it accepts requests. Exits 1 on bad configuration.
 */
import { createLogger } from '../../lib/logger.ts';
import { loadConfig } from './config.ts';
import { startGcsEmulator } from './server.ts';

const logger = createLogger({ component: 'gcs-emulator', level: 'WARNING' });

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const emulator = await startGcsEmulator({ port: config.port, host: config.host, dir: config.dir, logger });
  process.stdout.write(`gcs: ${emulator.url}\n`);
  const stop = (): void => {
    void emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  logger.error('gcs emulator failed to start', { err: err instanceof Error ? err : String(err) });
  process.exit(1);
});
