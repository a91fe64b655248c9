/**
 * The composer CLI: `npm run composer -- <command>`.
 *
 * It works directly on the local registry folder (`--registry-dir`, env
 * REGISTRY_DIR, default `.data/registry`; the file store's lock makes it safe
 * beside a running composer) and on the Pub/Sub endpoint of
 * PUBSUB_EMULATOR_HOST (Google Pub/Sub if unset) for plan/apply/deprecate.
 * `compat` needs neither.
 *
 * Exit codes: 0 ok, 1 incompatible / validation failure / refused change,
 * 2 usage error, 3 the registry or Pub/Sub failed.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseSchema, SchemaError } from '../lib/avro/schema.ts';
import { isAppError, type AppError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import type { Env } from '../lib/config.ts';
import type { CompatibilityMode, RegistryReader } from '../lib/registry/types.ts';
import { checkCompatibility, checkMode, compatibilityModes, type CompatibilityReason } from './compatibility.ts';
import { loadConfig } from './config.ts';
import type { ComposerParts } from './index.ts';
import { formatProblems, loadSpecFile, loadSpecs } from './spec.ts';

export const USAGE = `usage: npm run composer -- <command> [options]

commands:
  apply -f <file|dir> [--force] [--prune]
                                    register/update the specs and provision their resources;
                                    --prune deprecates active types absent from the folder
  plan -f <file|dir> [--prune]      show what apply would change, changing nothing
  check -f <file> [--force]         validate a spec and check it against the registered type
  list                              list registered event types
  describe <name>                   show a type's record (JSON)
  deprecate <name>                  deprecate a type (drains, then removes its Pub/Sub resources)
  reconcile [<name>]                re-run provisioning (e.g. to finish draining)
  export terraform --out <dir>      write the registry as Terraform inputs
  export registry --out <file>      write every record as {"eventTypes": [...]} JSON
  compat <reader.avsc> <writer.avsc> [--mode MODE]
                                    can data written with writer be read with reader?
  capacity [spec…] --events-per-second N
                                    size workers, shards, Pub/Sub, GCS and cost (capacity --help)
  shred-report <userId> --padlock <url> --service <name> --secret-env <VAR> [...]
                                    what a user's encrypted data is and whether it still
                                    decrypts (shred-report --help for its options)
  replay <type> --dead-letters [--since T] [--dry-run] | --hour H
                                    re-publish dead letters, or re-close an hour that never closed (replay --help)

options:
  --registry-dir <dir>   registry folder (env REGISTRY_DIR, default .data/registry)
  env PUBSUB_EMULATOR_HOST, GCP_PROJECT select the Pub/Sub endpoint and project

exit codes: 0 ok, 1 incompatible or invalid, 2 usage error, 3 registry/Pub/Sub failure`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface ParsedArgs {
  command: string;
  positional: string[];
  flags: Record<string, string | true>;
}

const BOOLEAN_FLAGS = new Set(['force', 'json', 'help', 'prune']);
const VALUE_FLAGS = new Set(['f', 'file', 'registry-dir', 'mode', 'out']);

class UsageError extends Error {}

/** Parses argv (after `cli.ts`). Throws UsageError on unknown or incomplete flags. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') continue;
    if (!arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    if (BOOLEAN_FLAGS.has(name)) {
      flags[name] = true;
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq === -1 ? argv[++i] : body.slice(eq + 1);
      if (value === undefined || value === '') throw new UsageError(`option ${arg} needs a value`);
      flags[name === 'file' ? 'f' : name] = value;
    } else {
      throw new UsageError(`unknown option ${arg}`);
    }
  }
  const [command, ...rest] = positional;
  if (command === undefined) throw new UsageError('no command given');
  return { command, positional: rest, flags };
}

function formatReasons(reasons: readonly CompatibilityReason[]): string[] {
  return reasons.map((r) => `  ${r.path}: ${r.message}${r.version === undefined ? '' : ` (vs version ${r.version}, ${r.direction})`}`);
}

async function readSchemaFile(file: string): Promise<unknown> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read schema ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    parseSchema(json);
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw new InvalidInput(`${file} is not a valid Avro schema: ${err.message}`);
  }
  return json;
}

/** A validation failure: exit 1. */
class InvalidInput extends Error {}

/** `compat`: BACKWARD (default) = reader reads writer; FORWARD = writer reads reader; FULL = both. */
async function compat(args: ParsedArgs, io: CliIo): Promise<number> {
  const [readerFile, writerFile] = args.positional;
  if (readerFile === undefined || writerFile === undefined || args.positional.length > 2) throw new UsageError('compat needs <reader.avsc> <writer.avsc>');
  const mode = (args.flags.mode ?? 'BACKWARD') as CompatibilityMode;
  if (typeof mode !== 'string' || !compatibilityModes.includes(mode)) throw new UsageError(`--mode must be one of ${compatibilityModes.join(', ')}`);
  const reader = await readSchemaFile(readerFile);
  const writer = await readSchemaFile(writerFile);
  // The reader plays the new schema, the writer the previous one.
  const result = mode === 'BACKWARD' ? checkCompatibility(reader, writer) : checkMode(mode, reader, [writer]);
  if (result.compatible) {
    io.out('compatible');
    return 0;
  }
  io.out('incompatible');
  for (const line of formatReasons(result.reasons)) io.out(line);
  return 1;
}

async function withParts<T>(args: ParsedArgs, env: Env, fn: (parts: ComposerParts) => Promise<T>): Promise<T> {
  const dir = typeof args.flags['registry-dir'] === 'string' ? args.flags['registry-dir'] : undefined;
  const config = loadConfig({ ...env, REGISTRY_STORE: env.REGISTRY_STORE ?? 'file', ...(dir === undefined ? {} : { REGISTRY_DIR: dir }) });
  const level = env.LOG_LEVEL === 'DEBUG' ? 'DEBUG' : 'WARNING';
  const logger = createLogger({ component: 'composer-cli', level, sink: (line) => process.stderr.write(line + '\n') });
  // Loaded here so `compat` and usage errors don't pay for the Google clients.
  const { createComposerParts } = await import('./index.ts');
  const parts = createComposerParts(config, { logger });
  try {
    return await fn(parts);
  } finally {
    await parts.close();
  }
}

function needFile(args: ParsedArgs): string {
  const f = args.flags.f;
  if (typeof f !== 'string') throw new UsageError(`${args.command} needs -f <file|dir>`);
  return f;
}

function needName(args: ParsedArgs): string {
  const [name] = args.positional;
  if (name === undefined) throw new UsageError(`${args.command} needs an event-type name`);
  return name;
}

async function run(args: ParsedArgs, env: Env, io: CliIo): Promise<number> {
  switch (args.command) {
    case 'compat':
      return compat(args, io);
    case 'apply': {
      const file = needFile(args);
      return withParts(args, env, async ({ composer }) => {
        const { applySpecs } = await import('./index.ts');
        const results = await applySpecs(composer, file, { force: args.flags.force === true });
        if (args.flags.prune === true) {
          for (const name of await unlisted(composer.registry, new Set(results.map((r) => r.eventType)))) {
            results.push(await composer.deprecate(name));
          }
        }
        for (const r of results) {
          const what = r.action === 'none' ? 'unchanged' : r.action === 'create' ? 'created' : 'updated';
          io.out(`${r.eventType}: ${what}${r.newVersion === undefined ? '' : ` (schema version ${r.newVersion})`}; provisioning ${r.record.provisioning.state}`);
          for (const d of r.details) io.out(`  registry: ${d}`);
          for (const c of r.changes) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
        }
        return 0;
      });
    }
    case 'plan': {
      const file = needFile(args);
      const { specs, problems } = await loadSpecs(file);
      if (problems.length > 0) throw new InvalidInput(formatProblems(problems));
      return withParts(args, env, async ({ composer }) => {
        const { mapConcurrent } = await import('./index.ts');
        const plans = await mapConcurrent(specs, 8, ({ spec }) => composer.plan(spec, { force: args.flags.force === true }));
        let refused = 0;
        let changes = 0;
        for (const p of plans) {
          if (p.error !== undefined) {
            refused++;
            io.out(`${p.eventType}: REFUSED ${p.error.code}: ${p.error.message}`);
            continue;
          }
          if (p.registry.action === 'none' && p.resources.length === 0) continue;
          io.out(`${p.eventType}:`);
          for (const d of p.registry.details) io.out(`  registry: ${d}`);
          for (const c of p.resources) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
          changes += p.registry.details.length + p.resources.length;
        }
        if (args.flags.prune === true) {
          for (const name of await unlisted(composer.registry, new Set(specs.map((s) => s.spec.name)))) {
            io.out(`${name}:\n  registry: status: active → deprecated (not in ${file}; --prune)`);
            changes++;
          }
        }
        io.out(changes === 0 && refused === 0 ? 'no changes' : `${changes} change(s)${refused > 0 ? `, ${refused} spec(s) refused` : ''}`);
        return refused > 0 ? 1 : 0;
      });
    }
    case 'check': {
      const file = needFile(args);
      const loaded = await loadSpecFile(file);
      if (!loaded.ok) throw new InvalidInput(formatProblems(loaded.problems));
      return withParts(args, env, async ({ composer }) => {
        const existing = await composer.registry.getEventType(loaded.spec.name);
        if (existing === undefined) {
          io.out(`${loaded.spec.name}: valid (not registered yet)`);
          return 0;
        }
        const result = await composer.checkCandidate(loaded.spec.name, loaded.spec.schema, { force: args.flags.force === true });
        if (result.compatible) {
          io.out(`${loaded.spec.name}: valid and ${result.mode} compatible`);
          return 0;
        }
        io.out(`${loaded.spec.name}: incompatible (${result.mode})`);
        for (const line of formatReasons(result.reasons)) io.out(line);
        return 1;
      });
    }
    case 'list':
      return withParts(args, env, async ({ registry }) => {
        const { summaryOf } = await import('./api.ts');
        const records = await registry.listEventTypes();
        if (args.flags.json === true) io.out(JSON.stringify(records.map(summaryOf), null, 2));
        else for (const r of records.map(summaryOf)) io.out(`${r.name}\t${r.owner}\t${r.priority}\t${r.status}\tv${r.version}\t${r.provisioning}`);
        return 0;
      });
    case 'describe': {
      const name = needName(args);
      return withParts(args, env, async ({ composer }) => {
        io.out(JSON.stringify(await composer.get(name), null, 2));
        return 0;
      });
    }
    case 'deprecate': {
      const name = needName(args);
      return withParts(args, env, async ({ composer }) => {
        const r = await composer.deprecate(name);
        io.out(`${name}: ${r.record.status}; provisioning ${r.record.provisioning.state}`);
        for (const c of r.changes) io.out(`  ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
        return 0;
      });
    }
    case 'reconcile':
      return withParts(args, env, async ({ composer }) => {
        const changes = args.positional[0] === undefined ? await composer.reconcileAll() : (await composer.reconcile(args.positional[0])).changes;
        for (const c of changes) io.out(`${c.eventType}: ${c.action} ${c.resource} ${c.name}: ${c.detail}`);
        io.out(changes.length === 0 ? 'no changes' : `${changes.length} change(s)`);
        return 0;
      });
    case 'export': {
      const what = args.positional[0];
      if (what !== 'terraform' && what !== 'registry') throw new UsageError('export supports: export terraform --out <dir>, export registry --out <file>');
      const out = args.flags.out;
      if (typeof out !== 'string') throw new UsageError(`export ${what} needs --out <${what === 'terraform' ? 'dir' : 'file'}>`);
      if (what === 'registry') {
        return withParts(args, env, async ({ registry }) => {
          const records = await registry.listEventTypes();
          await mkdir(path.dirname(path.resolve(out)), { recursive: true });
          const tmp = `${out}.${process.pid}.tmp`;
          await writeFile(tmp, JSON.stringify({ eventTypes: records }, null, 2) + '\n');
          await rename(tmp, out);
          io.out(`wrote ${records.length} event type(s) to ${out}`);
          return 0;
        });
      }
      // Dynamic: the Terraform export is its own module, loaded only for this command.
      const { exportFromComposer } = (await import('./terraform-export.ts')) as typeof import('./terraform-export.ts');
      return withParts(args, env, async ({ composer, pubsub }) => {
        const files = await exportFromComposer(composer, pubsub.projectId);
        await mkdir(out, { recursive: true });
        for (const f of files) {
          const target = path.join(out, f.path);
          await mkdir(path.dirname(target), { recursive: true });
          await writeFile(target, f.content);
          io.out(`wrote ${target}`);
        }
        return 0;
      });
    }
    default:
      throw new UsageError(`unknown command ${args.command}`);
  }
}

/** Active registered types not named in `specified`: what `--prune` deprecates. */
async function unlisted(registry: RegistryReader, specified: ReadonlySet<string>): Promise<string[]> {
  return (await registry.listEventTypes()).filter((r) => r.status === 'active' && !specified.has(r.settings.name)).map((r) => r.settings.name);
}

/** Runs the CLI; returns the exit code. Never exits the process itself. */
export async function runCli(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  try {
    // Its own options and usage (composer/replay/command.ts, node:util parseArgs).
    if (argv[0] === 'replay') return await (await import('./replay/command.ts')).runReplay(argv.slice(1), env, io);
    // Parses its own options (composer/capacity/command.ts).
    if (argv[0] === 'capacity') return await (await import('./capacity/command.ts')).runCapacityCommand(argv.slice(1), io);
    // A command module with its own option parser.
    if (argv[0] === 'shred-report') return await (await import('./shred-report/command.ts')).shredReportCommand(argv.slice(1), env, io);
    const args = parseArgs(argv);
    if (args.flags.help === true || args.command === 'help') {
      io.out(USAGE);
      return 0;
    }
    return await run(args, env, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof InvalidInput) {
      io.err(err.message);
      return 1;
    }
    if (isAppError(err)) return reportAppError(err, io);
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 3;
  }
}

function reportAppError(err: AppError, io: CliIo): number {
  if (err.code === 'CONFIG_INVALID') {
    io.err(err.message);
    return 2;
  }
  io.err(`${err.code}: ${err.message}`);
  const invalid = ['SPEC_INVALID', 'SCHEMA_INVALID', 'SCHEMA_INCOMPATIBLE', 'EVENT_TYPE_DEPRECATED', 'EVENT_TYPE_NOT_FOUND', 'NOT_OWNER', 'BAD_REQUEST'];
  return invalid.includes(err.code) ? 1 : 3;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const code = await runCli(process.argv.slice(2), process.env, { out: (l) => console.log(l), err: (l) => console.error(l) });
  process.exit(code);
}
