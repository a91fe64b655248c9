/**
 * The event-type spec (DESIGN.md §3, a contract): parsing (YAML or JSON),
 * loading (a file, or every spec in a folder; schema inline or by a path
 * relative to the spec file) and validation that collects every problem,
 * each naming the file, the field path and the rule broken.
 *
 * Required: `name`, `owner`, `schema`. Defaults: description `""`,
 * priority `normal`, storage `[gcs]`, partitioning `hourly`, retentionDays 365,
 * compatibility `BACKWARD_TRANSITIVE`, shardsPerPeriod 1.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { parseSchema, SchemaError } from '../lib/avro/schema.ts';
import { inspectAnnotations } from '../lib/avro/annotations.ts';
import { eventTypeNamePattern } from '../lib/names.ts';
import { MAX_SHARDS_PER_PERIOD, type AvroSchemaJson, type CompatibilityMode, type EventTypeSettings, type Partitioning, type Priority, type StorageTarget } from '../lib/registry/types.ts';
import { defaultCatalogue, type SemanticCatalogue } from '../lib/semantic-types.ts';
import { compatibilityModes } from './compatibility.ts';

/** A validated spec: the registry's settings plus the schema (annotations included). */
export interface EventTypeSpec extends EventTypeSettings {
  schema: AvroSchemaJson;
}

/** One broken rule: `file` (or `<request>`), field path in the spec, rule id and message. */
export interface SpecProblem {
  file: string;
  path: string;
  rule: string;
  message: string;
}

export type SpecResult = { ok: true; spec: EventTypeSpec; file: string } | { ok: false; problems: SpecProblem[]; file: string };

export interface ValidateOptions {
  /** Shown in problems; `<request>` for API bodies. */
  file?: string;
  catalogue?: SemanticCatalogue;
  /** Folder `schema: <path>` is relative to; the spec file's folder. Without it, schema paths are refused. */
  baseDir?: string;
}

const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];
const PARTITIONINGS: readonly Partitioning[] = ['hourly', 'daily'];
const STORAGE: readonly StorageTarget[] = ['gcs', 'bigquery'];
const KNOWN_KEYS = new Set(['name', 'owner', 'description', 'priority', 'storage', 'partitioning', 'retentionDays', 'compatibility', 'shardsPerPeriod', 'schema', 'expectedEventsPerSecond']);
/** Above Pub/Sub's per-topic publish quota by far: a typo, not a plan. */
export const MAX_EXPECTED_EVENTS_PER_SECOND = 100_000_000;
const OWNER_PATTERN = /^[a-z][a-z0-9-]{1,62}$/;
export const MAX_RETENTION_DAYS = 3650;

/** Parses spec text: JSON if it looks like JSON, YAML otherwise (YAML is a superset anyway). */
export function parseSpecText(text: string, file = '<request>'): { ok: true; value: unknown } | { ok: false; problems: SpecProblem[] } {
  try {
    return { ok: true, value: YAML.parse(text, { strict: true, uniqueKeys: true }) as unknown };
  } catch (err) {
    return { ok: false, problems: [{ file, path: '(file)', rule: 'syntax', message: `not valid YAML/JSON: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` }] };
  }
}

/**
 * Validates a parsed spec. Schema paths are read from `baseDir`. Returns every
 * problem found, never only the first.
 */
export async function validateSpec(raw: unknown, options: ValidateOptions = {}): Promise<SpecResult> {
  const file = options.file ?? '<request>';
  const problems: SpecProblem[] = [];
  const problem = (p: string, rule: string, message: string): void => {
    problems.push({ file, path: p, rule, message });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problem('(root)', 'not-an-object', 'a spec is a mapping of fields (name, owner, schema, …)');
    return { ok: false, problems, file };
  }
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN_KEYS.has(key)) problem(key, 'unknown-field', `unknown field "${key}" (known: ${[...KNOWN_KEYS].join(', ')})`);
  }

  const name = o.name;
  if (typeof name !== 'string') problem('name', 'required', 'name is required (a string)');
  else if (!eventTypeNamePattern.test(name)) {
    problem('name', 'name-pattern', `name "${name}" must match ${eventTypeNamePattern} (lowercase letter first, then 2-62 lowercase letters, digits or _)`);
  }
  const owner = o.owner;
  if (typeof owner !== 'string') problem('owner', 'required', 'owner is required (the owning team)');
  else if (!OWNER_PATTERN.test(owner)) problem('owner', 'owner-pattern', `owner "${owner}" must match ${OWNER_PATTERN}`);

  const description = o.description ?? '';
  if (typeof description !== 'string') problem('description', 'type', 'description must be a string');

  const priority = o.priority ?? 'normal';
  if (!PRIORITIES.includes(priority as Priority)) problem('priority', 'unknown-priority', `priority must be one of ${PRIORITIES.join(', ')}, not ${JSON.stringify(priority)}`);

  const storage = normaliseStorage(o.storage ?? ['gcs']);
  if (storage === undefined) problem('storage', 'unknown-storage', `storage must be gcs, bigquery, both, or a list of gcs/bigquery, not ${JSON.stringify(o.storage)}`);

  const partitioning = o.partitioning ?? 'hourly';
  if (!PARTITIONINGS.includes(partitioning as Partitioning)) problem('partitioning', 'unknown-partitioning', `partitioning must be hourly or daily, not ${JSON.stringify(partitioning)}`);

  const retentionDays = o.retentionDays ?? 365;
  if (typeof retentionDays !== 'number' || !Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > MAX_RETENTION_DAYS) {
    problem('retentionDays', 'retention-range', `retentionDays must be an integer from 1 to ${MAX_RETENTION_DAYS}, not ${JSON.stringify(retentionDays)}`);
  }

  const shardsPerPeriod = o.shardsPerPeriod ?? 1;
  if (typeof shardsPerPeriod !== 'number' || !Number.isInteger(shardsPerPeriod) || shardsPerPeriod < 1 || shardsPerPeriod > MAX_SHARDS_PER_PERIOD) {
    problem('shardsPerPeriod', 'shards-range', `shardsPerPeriod must be an integer from 1 to ${MAX_SHARDS_PER_PERIOD}, not ${JSON.stringify(shardsPerPeriod)}`);
  }

  const compatibility = o.compatibility ?? 'BACKWARD_TRANSITIVE';
  if (!compatibilityModes.includes(compatibility as CompatibilityMode)) {
    problem('compatibility', 'unknown-compatibility', `compatibility must be one of ${compatibilityModes.join(', ')}, not ${JSON.stringify(compatibility)}`);
  }

  const expected = o.expectedEventsPerSecond;
  if (expected !== undefined && (typeof expected !== 'number' || !Number.isFinite(expected) || expected < 0 || expected > MAX_EXPECTED_EVENTS_PER_SECOND)) {
    problem('expectedEventsPerSecond', 'expected-volume-range', `expectedEventsPerSecond must be a number from 0 to ${MAX_EXPECTED_EVENTS_PER_SECOND}, not ${JSON.stringify(expected)}`);
  }

  const schema = await resolveSchema(o.schema, options.baseDir, problem);
  if (schema !== undefined) {
    for (const p of schemaProblems(schema, options.catalogue ?? defaultCatalogue)) problem(p.path, p.rule, p.message);
  }

  if (problems.length > 0) return { ok: false, problems, file };
  return {
    ok: true,
    file,
    spec: {
      name: name as string,
      owner: owner as string,
      description: description as string,
      priority: priority as Priority,
      storage: storage as StorageTarget[],
      partitioning: partitioning as Partitioning,
      retentionDays: retentionDays as number,
      compatibility: compatibility as CompatibilityMode,
      // Absent when 1, so records (and their exports) of unsharded types stay as they were.
      ...(shardsPerPeriod === 1 ? {} : { shardsPerPeriod: shardsPerPeriod as number }),
      ...(expected === undefined ? {} : { expectedEventsPerSecond: expected as number }),
      schema: schema as AvroSchemaJson,
    },
  };
}

/**
 * Problems of an event schema alone: valid Avro, a record, valid annotations
 * (known semantic types, a subject if anything is personal, at most one subject).
 * Paths are `schema` or `schema.<field path>`.
 */
export function schemaProblems(schema: unknown, catalogue: SemanticCatalogue): Omit<SpecProblem, 'file'>[] {
  const out: Omit<SpecProblem, 'file'>[] = [];
  try {
    parseSchema(schema);
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    out.push({ path: 'schema', rule: 'invalid-avro', message: `not a valid Avro schema: ${err.message}` });
    return out;
  }
  const type = (schema as { type?: unknown }).type;
  if (type !== 'record') {
    out.push({ path: 'schema', rule: 'not-a-record', message: 'an event schema must be an Avro record' });
    return out;
  }
  for (const p of inspectAnnotations(schema, catalogue).problems) {
    out.push({ path: `schema.${p.path}`, rule: p.rule, message: p.message });
  }
  return out;
}

function normaliseStorage(value: unknown): StorageTarget[] | undefined {
  if (value === 'both') return ['bigquery', 'gcs'];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  if (!list.every((s) => STORAGE.includes(s as StorageTarget))) return undefined;
  return [...new Set(list as StorageTarget[])].sort();
}

async function resolveSchema(
  value: unknown,
  baseDir: string | undefined,
  problem: (path: string, rule: string, message: string) => void,
): Promise<AvroSchemaJson | undefined> {
  if (value === undefined) {
    problem('schema', 'required', 'schema is required (an inline Avro record, or a path to an .avsc file)');
    return undefined;
  }
  if (typeof value === 'string') {
    if (baseDir === undefined) {
      problem('schema', 'schema-path-not-allowed', 'a schema path is only allowed in spec files; inline the schema');
      return undefined;
    }
    const file = path.resolve(baseDir, value);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      problem('schema', 'schema-file-missing', `schema file ${value} (${file}) cannot be read`);
      return undefined;
    }
    try {
      return JSON.parse(text) as AvroSchemaJson;
    } catch (err) {
      problem('schema', 'invalid-avro', `schema file ${value} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problem('schema', 'invalid-avro', 'schema must be an Avro record object or a path to an .avsc file');
    return undefined;
  }
  return value as AvroSchemaJson;
}

const SPEC_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Loads and validates one spec file. */
export async function loadSpecFile(file: string, catalogue: SemanticCatalogue = defaultCatalogue): Promise<SpecResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { ok: false, file, problems: [{ file, path: '(file)', rule: 'file-missing', message: `cannot read ${file}` }] };
  }
  const parsed = parseSpecText(text, file);
  if (!parsed.ok) return { ok: false, file, problems: parsed.problems };
  return validateSpec(parsed.value, { file, catalogue, baseDir: path.dirname(file) });
}

/**
 * Loads a spec file, or every `*.yaml|*.yml|*.json` spec in a folder (not
 * recursive; `.avsc` files beside them are schemas). Also reports two specs
 * with the same name.
 */
export async function loadSpecs(fileOrDir: string, catalogue: SemanticCatalogue = defaultCatalogue): Promise<{ specs: { spec: EventTypeSpec; file: string }[]; problems: SpecProblem[] }> {
  let files: string[];
  try {
    const s = await stat(fileOrDir);
    files = s.isDirectory()
      ? (await readdir(fileOrDir)).filter((f) => SPEC_EXTENSIONS.includes(path.extname(f))).sort().map((f) => path.join(fileOrDir, f))
      : [fileOrDir];
  } catch {
    return { specs: [], problems: [{ file: fileOrDir, path: '(file)', rule: 'file-missing', message: `no such file or folder: ${fileOrDir}` }] };
  }
  const results = await Promise.all(files.map((f) => loadSpecFile(f, catalogue)));
  const specs: { spec: EventTypeSpec; file: string }[] = [];
  const problems: SpecProblem[] = [];
  const seen = new Map<string, string>();
  for (const r of results) {
    if (!r.ok) {
      problems.push(...r.problems);
      continue;
    }
    const other = seen.get(r.spec.name);
    if (other !== undefined) {
      problems.push({ file: r.file, path: 'name', rule: 'duplicate-name', message: `event type ${r.spec.name} is also defined in ${other}` });
      continue;
    }
    seen.set(r.spec.name, r.file);
    specs.push({ spec: r.spec, file: r.file });
  }
  return { specs, problems };
}

/** `file: path: message [rule]`, one per line. */
export function formatProblems(problems: readonly SpecProblem[]): string {
  return problems.map((p) => `${p.file}: ${p.path}: ${p.message} [${p.rule}]`).join('\n');
}
