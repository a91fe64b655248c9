/**
 * `npm start`: the whole platform on one machine. Starts the emulators and the
 * services, prints each endpoint as `<name>: <url>`, and runs until Ctrl-C or
 * SIGTERM, then shuts everything down cleanly. The only place that exits.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { parseStartOptions, type StartOptions } from './start-options.ts';
import { startPubSubEmulator } from '../lib/emulators/google.ts';
import { createLogger } from '../lib/logger.ts';
import { isAppError } from '../lib/errors.ts';

interface Running {
  name: string;
  url: string;
  stop(): Promise<void>;
}

const logger = createLogger({ component: 'start' });

async function startPlatform(opts: StartOptions): Promise<Running[]> {
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  process.env.METADATA_SERVER_DETECTION = 'none';
  const running: Running[] = [];
  const pubsub = await startPubSubEmulator({ port: opts.pubsubPort, dataDir });
  running.push({ name: 'pubsub', url: `http://${pubsub.host}`, stop: () => pubsub.stop() });
  return running;
}

async function main(): Promise<void> {
  let opts: StartOptions;
  try {
    opts = parseStartOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const running = await startPlatform(opts).catch((err: unknown) => {
    process.stderr.write(`start failed: ${isAppError(err) ? err.message : String(err)}\n`);
    process.exit(1);
  });
  for (const r of running) process.stdout.write(`${r.name}: ${r.url}\n`);
  logger.info('platform running; Ctrl-C to stop');

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    for (const r of [...running].reverse()) {
      await r.stop().catch((err: unknown) => logger.error('stop failed', { component: r.name, err }));
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  setInterval(() => {}, 1 << 30);
}

void main();
