/**
 * Options of `npm run padlock -- migrate backfill|verify|repair --from <store> --to <store>`:
 * parsed and validated once; each store's connection comes from its usual
 * padlock variables (`loadStoreConfig`).
 */
import path from 'node:path';
import { z } from 'zod';
import { flagsToEnv, parseEnv, positiveIntVar, type Env } from '../../lib/config.ts';
import { AppError } from '../../lib/errors.ts';
import { loadStoreConfig, type StoreConfig } from './config.ts';
import type { JobName } from './migrate-jobs.ts';
import { storeKinds } from './store.ts';

export const migrateUsage =
  'usage: npm run padlock -- migrate backfill|verify|repair --from embedded|bigtable|postgres --to embedded|bigtable|postgres [--page-size 500] [--checkpoint <file>] [--deadline-ms 10000]';

export interface MigrateOptions {
  job: JobName;
  from: StoreConfig;
  to: StoreConfig;
  pageSize: number;
  checkpointFile: string;
  deadlineMs: number;
}

const shape = {
  FROM: z.enum(storeKinds),
  TO: z.enum(storeKinds),
  PAGE_SIZE: positiveIntVar.refine((n) => n <= 1_000, 'expected at most 1000').default(500),
  CHECKPOINT: z.string().trim().min(1).optional(),
  DEADLINE_MS: positiveIntVar.default(10_000),
};

export function parseMigrateOptions(argv: readonly string[], env: Env): MigrateOptions {
  const [command, job, ...flags] = argv;
  if (command !== 'migrate' || (job !== 'backfill' && job !== 'verify' && job !== 'repair')) {
    throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: expected 'migrate backfill|verify|repair'. ${migrateUsage}` });
  }
  const flagEnv = flagsToEnv(flags, {});
  const o = parseEnv(shape, flagEnv);
  if (o.FROM === o.TO) throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: --from and --to are both ${o.FROM}` });
  const dataDir = env.PADLOCK_DATA_DIR ?? '.data/padlock';
  return {
    job,
    from: loadStoreConfig(o.FROM, env),
    to: loadStoreConfig(o.TO, env),
    pageSize: o.PAGE_SIZE,
    checkpointFile: o.CHECKPOINT ?? path.join(dataDir, `migrate-${job}-${o.FROM}-${o.TO}.checkpoint.json`),
    deadlineMs: o.DEADLINE_MS,
  };
}
