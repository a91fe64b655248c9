/**
 * Options of the decrypt CLI (`npm run decrypt -- <partition> --padlock <url[,url…]>
 * --service <name> --secret-env <VAR> [--storage-endpoint <url>]
 * [--context <key context>] [--project <id>] [--padlock-cache-ttl-ms <n>]
 * [--id-token]`),
 * validated once; the secret is read from the named environment variable so
 * it never appears in a process listing.
 */
import { z } from 'zod';
import { optionsAsEnv, parseCommandLine, usageError, type CommandSpec } from '../command-line.ts';
import { booleanVar, parseEnv, positiveIntVar, urlVar, type Env } from '../config.ts';
import { consumerOptions, consumerSecret, consumerShape } from '../padlock-client/consumer-options.ts';
import { parsePartitionLocation, type PartitionLocation } from './partition-reader.ts';

export interface DecryptOptions {
  partition: PartitionLocation;
  /** Padlock's deployment groups, primary first. */
  padlockUrls: string[];
  /** Send identity tokens of the runtime service account (padlock on Cloud Run with IAM). */
  idToken: boolean;
  service: string;
  secret: string;
  /** Overrides the key context recorded in the delivered schema. */
  context: string | undefined;
  storageEndpoint: string | undefined;
  projectId: string;
  cacheTtlMs: number | undefined;
}

export const decryptCommand: CommandSpec = {
  usage: 'npm run decrypt -- <gs://bucket/<type>/dt=YYYY-MM-DD/hour=HH | local folder> --padlock <url[,url…]> --service <name> --secret-env <VAR> [options]',
  summary: 'Decrypts a closed partition as a consumer: one JSON line per event on stdout, a summary on stderr.',
  maxPositionals: 1,
  options: {
    ...consumerOptions,
    'storage-endpoint': { type: 'string', value: '<url>', description: 'Cloud Storage endpoint (the GCS emulator locally)' },
    context: { type: 'string', value: '<key context>', description: 'overrides the key context recorded in the delivered schema' },
    project: { type: 'string', value: '<id>', description: 'project id (default local-project)' },
    'padlock-cache-ttl-ms': { type: 'string', value: '<n>', description: "how long the padlock client caches keys" },
    'id-token': { type: 'boolean', description: 'send identity tokens of the runtime service account (padlock on Cloud Run with IAM)' },
  },
};

const shape = {
  ...consumerShape,
  ID_TOKEN: booleanVar.default(false),
  STORAGE_ENDPOINT: urlVar.optional(),
  CONTEXT: z.string().trim().min(1).optional(),
  PROJECT: z.string().trim().min(1).default('local-project'),
  PADLOCK_CACHE_TTL_MS: positiveIntVar.optional(),
};

/** Parses argv (after the script name) with `env` holding the secret. */
export function parseDecryptOptions(argv: readonly string[], env: Env): DecryptOptions {
  const line = parseCommandLine(argv, decryptCommand);
  const partition = line.positionals[0];
  if (partition === undefined) throw usageError('expected one partition (gs://… or a local folder)');
  const e = parseEnv(shape, optionsAsEnv(line));
  const secret = consumerSecret(e.SECRET_ENV, env);
  return {
    partition: parsePartitionLocation(partition),
    padlockUrls: e.PADLOCK,
    idToken: e.ID_TOKEN,
    service: e.SERVICE,
    secret,
    context: e.CONTEXT,
    storageEndpoint: e.STORAGE_ENDPOINT,
    projectId: e.PROJECT,
    cacheTtlMs: e.PADLOCK_CACHE_TTL_MS,
  };
}
