/**
 * `npm run keys-table -- --padlock <url> --service <name> --secret-env <VAR> --dataset <d> --staging-bucket <b> [...]`
 *
 * Syncs a consumer's BigQuery keys table (lib/keys-table) from padlock: once,
 * or every `--every-seconds` (the deletion bound of the table is that
 * interval plus padlock's cache TTL plus one sync). With `--users-from`, the
 * subjects of that events table (or partition) are tracked too. Prints one
 * line per sync; exit 1 on bad options or a failed one-off sync. A failed
 * periodic sync is reported and tried again at the next interval.
 */
import { createBigQuery, createStorage } from '../lib/gcp/clients.ts';
import { subjectsOf, syncKeysTable } from '../lib/keys-table/index.ts';
import { readCommandLine } from '../lib/command-line.ts';
import { keysTableCommand, parseKeysTableOptions, type KeysTableOptions } from '../lib/keys-table/options.ts';
import { createLogger } from '../lib/logger.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';

async function syncOnce(o: KeysTableOptions): Promise<void> {
  const bigquery = createBigQuery({ projectId: o.projectId, apiEndpoint: o.bigqueryEndpoint });
  const target = { bigquery, dataset: o.dataset, table: o.table, location: o.location };
  const addUsers = o.usersFrom === undefined ? [] : await subjectsOf({ bigquery, dataset: o.usersFrom.dataset, table: o.usersFrom.table, location: o.location }, o.usersFrom.column);
  const result = await syncKeysTable({
    target,
    padlock: createPadlockClient({ url: o.padlockUrls, service: o.service, secret: o.secret, ...(o.context === undefined ? {} : { context: o.context }) }),
    storage: createStorage({ projectId: o.projectId, apiEndpoint: o.storageEndpoint }),
    stagingBucket: o.stagingBucket,
    addUsers,
    ...(o.categories === undefined ? {} : { categories: o.categories }),
    ...(o.context === undefined ? {} : { context: o.context }),
    logger: createLogger({ component: 'keys-table', level: 'WARNING' }),
  });
  process.stdout.write(`synced ${o.dataset}.${o.table}: ${result.users} users, ${result.rows} keysets, ${result.removedUsers} users removed (job ${result.jobId})\n`);
}

function failed(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return `keys-table sync failed${typeof code === 'string' ? ` (${code})` : ''}: ${err instanceof Error ? err.message : String(err)}`;
}

const commandLine = readCommandLine(process.argv.slice(2), keysTableCommand, (argv) => parseKeysTableOptions(argv, process.env));
if (commandLine.kind !== 'run') {
  (commandLine.kind === 'help' ? process.stdout : process.stderr).write(`${commandLine.text}\n`);
  process.exit(commandLine.exitCode);
}
const options: KeysTableOptions = commandLine.options;

// Against emulators, do not probe for a GCE metadata server (the clients' warning about it is noise).
if (options.bigqueryEndpoint !== undefined) process.env.METADATA_SERVER_DETECTION = 'none';

if (options.everyMs === undefined) {
  syncOnce(options).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${failed(err)}\n`);
      process.exit(1);
    },
  );
} else {
  const every = options.everyMs;
  const loop = async (): Promise<void> => {
    await syncOnce(options).catch((err: unknown) => process.stderr.write(`${failed(err)}\n`));
    setTimeout(() => void loop(), every);
  };
  process.on('SIGINT', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  void loop();
}
