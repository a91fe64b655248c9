/**
 * Options of `npm run padlock -- backup dump|restore`: parsed and validated
 * once; each store's connection comes from its usual padlock variables
 * (`loadStoreConfig`), so `--to` and `--deletions-from` of one kind are the same store.
 */
import { z } from 'zod';
import { flagsToEnv, parseEnv, positiveIntVar, type Env } from '../../lib/config.ts';
import { AppError } from '../../lib/errors.ts';
import { MAX_DUMP_RETENTION_DAYS } from './backup.ts';
import { loadStoreConfig, type StoreConfig } from './config.ts';
import { storeKinds } from './store.ts';

export const backupUsage =
  'usage: npm run padlock -- backup dump --from embedded|bigtable|postgres --out <file> [--expires-in-days 30] [--page-size 500] [--deadline-ms 10000]\n' +
  '       npm run padlock -- backup restore --from <file> --to embedded|bigtable|postgres --deletions-from embedded|bigtable|postgres [--page-size 500] [--deadline-ms 10000]';

export type BackupOptions =
  | { job: 'dump'; from: StoreConfig; out: string; expiresInDays: number; pageSize: number; deadlineMs: number }
  | { job: 'restore'; file: string; to: StoreConfig; deletionsFrom: StoreConfig; pageSize: number; deadlineMs: number };

const common = {
  PAGE_SIZE: positiveIntVar.refine((n) => n <= 1_000, 'expected at most 1000').default(500),
  DEADLINE_MS: positiveIntVar.default(10_000),
};
const file = z.string().trim().min(1, 'expected a file path');
const dumpShape = {
  ...common,
  FROM: z.enum(storeKinds),
  OUT: file,
  EXPIRES_IN_DAYS: positiveIntVar
    .refine((n) => n <= MAX_DUMP_RETENTION_DAYS, `expected at most ${MAX_DUMP_RETENTION_DAYS} (the deletion bound for backups)`)
    .default(MAX_DUMP_RETENTION_DAYS),
};
const restoreShape = { ...common, FROM: file, TO: z.enum(storeKinds), DELETIONS_FROM: z.enum(storeKinds) };

export function parseBackupOptions(argv: readonly string[], env: Env): BackupOptions {
  const [command, job, ...flags] = argv;
  if (command !== 'backup' || (job !== 'dump' && job !== 'restore')) {
    throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: expected 'backup dump|restore'. ${backupUsage}` });
  }
  const flagEnv = flagsToEnv(flags, {});
  if (job === 'dump') {
    const o = parseEnv(dumpShape, flagEnv);
    return { job, from: loadStoreConfig(o.FROM, env), out: o.OUT, expiresInDays: o.EXPIRES_IN_DAYS, pageSize: o.PAGE_SIZE, deadlineMs: o.DEADLINE_MS };
  }
  const o = parseEnv(restoreShape, flagEnv);
  return {
    job,
    file: o.FROM,
    to: loadStoreConfig(o.TO, env),
    deletionsFrom: loadStoreConfig(o.DELETIONS_FROM, env),
    pageSize: o.PAGE_SIZE,
    deadlineMs: o.DEADLINE_MS,
  };
}
