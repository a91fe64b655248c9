/**
 * `npm run padlock -- backup dump|restore` (`backup.ts`): the result, as JSON
 * (times and counts, never a key), to stdout. Exit 0 when done, 1 on bad
 * options, a refused dump (expired, malformed, truncated) or a failure.
 */
import { createLogger } from '../../lib/logger.ts';
import { dumpKeychains, restoreDump } from './backup.ts';
import { readCommandLine } from '../../lib/command-line.ts';
import { backupCommand, parseBackupOptions, type BackupOptions } from './backup-options.ts';
import { openStore } from './open-store.ts';
import { isScannable, type KeyStore, type ScannableKeyStore } from './store.ts';

const logger = createLogger({ component: 'padlock-backup' });

export async function runBackup(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const line = readCommandLine(argv, backupCommand, (args) => parseBackupOptions(args, env));
  if (line.kind !== 'run') {
    (line.kind === 'help' ? process.stdout : process.stderr).write(`${line.text}\n`);
    return line.exitCode;
  }
  const options: BackupOptions = line.options;
  const opened: KeyStore[] = [];
  const scannable = async (config: Parameters<typeof openStore>[0]): Promise<ScannableKeyStore> => {
    const store = await openStore(config, options.deadlineMs, logger);
    opened.push(store);
    if (!isScannable(store)) throw new Error(`the ${store.kind} store does not support scanning`);
    return store;
  };
  try {
    let result: object;
    if (options.job === 'dump') {
      const from = await scannable(options.from);
      result = await dumpKeychains(from, options.out, { expiresInDays: options.expiresInDays, pageSize: options.pageSize });
    } else {
      const to = await scannable(options.to);
      // One kind is one store (same variables): open it once.
      const deletionsFrom = options.deletionsFrom.kind === options.to.kind ? to : await scannable(options.deletionsFrom);
      result = await restoreDump(options.file, { to, deletionsFrom }, { pageSize: options.pageSize });
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    await Promise.all(opened.map((s) => s.close()));
    return 0;
  } catch (err) {
    process.stderr.write(`padlock backup ${options.job} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await Promise.allSettled(opened.map((s) => s.close()));
    return 1;
  }
}
