/**
 * Configuration of the standalone emulator: `--port`, `--gcs-endpoint`,
 * `--dir`, `--host` flags, falling back to BIGQUERY_EMULATOR_PORT,
 * BIGQUERY_EMULATOR_GCS_ENDPOINT, BIGQUERY_EMULATOR_DIR, BIGQUERY_EMULATOR_HOST.
 */
import { z } from 'zod';
import { flagsToEnv, parseEnv, portVar, urlVar, type Env } from '../../lib/config.ts';
import { AppError } from '../../lib/errors.ts';

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

const FLAGS = new Map([
  ['PORT', 'BIGQUERY_EMULATOR_PORT'],
  ['GCS_ENDPOINT', 'BIGQUERY_EMULATOR_GCS_ENDPOINT'],
  ['DIR', 'BIGQUERY_EMULATOR_DIR'],
  ['HOST', 'BIGQUERY_EMULATOR_HOST_ADDRESS'],
]);

export function loadConfig(argv: readonly string[], env: Env = process.env): BigQueryEmulatorConfig {
  const flags = flagsToEnv(argv, {});
  for (const k of Object.keys(flags)) {
    if (!FLAGS.has(k)) {
      throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: unknown flag --${k.toLowerCase().replace(/_/g, '-')} (expected --port, --gcs-endpoint, --dir, --host)` });
    }
  }
  const pick = (flag: string): string | undefined => flags[flag] ?? env[FLAGS.get(flag)!];
  const parsed = parseEnv(
    {
      BIGQUERY_EMULATOR_PORT: portVar.optional(),
      BIGQUERY_EMULATOR_GCS_ENDPOINT: urlVar,
      BIGQUERY_EMULATOR_DIR: z.string().trim().min(1, 'expected a directory path').optional(),
      BIGQUERY_EMULATOR_HOST_ADDRESS: z.string().trim().min(1, 'expected a host address').optional(),
    },
    {
      BIGQUERY_EMULATOR_PORT: pick('PORT'),
      BIGQUERY_EMULATOR_GCS_ENDPOINT: pick('GCS_ENDPOINT'),
      BIGQUERY_EMULATOR_DIR: pick('DIR'),
      BIGQUERY_EMULATOR_HOST_ADDRESS: pick('HOST'),
    },
  );
  return {
    port: parsed.BIGQUERY_EMULATOR_PORT ?? DEFAULT_PORT,
    gcsEndpoint: parsed.BIGQUERY_EMULATOR_GCS_ENDPOINT,
    dir: parsed.BIGQUERY_EMULATOR_DIR,
    host: parsed.BIGQUERY_EMULATOR_HOST_ADDRESS ?? '127.0.0.1',
  };
}
