/**
 * Configuration of the standalone emulator: `--port`, `--gcs-endpoint`,
 * `--dir`, `--host` flags, falling back to BIGQUERY_EMULATOR_PORT,
 * BIGQUERY_EMULATOR_GCS_ENDPOINT, BIGQUERY_EMULATOR_DIR, BIGQUERY_EMULATOR_HOST.
 */
import { z } from 'zod';
import { parseCommandLine, stringValue, type CommandSpec } from '../../lib/command-line.ts';
import { parseEnv, portVar, urlVar, type Env } from '../../lib/config.ts';

export interface BigQueryEmulatorConfig {
  port: number;
  /** Base URL of the GCS JSON API that load jobs read `gs://` URIs from. */
  gcsEndpoint: string;
  /** Data directory; in memory when absent. */
  dir: string | undefined;
  host: string;
}

/** Default port, as other BigQuery emulators use. */
export const DEFAULT_PORT = 9050;

/** Each flag and the variable it falls back to. */
const FLAGS = new Map([
  ['port', 'BIGQUERY_EMULATOR_PORT'],
  ['gcs-endpoint', 'BIGQUERY_EMULATOR_GCS_ENDPOINT'],
  ['dir', 'BIGQUERY_EMULATOR_DIR'],
  ['host', 'BIGQUERY_EMULATOR_HOST_ADDRESS'],
]);

export const bigQueryEmulatorCommand: CommandSpec = {
  usage: 'npm run emulator:bigquery -- --gcs-endpoint <url> [--port <port>] [--dir <folder>] [--host <addr>]',
  summary: 'Runs the BigQuery emulator (v2 REST API; load jobs read gs:// URIs from a GCS emulator) until SIGINT/SIGTERM; prints `bigquery: <url>` once it accepts requests.',
  options: {
    port: { type: 'string', value: '<port>', description: `port (env BIGQUERY_EMULATOR_PORT, default ${DEFAULT_PORT}; 0 picks a free one)` },
    'gcs-endpoint': { type: 'string', value: '<url>', description: 'the GCS emulator load jobs read from (env BIGQUERY_EMULATOR_GCS_ENDPOINT; required)' },
    dir: { type: 'string', value: '<folder>', description: 'keep data in this folder across restarts (env BIGQUERY_EMULATOR_DIR; in memory if absent)' },
    host: { type: 'string', value: '<addr>', description: 'address to listen on (env BIGQUERY_EMULATOR_HOST_ADDRESS, default 127.0.0.1)' },
  },
};

export function loadConfig(argv: readonly string[], env: Env = process.env): BigQueryEmulatorConfig {
  const line = parseCommandLine(argv, bigQueryEmulatorCommand);
  const pick = (flag: string): string | undefined => stringValue(line, flag) ?? env[FLAGS.get(flag)!];
  const parsed = parseEnv(
    {
      BIGQUERY_EMULATOR_PORT: portVar.optional(),
      BIGQUERY_EMULATOR_GCS_ENDPOINT: urlVar,
      BIGQUERY_EMULATOR_DIR: z.string().trim().min(1, 'expected a directory path').optional(),
      BIGQUERY_EMULATOR_HOST_ADDRESS: z.string().trim().min(1, 'expected a host address').optional(),
    },
    {
      BIGQUERY_EMULATOR_PORT: pick('port'),
      BIGQUERY_EMULATOR_GCS_ENDPOINT: pick('gcs-endpoint'),
      BIGQUERY_EMULATOR_DIR: pick('dir'),
      BIGQUERY_EMULATOR_HOST_ADDRESS: pick('host'),
    },
  );
  return {
    port: parsed.BIGQUERY_EMULATOR_PORT ?? DEFAULT_PORT,
    gcsEndpoint: parsed.BIGQUERY_EMULATOR_GCS_ENDPOINT,
    dir: parsed.BIGQUERY_EMULATOR_DIR,
    host: parsed.BIGQUERY_EMULATOR_HOST_ADDRESS ?? '127.0.0.1',
  };
}
