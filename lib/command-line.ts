/**
 * Command lines, one way for every command: `node:util` `parseArgs` over a
 * declared set of options (real boolean flags, strings with a value), clear
 * USAGE_INVALID errors for unknown options or missing values, and `--help`
 * text generated from the same declaration, so the two never disagree.
 *
 * Flags and environment share one validation schema (lib/config.ts):
 * `optionsAsEnv` turns `--some-flag value` into `SOME_FLAG=value`.
 */
import { parseArgs } from 'node:util';
import { AppError } from './errors.ts';
import type { Env } from './config.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder of a string option's value in the help (`<url>`). */
  value?: string;
  /** One-letter alias (`-f`). */
  short?: string;
  description: string;
}

export interface CommandSpec {
  /** How to call it, after `usage: ` (`npm run decrypt -- <partition> [options]`). */
  usage: string;
  /** What the command does, in a sentence or two. */
  summary: string;
  options: Readonly<Record<string, OptionSpec>>;
  /** Positional arguments: at most this many (default 0). */
  maxPositionals?: number;
  /** Printed after the options (environment variables, exit codes). */
  epilog?: string;
}

export interface CommandLine {
  /** Each given option by its name: a string, or true for a boolean flag. */
  values: Map<string, string | true>;
  positionals: string[];
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** A usage error naming what is wrong (USAGE_INVALID). */
export function usageError(message: string): AppError {
  return new AppError('USAGE_INVALID', { message });
}

/**
 * Parses `argv` against `spec` (`--help` is always accepted). Throws
 * USAGE_INVALID naming an unknown option, a missing value, a value given to
 * a boolean flag, or a stray argument.
 */
export function parseCommandLine(argv: readonly string[], spec: CommandSpec): CommandLine {
  const options = { ...spec.options, help: HELP };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, o.short === undefined ? { type: o.type } : { type: o.type, short: o.short }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageError(parseProblem(err, options));
  }
  const max = spec.maxPositionals ?? 0;
  if (parsed.positionals.length > max) {
    const stray = parsed.positionals[max]!;
    throw usageError(max === 0 ? `unexpected argument '${stray}'` : `unexpected argument '${stray}' (at most ${max})`);
  }
  const values = new Map<string, string | true>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string' && value === '') throw usageError(`option --${name} needs a value`);
    if (typeof value === 'string' || value === true) values.set(name, value);
  }
  return { values, positionals: parsed.positionals };
}

/** A string option's value, if given. */
export function stringValue(line: CommandLine, name: string): string | undefined {
  const v = line.values.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** Whether `argv` asks for help (`--help` or `-h` before any `--`), whatever else it holds. */
export function helpRequested(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** `--some-flag value` as `SOME_FLAG=value` (a boolean flag as `true`), for a zod schema over flags and environment. */
export function optionsAsEnv(line: CommandLine): Env {
  const env: Env = {};
  for (const [name, value] of line.values) {
    if (name !== 'help') env[name.replace(/-/g, '_').toUpperCase()] = value === true ? 'true' : value;
  }
  return env;
}

/** The `--help` text of a command. */
export function helpText(spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.options, help: HELP }).map(([name, o]) => {
    const flag = `${o.short === undefined ? '    ' : `-${o.short}, `}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    return [flag, o.description] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([flag]) => flag.length)) + 2);
  const lines = rows.map(([flag, description]) => (flag.length + 2 > width ? `  ${flag}\n  ${' '.repeat(width)}${description}` : `  ${flag.padEnd(width)}${description}`));
  return [`usage: ${spec.usage}`, '', spec.summary, '', 'options:', ...lines, ...(spec.epilog === undefined ? [] : ['', spec.epilog])].join('\n');
}

/** parseArgs' error as a sentence naming the option (its own messages explain positionals at length). */
function parseProblem(err: unknown, options: Readonly<Record<string, OptionSpec>>): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'(-[^' =]*)/.exec(message)?.[1] ?? '';
    const known = Object.keys(options).map((n) => `--${n}`).join(', ');
    return `unknown option ${option} (known: ${known})`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = /--([A-Za-z0-9-]+)/.exec(message)?.[1] ?? '';
    const spec = Object.hasOwn(options, name) ? options[name] : undefined;
    return spec?.type === 'boolean' ? `option --${name} is a flag and takes no value` : `option --${name} needs a value`;
  }
  return message;
}

/** What a main does with its command line: print the help to stdout and exit 0, print why it is invalid to stderr and exit 1, or run. */
export type CommandLineOutcome<T> = { kind: 'help'; text: string; exitCode: 0 } | { kind: 'invalid'; text: string; exitCode: 1 } | { kind: 'run'; options: T };

/**
 * `--help` → the help text; otherwise `parse(argv)`, whose errors (usage or
 * configuration) become a message ending with the usage line. Never exits:
 * only mains do.
 */
export function readCommandLine<T>(argv: readonly string[], spec: CommandSpec, parse: (argv: readonly string[]) => T): CommandLineOutcome<T> {
  if (helpRequested(argv)) return { kind: 'help', text: helpText(spec), exitCode: 0 };
  try {
    return { kind: 'run', options: parse(argv) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { kind: 'invalid', text: `${message}\nusage: ${spec.usage}\n(--help lists every option)`, exitCode: 1 };
  }
}
