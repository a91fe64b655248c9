/**
 * Options of `npm run padlock -- migrate backfill|verify|repair --from <store> --to <store>`:
 * parsed and validated once; each store's connection comes from its usual
 * padlock variables (`loadStoreConfig`).
 */
import path from 'node:path';
import { z } from 'zod';
import { optionsAsEnv, parseCommandLine, usageError, type CommandSpec } from '../../lib/command-line.ts';
import { parseEnv, positiveIntVar, type Env } from '../../lib/config.ts';
import { AppError } from '../../lib/errors.ts';
import { loadStoreConfig, type StoreConfig } from './config.ts';
import type { JobName } from './migrate-jobs.ts';
import { storeKinds } from './store.ts';

const stores = storeKinds.join('|');

export const migrateCommand: CommandSpec = {
  usage: `npm run padlock -- migrate backfill|verify|repair --from ${stores} --to ${stores} [options]`,
  summary: "Moves padlock's keys between stores on a running system: backfill copies, verify compares, repair fixes differences (resumable from a checkpoint).",
  maxPositionals: 2,
  options: {
    from: { type: 'string', value: `<${stores}>`, description: 'store to read (its connection from the usual padlock variables; required)' },
    to: { type: 'string', value: `<${stores}>`, description: 'store to write or compare with (required)' },
    'page-size': { type: 'string', value: '<n>', description: 'users per page, at most 1000 (default 500)' },
    checkpoint: { type: 'string', value: '<file>', description: 'checkpoint file (default under PADLOCK_DATA_DIR)' },
    'deadline-ms': { type: 'string', value: '<n>', description: 'deadline of each store call (default 10000)' },
  },
  epilog: 'exit codes: 0 done (verify: no differences), 2 differences left, 1 bad options or a failure (rerun to resume)',
};

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
  const line = parseCommandLine(argv, migrateCommand);
  const [command, job] = line.positionals;
  if (command !== 'migrate' || (job !== 'backfill' && job !== 'verify' && job !== 'repair')) {
    throw usageError(`expected 'migrate backfill|verify|repair'`);
  }
  const flagEnv = optionsAsEnv(line);
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
