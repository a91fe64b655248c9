/**
 * Options of the decrypt CLI (`npm run decrypt -- <partition> --padlock <url[,url…]>
 * --service <name> --secret-env <VAR> [--storage-endpoint <url>]
 * [--context <key context>] [--project <id>] [--padlock-cache-ttl-ms <n>]
 * [--id-token true]`),
 * validated once; the secret is read from the named environment variable so
 * it never appears in a process listing.
 */
import { z } from 'zod';
import { booleanVar, flagsToEnv, parseEnv, positiveIntVar, urlListVar, urlVar, type Env } from '../config.ts';
import { AppError } from '../errors.ts';
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

export const decryptUsage =
  'usage: npm run decrypt -- <gs://bucket/<type>/dt=YYYY-MM-DD/hour=HH | local folder> --padlock <url[,url…]> --service <name> --secret-env <VAR> [--storage-endpoint <url>] [--context <key context>] [--project <id>] [--id-token true]';

const shape = {
  PADLOCK: urlListVar,
  ID_TOKEN: booleanVar.default(false),
  SERVICE: z.string().trim().min(1, 'expected the consumer service name'),
  SECRET_ENV: z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable'),
  STORAGE_ENDPOINT: urlVar.optional(),
  CONTEXT: z.string().trim().min(1).optional(),
  PROJECT: z.string().trim().min(1).default('local-project'),
  PADLOCK_CACHE_TTL_MS: positiveIntVar.optional(),
};

/** Parses argv (after the script name) with `env` holding the secret. */
export function parseDecryptOptions(argv: readonly string[], env: Env): DecryptOptions {
  const positional = argv.filter((a, i) => !a.startsWith('--') && (i === 0 || !argv[i - 1]!.startsWith('--') || argv[i - 1]!.includes('=')));
  if (positional.length !== 1) {
    throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: expected one partition path\n${decryptUsage}` });
  }
  const flags = argv.filter((a) => a !== positional[0]);
  const e = parseEnv(shape, flagsToEnv(flags, {}));
  const secret = env[e.SECRET_ENV];
  if (secret === undefined || secret === '') {
    throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: ${e.SECRET_ENV} (from --secret-env) is not set`, details: { variables: [e.SECRET_ENV] } });
  }
  return {
    partition: parsePartitionLocation(positional[0]!),
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
