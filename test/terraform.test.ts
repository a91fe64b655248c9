/**
 * The Terraform in terraform/, checked offline (no provider can be downloaded
 * here, so `terraform init/validate/plan` cannot run): the HCL is parsed with
 * @cdktf/hcl2json and checked for the conventions (typed, described variables
 * and outputs), for names equal to lib/names.ts `resourceNames` (by evaluating
 * the module's name expressions), and for the composer export fitting the
 * module's input types.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportTerraform, TERRAFORM_EXPORT_FILE } from '../composer/terraform-export.ts';
import { loadConfig as loadEtlConfig } from '../etl/config.ts';
import { loadConfig as loadEventServiceConfig } from '../functions/event-service/config.ts';
import { loadConfig as loadPadlockConfig } from '../functions/padlock/config.ts';
import { serviceEntry } from '../functions/padlock/services.ts';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { resourceNames } from '../lib/names.ts';
import type { AvroSchemaJson, EventTypeRecord, EventTypeSettings } from '../lib/registry/types.ts';

const root = join(import.meta.dirname, '..', 'terraform');
const moduleDirs = {
  platform: join(root, 'modules', 'platform'),
  eventType: join(root, 'modules', 'event-type'),
  example: join(root, 'examples', 'complete'),
};

/** The two registry records whose export terraform/examples/complete ships. */
const pageView: AvroSchemaJson = {
  type: 'record',
  name: 'PageView',
  namespace: 'com.example.events',
  doc: 'A page was shown to a user',
  fields: [
    { name: 'user_id', type: 'string', semanticType: 'userId' },
    { name: 'url', type: 'string' },
    { name: 'ip', type: ['null', 'string'], default: null, semanticType: 'ipAddress' },
    { name: 'country', type: ['null', 'string'], default: null, semanticType: 'country' },
  ],
};
const signUp: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  namespace: 'com.example.events',
  fields: [
    { name: 'user_id', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'plan', type: { type: 'enum', name: 'Plan', symbols: ['FREE', 'PREMIUM'] } },
  ],
};

function record(settings: EventTypeSettings, schemas: AvroSchemaJson[]): EventTypeRecord {
  const at = '2026-01-05T10:00:00.000Z';
  return {
    settings,
    versions: schemas.map((schema, k) => ({ version: k + 1, fingerprint: schemaFingerprint(schema), schema, createdAt: at })),
    status: 'active',
    provisioning: { state: 'provisioned', resources: {}, updatedAt: at },
    revision: schemas.length,
    createdAt: at,
    updatedAt: at,
  };
}

const sampleRecords: EventTypeRecord[] = [
  record(
    { name: 'page_view', owner: 'web-analytics', description: 'Pages shown to users', priority: 'normal', storage: ['gcs', 'bigquery'], partitioning: 'hourly', retentionDays: 90, compatibility: 'BACKWARD_TRANSITIVE' },
    [pageView],
  ),
  record(
    { name: 'sign_up', owner: 'identity', description: 'Completed sign-ups', priority: 'high', storage: ['bigquery'], partitioning: 'daily', retentionDays: 365, compatibility: 'FULL_TRANSITIVE' },
    [signUp],
  ),
];

// ---------------------------------------------------------------------------
// HCL loading

type Block = Record<string, unknown>;
interface Config {
  variable: Record<string, Block>;
  output: Record<string, Block>;
  locals: Record<string, unknown>;
  resource: Record<string, Record<string, Block>>;
  module: Record<string, Block>;
}

async function loadConfig(dir: string): Promise<Config> {
  const config: Config = { variable: {}, output: {}, locals: {}, resource: {}, module: {} };
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.tf')).sort()) {
    const json = (await parse(file, readFileSync(join(dir, file), 'utf8'))) as Record<string, unknown>;
    for (const [name, blocks] of Object.entries((json.variable ?? {}) as Record<string, Block[]>)) config.variable[name] = blocks[0]!;
    for (const [name, blocks] of Object.entries((json.output ?? {}) as Record<string, Block[]>)) config.output[name] = blocks[0]!;
    for (const [name, blocks] of Object.entries((json.module ?? {}) as Record<string, Block[]>)) config.module[name] = blocks[0]!;
    for (const block of (json.locals ?? []) as Record<string, unknown>[]) Object.assign(config.locals, block);
    for (const [type, byName] of Object.entries((json.resource ?? {}) as Record<string, Record<string, Block[]>>)) {
      config.resource[type] ??= {};
      for (const [name, blocks] of Object.entries(byName)) config.resource[type][name] = blocks[0]!;
    }
  }
  return config;
}

// ---------------------------------------------------------------------------
// Terraform type constraints: parse `object({a = string, b = optional(number, 3)})`…

type TfType =
  | { kind: 'string' | 'number' | 'bool' | 'any' }
  | { kind: 'list' | 'set' | 'map'; element: TfType }
  | { kind: 'object'; attributes: Record<string, { type: TfType; optional: boolean }> };

function parseType(expression: string): TfType {
  const source = expression.replace(/^\$\{/, '').replace(/\}$/, '');
  const tokens = source.match(/"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_-]*|-?\d+(?:\.\d+)?|[(){}[\]=,]/g) ?? [];
  let i = 0;
  const next = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw new Error(`unexpected end of type ${source}`);
    return t;
  };
  const expect_ = (t: string): void => {
    const got = next();
    if (got !== t) throw new Error(`expected '${t}' but got '${got}' in type ${source}`);
  };
  // Skips one default value (literal, object or tuple), which the checks don't need.
  const skipValue = (): void => {
    const t = next();
    if (t !== '{' && t !== '[') return;
    let depth = 1;
    while (depth > 0) {
      const u = next();
      if (u === '{' || u === '[') depth++;
      if (u === '}' || u === ']') depth--;
    }
  };
  const type = (): TfType => {
    const t = next();
    if (t === 'string' || t === 'number' || t === 'bool' || t === 'any') return { kind: t };
    if (t === 'list' || t === 'set' || t === 'map') {
      expect_('(');
      const element = type();
      expect_(')');
      return { kind: t, element };
    }
    if (t === 'object') {
      expect_('(');
      expect_('{');
      const attributes: Record<string, { type: TfType; optional: boolean }> = {};
      while (tokens[i] !== '}') {
        const name = next();
        expect_('=');
        if (tokens[i] === 'optional') {
          next();
          expect_('(');
          const inner = type();
          if (tokens[i] === ',') {
            next();
            skipValue();
          }
          expect_(')');
          attributes[name] = { type: inner, optional: true };
        } else {
          attributes[name] = { type: type(), optional: false };
        }
        if (tokens[i] === ',') next();
      }
      expect_('}');
      expect_(')');
      return { kind: 'object', attributes };
    }
    throw new Error(`unsupported type '${t}' in ${source}`);
  };
  const result = type();
  if (i !== tokens.length) throw new Error(`trailing tokens in type ${source}`);
  return result;
}

/** Problems of `value` against `type`, as Terraform would see a JSON tfvars value (no string/number coercion). */
function typeErrors(value: unknown, type: TfType, path = 'value'): string[] {
  switch (type.kind) {
    case 'any':
      return [];
    case 'string':
      return typeof value === 'string' ? [] : [`${path}: expected string, got ${JSON.stringify(value)}`];
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? [] : [`${path}: expected number, got ${JSON.stringify(value)}`];
    case 'bool':
      return typeof value === 'boolean' ? [] : [`${path}: expected bool, got ${JSON.stringify(value)}`];
    case 'list':
    case 'set':
      return Array.isArray(value) ? value.flatMap((v, k) => typeErrors(v, type.element, `${path}[${k}]`)) : [`${path}: expected ${type.kind}`];
    case 'map':
      return isPlainObject(value) ? Object.entries(value).flatMap(([k, v]) => typeErrors(v, type.element, `${path}.${k}`)) : [`${path}: expected map`];
    case 'object': {
      if (!isPlainObject(value)) return [`${path}: expected object`];
      const errors: string[] = [];
      for (const key of Object.keys(value)) {
        if (type.attributes[key] === undefined) errors.push(`${path}.${key}: not an attribute of the type`);
      }
      for (const [key, attr] of Object.entries(type.attributes)) {
        const v = value[key];
        if (v === undefined || v === null) {
          if (!attr.optional) errors.push(`${path}.${key}: required attribute missing`);
        } else errors.push(...typeErrors(v, attr.type, `${path}.${key}`));
      }
      return errors;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------
// A small evaluator for the name expressions: string templates over local.*
// and var.*, and replace()/lower(). Anything else fails the test loudly.

function evaluateTemplate(template: string, scope: (ref: string) => string): string {
  return template.replace(/\$\{([^}]*)\}/g, (_, expr: string) => evaluateExpression(expr.trim(), scope));
}

function evaluateExpression(expr: string, scope: (ref: string) => string): string {
  const str = /^"((?:[^"\\]|\\.)*)"$/.exec(expr);
  if (str) return JSON.parse(`"${str[1]}"`) as string;
  if (/^(local|var)\.[A-Za-z0-9_.]+$/.test(expr)) return scope(expr);
  const call = /^(replace|lower|upper)\((.*)\)$/s.exec(expr);
  if (call) {
    const args = splitArguments(call[2]!).map((a) => evaluateExpression(a, scope));
    if (call[1] === 'lower' && args.length === 1) return args[0]!.toLowerCase();
    if (call[1] === 'upper' && args.length === 1) return args[0]!.toUpperCase();
    if (call[1] === 'replace' && args.length === 3) {
      const [s, search, replacement] = args as [string, string, string];
      if (search.startsWith('/')) throw new Error(`regex replace not supported by this evaluator: ${expr}`);
      return s.split(search).join(replacement);
    }
  }
  throw new Error(`cannot evaluate name expression: ${expr}`);
}

function splitArguments(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inString = false;
  let current = '';
  for (let k = 0; k < s.length; k++) {
    const c = s[k]!;
    if (inString) {
      current += c;
      if (c === '\\') current += s[++k] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else current += c;
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

const snakeCase = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// ---------------------------------------------------------------------------

let configs: Record<keyof typeof moduleDirs, Config>;

beforeAll(async () => {
  configs = {
    platform: await loadConfig(moduleDirs.platform),
    eventType: await loadConfig(moduleDirs.eventType),
    example: await loadConfig(moduleDirs.example),
  };
});

describe('terraform conventions', () => {
  it('is formatted (terraform fmt -check -recursive)', () => {
    // Throws (non-zero exit) and names the unformatted files if any.
    execFileSync('terraform', ['fmt', '-check', '-recursive', root], { stdio: 'pipe' });
  });

  it.each(Object.keys(moduleDirs) as (keyof typeof moduleDirs)[])('%s: every variable is typed and described, every output described', (key) => {
    const config = configs[key];
    expect(Object.keys(config.variable).length).toBeGreaterThan(0);
    expect(Object.keys(config.output).length).toBeGreaterThan(0);
    for (const [name, v] of Object.entries(config.variable)) {
      expect(typeof v.description === 'string' && v.description.trim().length > 0, `variable ${name} has a description`).toBe(true);
      expect(typeof v.type, `variable ${name} has a type`).toBe('string');
      expect(() => parseType(v.type as string), `variable ${name}'s type parses`).not.toThrow();
    }
    for (const [name, o] of Object.entries(config.output)) {
      expect(typeof o.description === 'string' && o.description.trim().length > 0, `output ${name} has a description`).toBe(true);
    }
  });

  it('each module pins Terraform >= 1.5 and the google provider ~> 5 or 6, and has a README', () => {
    for (const dir of [moduleDirs.platform, moduleDirs.eventType, moduleDirs.example]) {
      const versions = readFileSync(join(dir, 'versions.tf'), 'utf8');
      expect(versions).toMatch(/required_version\s*=\s*">= 1\.5"/);
      expect(versions).toMatch(/source\s*=\s*"hashicorp\/google"\s*\n\s*version\s*=\s*"~> [56]\.\d+"/);
      expect(readFileSync(join(dir, 'README.md'), 'utf8').length).toBeGreaterThan(200);
    }
  });

  it('module READMEs list every input and output', () => {
    for (const key of ['platform', 'eventType'] as const) {
      const readme = readFileSync(join(moduleDirs[key], 'README.md'), 'utf8');
      for (const name of [...Object.keys(configs[key].variable), ...Object.keys(configs[key].output)]) {
        expect(readme, `${key} README mentions ${name}`).toContain(`\`${name}\``);
      }
    }
  });
});

describe('event-type module names', () => {
  const samples = ['page_view', 'sign_up_completed', 'abc'];

  function moduleNames(eventType: string): Record<string, string> {
    const locals = configs.eventType.locals;
    const scope = (ref: string): string => {
      if (ref === 'var.event_type.name') return eventType;
      const m = /^local\.(\w+)$/.exec(ref);
      const local = m ? locals[m[1]!] : undefined;
      if (typeof local !== 'string') throw new Error(`unknown reference ${ref}`);
      return evaluateTemplate(local, scope);
    };
    const names = locals.names as Record<string, string>;
    return Object.fromEntries(Object.entries(names).map(([k, template]) => [k, evaluateTemplate(template, scope)]));
  }

  it.each(samples)('local.names for %s equal resourceNames, key for key', (sample) => {
    const expected = Object.fromEntries(Object.entries(resourceNames).map(([k, f]) => [snakeCase(k), f(sample)]));
    expect(moduleNames(sample)).toEqual(expected);
  });

  it('the resources are named from local.names', () => {
    const r = configs.eventType.resource;
    const nameOf = (type: string, name: string, attribute = 'name'): unknown => r[type]?.[name]?.[attribute];
    expect(nameOf('google_pubsub_topic', 'events')).toBe('${local.names.topic}');
    expect(nameOf('google_pubsub_schema', 'events')).toBe('${local.names.topic_schema}');
    expect(nameOf('google_pubsub_subscription', 'etl')).toBe('${local.names.etl_subscription}');
    expect(nameOf('google_pubsub_topic', 'dead_letter')).toBe('${local.names.dead_letter_topic}');
    expect(nameOf('google_pubsub_subscription', 'dead_letter')).toBe('${local.names.dead_letter_subscription}');
    expect(nameOf('google_bigquery_table', 'events', 'table_id')).toBe('${local.names.big_query_table}');
    for (const type of ['kubernetes_deployment_v1', 'kubernetes_horizontal_pod_autoscaler_v2', 'kubernetes_service_account_v1']) {
      const metadata = (r[type]?.worker?.metadata as Block[] | undefined)?.[0];
      expect(metadata?.name, type).toBe('${local.names.worker_group}');
    }
  });
});

describe('composer export against the module inputs', () => {
  const files = exportTerraform(sampleRecords);
  const exported = JSON.parse(files[0]!.content) as { event_types: Record<string, Record<string, unknown>> };

  it('writes one event_types.auto.tfvars.json with the two sample types', () => {
    expect(files.map((f) => f.path)).toEqual([TERRAFORM_EXPORT_FILE]);
    expect(Object.keys(exported)).toEqual(['event_types']);
    expect(Object.keys(exported.event_types)).toEqual(sampleRecords.map((r) => r.settings.name).sort());
  });

  it('every exported type conforms to the event-type module input `event_type`', () => {
    const moduleType = parseType(configs.eventType.variable.event_type!.type as string);
    for (const [name, value] of Object.entries(exported.event_types)) {
      expect(typeErrors(value, moduleType, name)).toEqual([]);
    }
  });

  it('the whole file conforms to the example root variable `event_types`', () => {
    const exampleType = parseType(configs.example.variable.event_types!.type as string);
    expect(typeErrors(exported.event_types, exampleType, 'event_types')).toEqual([]);
  });

  it("the example's event_types is a map of exactly the module's event_type type", () => {
    const moduleType = parseType(configs.eventType.variable.event_type!.type as string);
    expect(parseType(configs.example.variable.event_types!.type as string)).toEqual({ kind: 'map', element: moduleType });
  });

  it('a key the module does not know, or a wrong type, is caught (the check is real)', () => {
    const moduleType = parseType(configs.eventType.variable.event_type!.type as string);
    const one = Object.values(exported.event_types)[0]!;
    expect(typeErrors({ ...one, surprise: 1 }, moduleType)).toEqual(['value.surprise: not an attribute of the type']);
    expect(typeErrors({ ...one, retention_days: '30' }, moduleType)).toEqual([`value.retention_days: expected number, got "30"`]);
    const { slo_hours: _omitted, ...withoutSlo } = one;
    expect(typeErrors(withoutSlo, moduleType)).toEqual(['value.slo_hours: required attribute missing']);
  });

  it('the example passes each exported type to the module and the platform output to its `platform` input', () => {
    const call = configs.example.module.event_type!;
    expect(call.source).toBe('../../modules/event-type');
    expect(call.for_each).toBe('${var.event_types}');
    expect(String(call.event_type)).toContain('each.value');
    expect(String(call.platform)).toContain('module.platform.event_type_platform');
    const platformOutput = configs.platform.output.event_type_platform!.value as Record<string, unknown>;
    const platformInput = parseType(configs.eventType.variable.platform!.type as string);
    if (platformInput.kind !== 'object') throw new Error('platform input is not an object');
    expect(Object.keys(platformOutput).sort()).toEqual(Object.keys(platformInput.attributes).sort());
  });

  it('the example ships the export of the sample records, byte for byte', () => {
    const shipped = readFileSync(join(moduleDirs.example, TERRAFORM_EXPORT_FILE), 'utf8');
    expect(shipped).toBe(files[0]!.content);
  });
});

// ---------------------------------------------------------------------------
// Container environments against the components' configuration

const repo = join(import.meta.dirname, '..');

interface EnvVar {
  name: string;
  /** The HCL value (literal or `${…}` expression), or where the value comes from. */
  source: string;
}

/**
 * The variables a config module reads: the top-level keys of the shape its
 * `parseEnv` call validates (inline, or a `const <name> = {…}` it passes).
 * Also tells which are required (neither `.optional()` nor `.default(…)`).
 */
function configVariables(file: string): Map<string, { required: boolean }> {
  const source = readFileSync(join(repo, file), 'utf8');
  const call = /parseEnv\(\s*(\{|[A-Za-z_$][\w$]*)/.exec(source);
  if (!call) throw new Error(`${file}: no parseEnv call`);
  let open: number;
  if (call[1] === '{') open = call.index + call[0].length - 1;
  else {
    const decl = new RegExp(`const ${call[1]}\\s*=\\s*\\{`).exec(source);
    if (!decl) throw new Error(`${file}: shape ${call[1]} not found`);
    open = decl.index + decl[0].length - 1;
  }
  const variables = shapeVariables(file, source, open);
  if (variables.size === 0) throw new Error(`${file}: empty parseEnv shape`);
  return variables;
}

/** Shapes shared between components, spread into their parseEnv shapes (`...registryEnvShape`). */
const sharedShapes: Record<string, string> = { registryEnvShape: 'lib/registry/open.ts' };

function shapeVariables(file: string, source: string, open: number): Map<string, { required: boolean }> {
  const variables = new Map<string, { required: boolean }>();
  // Depth-1 entries only: split the body at top-level commas.
  for (const entry of splitArguments(balancedBlock(source, open))) {
    const spread = /^\.\.\.([A-Za-z_$][\w$]*)$/.exec(entry);
    if (spread) {
      const sharedFile = sharedShapes[spread[1]!];
      if (sharedFile === undefined) throw new Error(`${file}: unknown shape spread ${entry}`);
      const sharedSource = readFileSync(join(repo, sharedFile), 'utf8');
      const decl = new RegExp(`const ${spread[1]}\\s*=\\s*\\{`).exec(sharedSource);
      if (!decl) throw new Error(`${sharedFile}: shape ${spread[1]} not found`);
      for (const [k, v] of shapeVariables(sharedFile, sharedSource, decl.index + decl[0].length - 1)) variables.set(k, v);
      continue;
    }
    const m = /^([A-Z][A-Z0-9_]+)\s*:([\s\S]*)$/.exec(entry);
    if (!m) throw new Error(`${file}: unexpected shape entry ${entry.slice(0, 60)}`);
    variables.set(m[1]!, { required: !/\.(optional|default)\(/.test(m[2]!) });
  }
  return variables;
}

/** The text inside the braces opening at `open` (strings and template literals skipped). */
function balancedBlock(source: string, open: number): string {
  let depth = 0;
  for (let k = open; k < source.length; k++) {
    const c = source[k]!;
    if (c === "'" || c === '"' || c === '`') {
      for (k++; k < source.length && source[k] !== c; k++) if (source[k] === '\\') k++;
      continue;
    }
    if (c === '{') depth++;
    if (c === '}' && --depth === 0) return source.slice(open + 1, k);
  }
  throw new Error('unbalanced braces');
}

function envOf(container: Block | undefined, where: string): EnvVar[] {
  if (container === undefined) throw new Error(`${where}: no container`);
  return ((container.env ?? []) as Block[]).map((e) => {
    const name = e.name as string;
    if (typeof e.value === 'string') return { name, source: e.value };
    const from = ((e.value_source ?? e.value_from) as Block[] | undefined)?.[0];
    if (from?.secret_key_ref) return { name, source: 'secret' };
    if (from?.field_ref) return { name, source: `field:${((from.field_ref as Block[])[0] as Block).field_path as string}` };
    throw new Error(`${where}: env ${name} has no value`);
  });
}

const at = (block: Block | undefined, ...path: string[]): Block | undefined =>
  path.reduce<Block | undefined>((b, key) => (b?.[key] as Block[] | undefined)?.[0], block);

const priorities = ['high', 'normal', 'low'] as const;

/** Each component's container env as the modules set it; the ETL's for the given priority. */
function componentEnvs(priority: (typeof priorities)[number] = 'normal'): Record<'eventService' | 'padlock' | 'etl', EnvVar[]> {
  const run = configs.platform.resource.google_cloud_run_v2_service ?? {};
  const worker = configs.eventType.resource.kubernetes_deployment_v1?.worker;
  const scope = (ref: string): string => {
    if (ref === 'var.event_type.priority') return priority;
    throw new Error(`env name refers to ${ref}`);
  };
  return {
    eventService: envOf(at(run.event_service, 'template', 'containers'), 'event_service'),
    padlock: envOf(at(run.padlock, 'template', 'containers'), 'padlock'),
    etl: envOf(at(worker, 'spec', 'template', 'spec', 'container'), 'etl worker').map((v) => ({ ...v, name: evaluateTemplate(v.name, scope) })),
  };
}

const configFiles = {
  eventService: 'functions/event-service/config.ts',
  padlock: 'functions/padlock/config.ts',
  etl: 'etl/config.ts',
} as const;

const etlSecret = 'etl-secret-0123456789abcdef';
const project = 'acme-events-prod';

/** Sample values for the HCL expressions and value sources; an unknown one fails the test. */
const samples: Record<string, string> = {
  '${var.project_id}': project,
  '${google_storage_bucket.staging.name}': `${project}-events-staging`,
  '${var.event_service.registry_dir}': '/srv/registry',
  '${google_kms_crypto_key.padlock_kek.id}': `projects/${project}/locations/europe-west1/keyRings/event-platform/cryptoKeys/padlock-kek`,
  '${google_bigtable_instance.keys.name}': 'padlock-keys',
  '${google_bigtable_table.keychains.name}': 'keychains',
  '${local.name}': 'page_view',
  '${var.platform.data_bucket}': `${project}-events-data`,
  '${var.platform.staging_bucket}': `${project}-events-staging`,
  '${tostring(var.event_type.slo_hours * 3600000)}': String(3 * 3_600_000),
  '${join(",", var.platform.padlock_urls)}': 'https://padlock-abc123-ew.a.run.app,https://padlock-mirror-abc123-ew.a.run.app',
  '${google_bigtable_app_profile.padlock.app_profile_id}': 'padlock',
  'field:metadata.name': 'etl-page-view-5d8f7c9b6-x2x7q',
};
const secretSamples: Record<string, string> = {
  PADLOCK_SERVICES: JSON.stringify([serviceEntry('etl', etlSecret, { contexts: ['events'] })]),
  PADLOCK_SECRET: etlSecret,
};

function sampleEnv(vars: EnvVar[]): Record<string, string> {
  return Object.fromEntries(
    vars.map(({ name, source }) => {
      const value = source === 'secret' ? secretSamples[name] : source.includes('${') || source.startsWith('field:') ? samples[source] : source;
      if (value === undefined) throw new Error(`no sample value for ${name} = ${source}: add one to the test`);
      return [name, value];
    }),
  );
}

describe('container environments match the components', () => {
  const components = Object.keys(configFiles) as (keyof typeof configFiles)[];

  it.each(components)('%s: every variable Terraform sets is one its loadConfig reads, every required one is set', (component) => {
    const read = configVariables(configFiles[component]);
    for (const priority of priorities) {
      const set = componentEnvs(priority)[component].map((v) => v.name);
      expect(set.length).toBeGreaterThan(0);
      expect(new Set(set).size, `${component}: no variable set twice`).toBe(set.length);
      expect(set.filter((name) => !read.has(name)), `${component}: set by Terraform but not read by ${configFiles[component]}`).toEqual([]);
      const required = [...read].filter(([, v]) => v.required).map(([name]) => name);
      expect(required.filter((name) => !set.includes(name)), `${component}: required by ${configFiles[component]} but not set`).toEqual([]);
    }
  });

  it('the variable extraction is real: it reads each config, and a renamed variable on either side is caught', () => {
    expect([...configVariables(configFiles.padlock).keys()]).toEqual(expect.arrayContaining(['PADLOCK_MODE', 'PADLOCK_KMS_KEY', 'PADLOCK_SERVICES']));
    expect(configVariables(configFiles.eventService).get('GCP_PROJECT')).toEqual({ required: true });
    expect(configVariables(configFiles.etl).get('LOG_LEVEL')).toEqual({ required: false });
    const read = configVariables(configFiles.etl);
    expect(read.has('GOOGLE_CLOUD_PROJECT')).toBe(false);
    expect(read.has('ETL_DEADLINE_HIGH_MS') && read.has('ETL_DEADLINE_NORMAL_MS') && read.has('ETL_DEADLINE_LOW_MS')).toBe(true);
  });

  it('event service: the environment loads', () => {
    const config = loadEventServiceConfig(sampleEnv(componentEnvs().eventService));
    expect(config.service.projectId).toBe(project);
    expect(config.service.host).toBe('0.0.0.0');
    expect(config.service.stagingBucket).toBe(`${project}-events-staging`);
  });

  it('padlock: the environment loads in production mode (KMS KEK, Bigtable store) on the container port', () => {
    const config = loadPadlockConfig(sampleEnv(componentEnvs().padlock));
    expect(config.mode).toBe('production');
    expect(config.kek.kind).toBe('kms');
    expect(config.store).toMatchObject({ kind: 'bigtable', projectId: project, instanceId: 'padlock-keys', tableId: 'keychains', appProfileId: 'padlock', createTable: false });
    expect(config.host).toBe('0.0.0.0');
    const ports = at(configs.platform.resource.google_cloud_run_v2_service?.padlock, 'template', 'containers', 'ports');
    expect(config.port).toBe(ports?.container_port);
    // The ETL's entry in padlock's services is the name the ETL authenticates as, with the context it encrypts under.
    const etl = loadEtlConfig(sampleEnv(componentEnvs().etl));
    expect(config.services.find((s) => s.name === etl.padlock?.service)?.contexts).toContain(etl.padlock?.keyContext);
  });

  it.each(priorities)('etl (%s): the environment loads with the Firestore registry, padlock, one type and its SLO as close deadline', (priority) => {
    const config = loadEtlConfig(sampleEnv(componentEnvs(priority).etl));
    expect(config.projectId).toBe(project);
    expect(config.eventTypes).toEqual(['page_view']);
    expect(config.registry.kind).toBe('firestore');
    expect(config.padlock).toMatchObject({
      urls: ['https://padlock-abc123-ew.a.run.app', 'https://padlock-mirror-abc123-ew.a.run.app'],
      idToken: true,
      secret: etlSecret,
    });
    expect(config.instanceId).toBe('etl-page-view-5d8f7c9b6-x2x7q');
    expect(config.tuning.closeDeadlineMs[priority]).toBe(3 * 3_600_000);
  });
});

describe('lateness metric against the ETL log entry', () => {
  it('the log-based metric matches what the closer logs on a deadline close', () => {
    const metric = configs.platform.resource.google_logging_metric?.late_partitions;
    const filter = String(metric?.filter);
    const closer = readFileSync(join(repo, 'etl/closer.ts'), 'utf8');
    const entry = /logger\.info\('([^']+)', \{([^}]*)\}\)/.exec(closer.slice(closer.indexOf("closedBy: complete ? 'complete' : 'deadline'")));
    expect(entry, 'etl/closer.ts logs the close').not.toBeNull();
    expect(filter).toContain(`jsonPayload.message="${entry![1]!}"`);
    expect(entry![2]).toMatch(/\bclosedBy:/);
    expect(closer).toContain("closedBy: complete ? 'complete' : 'deadline'");
    expect(filter).toContain('jsonPayload.closedBy="deadline"');
    // Labels: component from etl/main.ts's logger, eventType from the per-type child logger.
    expect(readFileSync(join(repo, 'etl/main.ts'), 'utf8')).toMatch(/createLogger\(\{ component: 'etl'/);
    expect(filter).toContain('labels.component="etl"');
    expect(readFileSync(join(repo, 'etl/workers.ts'), 'utf8')).toMatch(/logger\.child\(\{ eventType \}\)/);
    expect((metric?.label_extractors as Record<string, string>).event_type).toBe('EXTRACT(labels.eventType)');
  });
});
