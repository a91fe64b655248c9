/**
 * Configuration of the standalone emulator: `--port`, `--dir`, `--host`
 * flags, falling back to GCS_EMULATOR_PORT / GCS_EMULATOR_DIR / GCS_EMULATOR_HOST.
 */
import { z } from 'zod';
import { parseCommandLine, stringValue, type CommandSpec } from '../../lib/command-line.ts';
import { parseEnv, portVar, type Env } from '../../lib/config.ts';

export interface GcsEmulatorConfig {
  port: number;
  /** Data directory; in memory when absent. */
  dir: string | undefined;
  host: string;
}

/** Default port, as fake-gcs-server and the Cloud SDK docs use. */
export const DEFAULT_PORT = 4443;

export const gcsEmulatorCommand: CommandSpec = {
  usage: 'npm run emulator:gcs -- [--port <port>] [--dir <folder>] [--host <addr>]',
  summary: 'Runs the GCS emulator (Cloud Storage JSON API) until SIGINT/SIGTERM; prints `gcs: <url>` once it accepts requests.',
  options: {
    port: { type: 'string', value: '<port>', description: `port (env GCS_EMULATOR_PORT, default ${DEFAULT_PORT}; 0 picks a free one)` },
    dir: { type: 'string', value: '<folder>', description: 'keep data in this folder across restarts (env GCS_EMULATOR_DIR; in memory if absent)' },
    host: { type: 'string', value: '<addr>', description: 'address to listen on (env GCS_EMULATOR_HOST, default 127.0.0.1)' },
  },
};

export function loadConfig(argv: readonly string[], env: Env = process.env): GcsEmulatorConfig {
  const line = parseCommandLine(argv, gcsEmulatorCommand);
  const flag = (name: string): string | undefined => stringValue(line, name);
  const parsed = parseEnv(
    {
      GCS_EMULATOR_PORT: portVar.optional(),
      GCS_EMULATOR_DIR: z.string().trim().min(1, 'expected a directory path').optional(),
      GCS_EMULATOR_HOST: z.string().trim().min(1, 'expected a host address').optional(),
    },
    {
      GCS_EMULATOR_PORT: flag('port') ?? env.GCS_EMULATOR_PORT,
      GCS_EMULATOR_DIR: flag('dir') ?? env.GCS_EMULATOR_DIR,
      GCS_EMULATOR_HOST: flag('host') ?? env.GCS_EMULATOR_HOST,
    },
  );
  return {
    port: parsed.GCS_EMULATOR_PORT ?? DEFAULT_PORT,
    dir: parsed.GCS_EMULATOR_DIR,
    host: parsed.GCS_EMULATOR_HOST ?? '127.0.0.1',
  };
}
