/**
 * Options of `npm start` (the local platform). Every port and the data folder
 * come from flags (`--pubsub-port 9085`) or the environment (`PUBSUB_PORT=9085`),
 * flags winning; defaults are stable so docs and scripts can rely on them.
 */
import { z } from 'zod';
import { parseEnv, portVar, type Env } from '../lib/config.ts';
import { optionsAsEnv, parseCommandLine, type CommandSpec } from '../lib/command-line.ts';

/** Default local ports (documented in README.md). */
export const defaultPorts = {
  PUBSUB_PORT: '8085',
  GCS_PORT: '4443',
  BIGQUERY_PORT: '9050',
  EVENT_SERVICE_PORT: '8080',
  COMPOSER_PORT: '8090',
  PADLOCK_PORT: '8091',
  STATUS_PORT: '8092',
} as const;

/** How long a graceful stop may spend staging what Pub/Sub still holds (documented in README.md). */
export const defaultDrainTimeoutSeconds = 300;

export interface StartOptions {
  pubsubPort: number;
  gcsPort: number;
  bigqueryPort: number;
  eventServicePort: number;
  composerPort: number;
  padlockPort: number;
  statusPort: number;
  dataDir: string;
  projectId: string;
  /** Bound on a graceful stop's drain of Pub/Sub into staging. */
  drainTimeoutMs: number;
}

const port = (name: string, variable: keyof typeof defaultPorts): { type: 'string'; value: string; description: string } => ({
  type: 'string',
  value: '<port>',
  description: `${name} port (env ${variable}, default ${defaultPorts[variable]}; 0 picks a free one)`,
});

/** `npm start`'s command line (each flag also an environment variable; flags win). */
export const startCommand: CommandSpec = {
  usage: 'npm start -- [options]',
  summary: 'Runs the whole platform on loopback (emulators, padlock, composer, event service, ETL, status service); Ctrl-C stops it gracefully.',
  options: {
    'pubsub-port': port("the Pub/Sub emulator's", 'PUBSUB_PORT'),
    'gcs-port': port("the GCS emulator's", 'GCS_PORT'),
    'bigquery-port': port("the BigQuery emulator's", 'BIGQUERY_PORT'),
    'padlock-port': port("padlock's", 'PADLOCK_PORT'),
    'composer-port': port("the composer REST API's", 'COMPOSER_PORT'),
    'event-service-port': port("the event service's", 'EVENT_SERVICE_PORT'),
    'status-port': port("the partition status service's", 'STATUS_PORT'),
    'data-dir': { type: 'string', value: '<folder>', description: 'where everything is kept (env DATA_DIR, default .data)' },
    'gcp-project': { type: 'string', value: '<id>', description: 'project id (env GCP_PROJECT, default local-project)' },
    'drain-timeout-seconds': { type: 'string', value: '<n>', description: `bound on a graceful stop's drain (env DRAIN_TIMEOUT_SECONDS, default ${defaultDrainTimeoutSeconds})` },
  },
};

export function parseStartOptions(argv: readonly string[], env: Env): StartOptions {
  const merged = { ...env, ...optionsAsEnv(parseCommandLine(argv, startCommand)) };
  const c = parseEnv(
    {
      PUBSUB_PORT: portVar.default(Number(defaultPorts.PUBSUB_PORT)),
      GCS_PORT: portVar.default(Number(defaultPorts.GCS_PORT)),
      BIGQUERY_PORT: portVar.default(Number(defaultPorts.BIGQUERY_PORT)),
      EVENT_SERVICE_PORT: portVar.default(Number(defaultPorts.EVENT_SERVICE_PORT)),
      COMPOSER_PORT: portVar.default(Number(defaultPorts.COMPOSER_PORT)),
      PADLOCK_PORT: portVar.default(Number(defaultPorts.PADLOCK_PORT)),
      STATUS_PORT: portVar.default(Number(defaultPorts.STATUS_PORT)),
      DATA_DIR: z.string().trim().min(1, 'expected a folder path').default('.data'),
      GCP_PROJECT: z
        .string()
        .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a Google Cloud project id')
        .default('local-project'),
      DRAIN_TIMEOUT_SECONDS: z.coerce.number().int('expected whole seconds').min(1, 'expected at least 1 second').max(3600, 'expected at most 3600 seconds').default(defaultDrainTimeoutSeconds),
    },
    merged,
  );
  return {
    pubsubPort: c.PUBSUB_PORT,
    gcsPort: c.GCS_PORT,
    bigqueryPort: c.BIGQUERY_PORT,
    eventServicePort: c.EVENT_SERVICE_PORT,
    composerPort: c.COMPOSER_PORT,
    padlockPort: c.PADLOCK_PORT,
    statusPort: c.STATUS_PORT,
    dataDir: c.DATA_DIR,
    projectId: c.GCP_PROJECT,
    drainTimeoutMs: c.DRAIN_TIMEOUT_SECONDS * 1000,
  };
}
