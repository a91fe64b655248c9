/**
 * The composer CLI's dispatcher: `npm run composer -- <command> [options]`
 * (composer/main.ts runs it). Each command is a module in commands/ with
 * `help` and `run(argv, io)`; adding one is one line in `commands`.
 *
 * Commands work directly on the local registry folder (`--registry-dir`, env
 * REGISTRY_DIR, default `.data/registry`; the file store's lock makes it safe
 * beside a running composer) and on the Pub/Sub endpoint of
 * PUBSUB_EMULATOR_HOST (Google Pub/Sub if unset). `compat` needs neither.
 *
 * Exit codes: 0 ok, 1 incompatible / validation failure / refused change,
 * 2 usage error, 3 the registry or Pub/Sub failed.
 */
import { helpRequested, helpText } from '../lib/command-line.ts';
import { isAppError, type AppError } from '../lib/errors.ts';
import type { Env } from '../lib/config.ts';
import type { CliIo, ComposerCommand } from './commands/shared.ts';

export type { CliIo, ComposerCommand } from './commands/shared.ts';

/** Every command, loaded when run (so `compat` and `--help` never load the Google clients). */
export const commands = new Map<string, () => Promise<ComposerCommand>>([
  ['apply', () => import('./commands/apply.ts')],
  ['plan', () => import('./commands/plan.ts')],
  ['check', () => import('./commands/check.ts')],
  ['list', () => import('./commands/list.ts')],
  ['describe', () => import('./commands/describe.ts')],
  ['deprecate', () => import('./commands/deprecate.ts')],
  ['reconcile', () => import('./commands/reconcile.ts')],
  ['export', () => import('./commands/export.ts')],
  ['compat', () => import('./commands/compat.ts')],
  ['capacity', async () => ownHelp('capacity [spec…] --events-per-second N', 'Sizes workers, shards, Pub/Sub, GCS and cost for the specs at a given event rate.', async (argv, io) => (await import('./capacity/command.ts')).runCapacityCommand(argv, io))],
  ['shred-report', async () => ownHelp('shred-report <userId> --padlock <url> --service <name> --secret-env <VAR>', "What a user's encrypted data is, and whether it still decrypts.", async (argv, io) => (await import('./shred-report/command.ts')).shredReportCommand(argv, io.env, io))],
  ['replay', async () => ownHelp('replay <type> --dead-letters [--since T] [--dry-run] | --hour H', 'Re-publishes dead letters, or re-closes an hour that never closed.', async (argv, io) => (await import('./replay/command.ts')).runReplay(argv, io.env, io))],
]);

/**
 * A command module that reads its own options and prints its own `--help`
 * (capacity, shred-report, replay); `help` only lists it in the top-level help.
 */
function ownHelp(usage: string, summary: string, run: ComposerCommand['run']): ComposerCommand {
  return { help: { usage: `npm run composer -- ${usage}`, summary, options: {} }, ownHelp: true, run };
}

const EXIT_CODES = 'exit codes: 0 ok, 1 incompatible or invalid, 2 usage error, 3 registry/Pub/Sub failure';

/** The top-level help: each command's usage and summary. */
export async function usage(): Promise<string> {
  const lines = ['usage: npm run composer -- <command> [options]   (npm run composer -- <command> --help for its options)', '', 'commands:'];
  for (const [name, load] of commands) {
    const { help } = await load();
    lines.push(`  ${name.padEnd(14)}${help.summary}`);
  }
  lines.push('', EXIT_CODES);
  return lines.join('\n');
}

/** Runs the CLI; returns the exit code. Never exits the process itself (main.ts does). */
export async function runCli(argv: readonly string[], env: Env, io: Omit<CliIo, 'env'>): Promise<number> {
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  const [name, ...rest] = args;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    if (name === undefined) {
      io.err(`error: no command given\n\n${await usage()}`);
      return 2;
    }
    io.out(await usage());
    return 0;
  }
  const load = commands.get(name);
  if (load === undefined) {
    io.err(`error: ${name.startsWith('-') ? `the command comes first, before ${name}` : `unknown command ${name}`}\n\n${await usage()}`);
    return 2;
  }
  const command = await load();
  if (command.ownHelp !== true && helpRequested(rest)) {
    io.out(helpText(command.help));
    return 0;
  }
  try {
    return await command.run(rest, { ...io, env });
  } catch (err) {
    if (isAppError(err)) return reportAppError(err, command, io);
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 3;
  }
}

/** Codes a user can fix in the spec or the request: exit 1. */
const INVALID = new Set(['SPEC_INVALID', 'SCHEMA_INVALID', 'SCHEMA_INCOMPATIBLE', 'EVENT_TYPE_DEPRECATED', 'EVENT_TYPE_NOT_FOUND', 'NOT_OWNER', 'BAD_REQUEST']);

function reportAppError(err: AppError, command: ComposerCommand, io: Omit<CliIo, 'env'>): number {
  if (err.code === 'USAGE_INVALID') {
    io.err(`error: ${err.message}\n\n${helpText(command.help)}`);
    return 2;
  }
  if (err.code === 'CONFIG_INVALID') {
    io.err(err.message);
    return 2;
  }
  // A spec's problems are already one line each, naming file and field.
  io.err(err.code === 'SPEC_INVALID' || err.code === 'SCHEMA_INVALID' ? err.message : `${err.code}: ${err.message}`);
  return INVALID.has(err.code) ? 1 : 3;
}
