/**
 * Options of `npm run padlock -- backup dump|restore`: parsed and validated
 * once; each store's connection comes from its usual padlock variables
 * (`loadStoreConfig`), so `--to` and `--deletions-from` of one kind are the same store.
 */
import { z } from 'zod';
import { optionsAsEnv, parseCommandLine, usageError, type CommandSpec } from '../../lib/command-line.ts';
import { parseEnv, positiveIntVar, type Env } from '../../lib/config.ts';
import { MAX_DUMP_RETENTION_DAYS } from './backup.ts';
import { loadStoreConfig, type StoreConfig } from './config.ts';
import { storeKinds } from './store.ts';

const stores = storeKinds.join('|');

export const backupCommand: CommandSpec = {
  usage:
    `npm run padlock -- backup dump --from ${stores} --out <file> [--expires-in-days ${MAX_DUMP_RETENTION_DAYS}] [options]\n` +
    `       npm run padlock -- backup restore --from <file> --to ${stores} --deletions-from ${stores} [options]`,
  summary: "Dumps the key store to a file that expires within the deletion bound, or restores one without bringing a deleted key back.",
  maxPositionals: 2,
  options: {
    from: { type: 'string', value: '<store|file>', description: 'dump: the store to read; restore: the dump file (required)' },
    out: { type: 'string', value: '<file>', description: 'dump: the file to write (required)' },
    to: { type: 'string', value: `<${stores}>`, description: 'restore: the store to write (required)' },
    'deletions-from': { type: 'string', value: `<${stores}>`, description: 'restore: the store whose deletions win (required)' },
    'expires-in-days': { type: 'string', value: '<n>', description: `dump: days until the dump expires (at most and default ${MAX_DUMP_RETENTION_DAYS})` },
    'page-size': { type: 'string', value: '<n>', description: 'users per page, at most 1000 (default 500)' },
    'deadline-ms': { type: 'string', value: '<n>', description: 'deadline of each store call (default 10000)' },
  },
};

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
  const line = parseCommandLine(argv, backupCommand);
  const [command, job] = line.positionals;
  if (command !== 'backup' || (job !== 'dump' && job !== 'restore')) throw usageError(`expected 'backup dump|restore'`);
  const flagEnv = optionsAsEnv(line);
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
