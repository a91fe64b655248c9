/**
 * Configuration of the standalone emulator: `--port`, `--dir`, `--host`
 * flags, falling back to GCS_EMULATOR_PORT / GCS_EMULATOR_DIR / GCS_EMULATOR_HOST.
 */
import { z } from 'zod';
import { flagsToEnv, parseEnv, portVar, type Env } from '../../lib/config.ts';
import { AppError } from '../../lib/errors.ts';

export interface GcsEmulatorConfig {
  port: number;
  /** Data directory; in memory when absent. */
  dir: string | undefined;
  host: string;
}

/** Default port, as fake-gcs-server and the Cloud SDK docs use. */
export const DEFAULT_PORT = 4443;

export function loadConfig(argv: readonly string[], env: Env = process.env): GcsEmulatorConfig {
  const flags = flagsToEnv(argv, {});
  for (const k of Object.keys(flags)) {
    if (!['PORT', 'DIR', 'HOST'].includes(k)) {
      throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: unknown flag --${k.toLowerCase()} (expected --port, --dir, --host)` });
    }
  }
  const parsed = parseEnv(
    {
      GCS_EMULATOR_PORT: portVar.optional(),
      GCS_EMULATOR_DIR: z.string().trim().min(1, 'expected a directory path').optional(),
      GCS_EMULATOR_HOST: z.string().trim().min(1, 'expected a host address').optional(),
    },
    {
      GCS_EMULATOR_PORT: flags.PORT ?? env.GCS_EMULATOR_PORT,
      GCS_EMULATOR_DIR: flags.DIR ?? env.GCS_EMULATOR_DIR,
      GCS_EMULATOR_HOST: flags.HOST ?? env.GCS_EMULATOR_HOST,
    },
  );
  return {
    port: parsed.GCS_EMULATOR_PORT ?? DEFAULT_PORT,
    dir: parsed.GCS_EMULATOR_DIR,
    host: parsed.GCS_EMULATOR_HOST ?? '127.0.0.1',
  };
}
