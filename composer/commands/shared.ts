/**
 * What every composer command shares: the module shape the dispatcher
 * (cli.ts) expects, the io it writes to, and opening the registry and
 * Pub/Sub for the commands that need them.
 */
import { AppError } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { parseCommandLine, stringValue, usageError, type CommandLine, type CommandSpec, type OptionSpec } from '../../lib/command-line.ts';
import type { Env } from '../../lib/config.ts';
import type { RegistryReader } from '../../lib/registry/types.ts';
import type { CompatibilityReason } from '../compatibility.ts';
import { loadConfig } from '../config.ts';
import type { ComposerParts } from '../index.ts';

/** Where a command writes, and the environment it reads (the registry folder, the Pub/Sub endpoint). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: Env;
}

/**
 * A composer command: its command line (`help`, which `--help` prints) and
 * `run`, which returns the exit code (0 ok, 1 incompatible or invalid, 3 the
 * registry or Pub/Sub failed) and throws USAGE_INVALID for a bad command line (2).
 */
export interface ComposerCommand {
  help: CommandSpec;
  /** `run` reads `--help` itself (the dispatcher then does not print `help`). */
  ownHelp?: true;
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

/** `--registry-dir`, which every command that opens the registry takes. */
const registryDirOption: OptionSpec = {
  type: 'string',
  value: '<dir>',
  description: 'registry folder (env REGISTRY_DIR, default .data/registry)',
};

const ENVIRONMENT = 'environment: PUBSUB_EMULATOR_HOST and GCP_PROJECT select the Pub/Sub endpoint and project';

/** The help of a command that opens the registry: `--registry-dir` and the environment come with it. */
export function registryCommandHelp(usage: string, summary: string, options: Readonly<Record<string, OptionSpec>> = {}, maxPositionals = 0): CommandSpec {
  return { usage: `npm run composer -- ${usage}`, summary, maxPositionals, options: { ...options, 'registry-dir': registryDirOption }, epilog: ENVIRONMENT };
}

/** `-f`/`--file`, the spec file or folder. */
export function fileOption(what: string): OptionSpec {
  return { type: 'string', short: 'f', value: `<${what}>`, description: `${what === 'file' ? 'the spec file' : 'a spec file or a folder of them'} (required)` };
}

/** A string option that must be given. */
export function requiredOption(line: CommandLine, name: string, why: string): string {
  const v = stringValue(line, name);
  if (v === undefined) throw usageError(why);
  return v;
}

/** Whether a boolean flag was given. */
export function flag(line: CommandLine, name: string): boolean {
  return line.values.get(name) === true;
}

/** Parses `argv` against `spec`, with exactly `count` positionals (`what` names them in the error). */
export function commandLine(argv: readonly string[], spec: CommandSpec, count: number, what: string): CommandLine {
  const line = parseCommandLine(argv, spec);
  if (line.positionals.length < count) throw usageError(`needs ${what}`);
  return line;
}

/** Runs `fn` with the composer and the event-type name the command line gives (its one positional). */
export function withNamedType(argv: readonly string[], help: CommandSpec, io: CliIo, fn: (parts: ComposerParts, name: string) => Promise<number>): Promise<number> {
  const line = commandLine(argv, help, 1, 'an event-type name');
  return withParts(line, io.env, (parts) => fn(parts, line.positionals[0]!));
}

/** Runs `fn` with the composer's parts over the local registry (`--registry-dir`) and the Pub/Sub endpoint of `env`. */
export async function withParts<T>(line: CommandLine, env: Env, fn: (parts: ComposerParts) => Promise<T>): Promise<T> {
  const dir = stringValue(line, 'registry-dir');
  const config = loadConfig({ ...env, REGISTRY_STORE: env.REGISTRY_STORE ?? 'file', ...(dir === undefined ? {} : { REGISTRY_DIR: dir }) });
  const level = env.LOG_LEVEL === 'DEBUG' ? 'DEBUG' : 'WARNING';
  const logger = createLogger({ component: 'composer-cli', level, sink: (text) => process.stderr.write(text + '\n') });
  // Loaded here so `compat` and usage errors don't pay for the Google clients.
  const { createComposerParts } = await import('../index.ts');
  const parts = createComposerParts(config, { logger });
  try {
    return await fn(parts);
  } finally {
    await parts.close();
  }
}

export function formatReasons(reasons: readonly CompatibilityReason[]): string[] {
  return reasons.map((r) => `  ${r.path}: ${r.message}${r.version === undefined ? '' : ` (vs version ${r.version}, ${r.direction})`}`);
}

/** Active registered types not named in `specified`: what `--prune` deprecates. */
export async function unlisted(registry: RegistryReader, specified: ReadonlySet<string>): Promise<string[]> {
  return (await registry.listEventTypes()).filter((r) => r.status === 'active' && !specified.has(r.settings.name)).map((r) => r.settings.name);
}

/** A spec file or folder that does not validate: exit 1 with each problem. */
export function invalidSpecs(problems: string): AppError {
  return new AppError('SPEC_INVALID', { message: problems });
}
