/**
 * `npm run padlock -- backup dump|restore …`: backups of the key store (`backup-cli.ts`).
 *
 * `npm run padlock -- migrate backfill|verify|repair --from <store> --to <store>`:
 * the store migration jobs (`migrate-jobs.ts`). Progress (counts, rate) goes
 * to stderr at most once a second; the result, as JSON, to stdout; repair
 * prints one line per user it repaired. Exit 0 when done (verify: and no
 * differences), 2 when verify or repair leaves differences, 1 on bad options
 * or a failure (rerun to resume from the checkpoint).
 */
import { createLogger } from '../../lib/logger.ts';
import { runBackup } from './backup-cli.ts';
import { differenceCount, runJob, type JobStats } from './migrate-jobs.ts';
import { readCommandLine } from '../../lib/command-line.ts';
import { migrateCommand, parseMigrateOptions, type MigrateOptions } from './migrate-options.ts';
import { openStore } from './open-store.ts';
import { isScannable, type KeyStore } from './store.ts';

if (process.argv[2] === 'backup') process.exit(await runBackup(process.argv.slice(2), process.env));

const logger = createLogger({ component: 'padlock-migrate' });

const commandLine = readCommandLine(process.argv.slice(2), migrateCommand, (argv) => parseMigrateOptions(argv, process.env));
if (commandLine.kind !== 'run') {
  (commandLine.kind === 'help' ? process.stdout : process.stderr).write(`${commandLine.text}\n`);
  process.exit(commandLine.exitCode);
}
const options: MigrateOptions = commandLine.options;

const opened: KeyStore[] = [];
try {
  const from = await openStore(options.from, options.deadlineMs, logger);
  opened.push(from);
  const to = await openStore(options.to, options.deadlineMs, logger);
  opened.push(to);
  if (!isScannable(from) || !isScannable(to)) throw new Error('both stores must support scanning');
  let lastProgress = 0;
  const progress = (s: JobStats): void => {
    if (Date.now() - lastProgress < 1_000 && s.phase !== 'done') return;
    lastProgress = Date.now();
    const scanned = s.scannedA + s.scannedB;
    const rate = s.elapsedMs > 0 ? Math.round((scanned * 1000) / s.elapsedMs) : 0;
    process.stderr.write(`${s.job} [${s.phase}] scanned ${s.scannedA} in ${from.kind}, ${s.scannedB} in ${to.kind}; copied ${s.copied}; ${rate} users/s\n`);
  };
  const stats = await runJob(options.job, {
    from,
    to,
    pageSize: options.pageSize,
    checkpointFile: options.checkpointFile,
    onProgress: progress,
    onRepair: (userId, kinds, action) => process.stdout.write(`${JSON.stringify({ repaired: userId, differences: kinds, action })}\n`),
  });
  process.stdout.write(`${JSON.stringify({ from: from.kind, to: to.kind, ...stats }, null, 2)}\n`);
  await Promise.all(opened.map((s) => s.close()));
  process.exit(options.job !== 'backfill' && differenceCount(stats) > 0 ? 2 : 0);
} catch (err) {
  process.stderr.write(`padlock migrate ${options.job} failed: ${err instanceof Error ? err.message : String(err)} (rerun to resume from ${options.checkpointFile})\n`);
  await Promise.allSettled(opened.map((s) => s.close()));
  process.exit(1);
}
