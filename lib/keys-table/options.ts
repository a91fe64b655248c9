/**
 * Options of the keys-table sync CLI (`npm run keys-table -- …`), validated
 * once. The padlock secret is read from the environment variable named by
 * `--secret-env`, so it never appears in a process listing.
 */
import { z } from 'zod';
import { optionsAsEnv, parseCommandLine, type CommandSpec } from '../command-line.ts';
import { parseEnv, positiveIntVar, urlVar, type Env } from '../config.ts';
import { consumerOptions, consumerSecret, consumerShape } from '../padlock-client/consumer-options.ts';

export const keysTableCommand: CommandSpec = {
  usage: 'npm run keys-table -- --padlock <url[,url…]> --service <name> --secret-env <VAR> --dataset <dataset> --staging-bucket <bucket> [options]',
  summary: "Syncs a consumer's BigQuery keys table from padlock (Tink keysets for AEAD.DECRYPT_BYTES; shredded users are dropped).",
  options: {
    ...consumerOptions,
    dataset: { type: 'string', value: '<dataset>', description: 'dataset of the keys table (required)' },
    'staging-bucket': { type: 'string', value: '<bucket>', description: 'bucket the load files are staged in (required)' },
    table: { type: 'string', value: '<table>', description: 'keys table (default keysets)' },
    'users-from': { type: 'string', value: '<dataset>.<table>[$partition]', description: 'an events table (or partition) whose subjects to start tracking' },
    'user-column': { type: 'string', value: '<path>', description: 'column of the subject in --users-from (default payload.userId)' },
    categories: { type: 'string', value: '<a,b>', description: 'data categories to sync (default all)' },
    context: { type: 'string', value: '<key context>', description: "key context (default the service's first)" },
    'every-seconds': { type: 'string', value: '<n>', description: 'sync again every n seconds (default once)' },
    'bigquery-endpoint': { type: 'string', value: '<url>', description: 'BigQuery endpoint (the emulator locally)' },
    'storage-endpoint': { type: 'string', value: '<url>', description: 'Cloud Storage endpoint (the emulator locally)' },
    project: { type: 'string', value: '<id>', description: 'project id (default local-project)' },
    location: { type: 'string', value: '<loc>', description: 'BigQuery location' },
  },
};

export interface KeysTableOptions {
  padlockUrls: string[];
  service: string;
  secret: string;
  context: string | undefined;
  categories: string[] | undefined;
  dataset: string;
  table: string;
  stagingBucket: string;
  /** An events table (or one partition) whose subjects the sync starts tracking. */
  usersFrom: { dataset: string; table: string; column: string } | undefined;
  /** Sync again every this many ms; once if absent. */
  everyMs: number | undefined;
  bigqueryEndpoint: string | undefined;
  storageEndpoint: string | undefined;
  projectId: string;
  location: string | undefined;
}

const bigQueryName = z.string().trim().regex(/^[A-Za-z0-9_]{1,1024}$/, 'expected a BigQuery name (letters, digits, underscores)');

const shape = {
  ...consumerShape,
  CONTEXT: z.string().trim().min(1).optional(),
  CATEGORIES: z.string().trim().regex(/^[a-z][a-z0-9_-]*(,[a-z][a-z0-9_-]*)*$/, 'expected comma-separated categories, e.g. contact,location').optional(),
  DATASET: bigQueryName,
  TABLE: bigQueryName.default('keysets'),
  STAGING_BUCKET: z.string().trim().regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, 'expected a bucket name'),
  USERS_FROM: z.string().trim().regex(/^[A-Za-z0-9_]+\.[A-Za-z0-9_]+(\$[0-9]{4,10})?$/, 'expected <dataset>.<table> or <dataset>.<table>$<partition>').optional(),
  USER_COLUMN: z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, 'expected a dotted column path, e.g. payload.userId').default('payload.userId'),
  EVERY_SECONDS: positiveIntVar.optional(),
  BIGQUERY_ENDPOINT: urlVar.optional(),
  STORAGE_ENDPOINT: urlVar.optional(),
  PROJECT: z.string().trim().min(1).default('local-project'),
  LOCATION: z.string().trim().min(1).optional(),
};

/** Parses argv (flags only) with `env` holding the secret. */
export function parseKeysTableOptions(argv: readonly string[], env: Env): KeysTableOptions {
  const e = parseEnv(shape, optionsAsEnv(parseCommandLine(argv, keysTableCommand)));
  const secret = consumerSecret(e.SECRET_ENV, env);
  let usersFrom: KeysTableOptions['usersFrom'];
  if (e.USERS_FROM !== undefined) {
    const dot = e.USERS_FROM.indexOf('.');
    usersFrom = { dataset: e.USERS_FROM.slice(0, dot), table: e.USERS_FROM.slice(dot + 1), column: e.USER_COLUMN };
  }
  return {
    padlockUrls: e.PADLOCK,
    service: e.SERVICE,
    secret,
    context: e.CONTEXT,
    categories: e.CATEGORIES?.split(','),
    dataset: e.DATASET,
    table: e.TABLE,
    stagingBucket: e.STAGING_BUCKET,
    usersFrom,
    everyMs: e.EVERY_SECONDS === undefined ? undefined : e.EVERY_SECONDS * 1000,
    bigqueryEndpoint: e.BIGQUERY_ENDPOINT,
    storageEndpoint: e.STORAGE_ENDPOINT,
    projectId: e.PROJECT,
    location: e.LOCATION,
  };
}
