/**
 * The Terraform in terraform/, checked offline (no provider can be downloaded
 * here, so `terraform init/validate/plan` cannot run): the HCL is parsed with
 * @cdktf/hcl2json and checked for the conventions (typed, described variables
 * and outputs), for names equal to lib/names.ts `resourceNames` (by evaluating
 * the module's name expressions), and for the composer export fitting the
 * module's input types.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { provisioningDefaults } from '../../composer/defaults.ts';
import { monitoringFor } from '../../composer/monitoring.ts';
import { deadLetterSubscriptionSettings } from '../../composer/provisioning.ts';
import { exportTerraform, TERRAFORM_EXPORT_FILE, toTerraformEventType } from '../../composer/terraform-export.ts';
import { mergeSchemas, RECEIVE_TIME_COLUMN, tableSchemaOf, type BigQueryField } from '../../etl/bigquery-schema.ts';
import { loadConfig as loadEtlConfig } from '../../etl/config.ts';
import { loadConfig as loadEventServiceConfig } from '../../functions/event-service/config.ts';
import { loadConfig as loadPadlockConfig } from '../../functions/padlock/config.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';
import { loadConfig as loadStatusConfig } from '../../functions/status/config.ts';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { bucketNames, keychainFamilies, metricNames, promqlMetricName, resourceNames } from '../../lib/names.ts';
import { ETL_METRICS_PORT } from '../../lib/metrics.ts';
import type { AvroSchemaJson, EventTypeRecord, EventTypeSettings, StorageTarget } from '../../lib/registry/types.ts';
import { evaluateTemplate, loadAll, moduleDirs, parseType, splitArguments, terraformRoot as root, typeErrors, type Block, type HclConfig, type ModuleKey } from '../support/terraform-hcl.ts';

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

const snakeCase = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// ---------------------------------------------------------------------------

let configs: Record<ModuleKey, HclConfig>;

beforeAll(async () => {
  configs = await loadAll();
});

describe('terraform conventions', () => {
  it('is formatted (terraform fmt -check -recursive)', () => {
    // Throws (non-zero exit) and names the unformatted files if any.
    execFileSync('terraform', ['fmt', '-check', '-recursive', root], { stdio: 'pipe' });
  });

  it.each(Object.keys(moduleDirs) as ModuleKey[])('%s: every variable is typed and described, every output described', (key) => {
    const config = configs[key];
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

  it('each module pins Terraform >= 1.5 and admits the google provider 6.x (from 6.50) and 7.x (defect 11), and has a README', () => {
    for (const key of Object.keys(moduleDirs) as ModuleKey[]) {
      const versions = readFileSync(join(moduleDirs[key], 'versions.tf'), 'utf8');
      expect(versions).toMatch(/required_version\s*=\s*">= 1\.5"/);
      const google = /source\s*=\s*"hashicorp\/google"\s*\n\s*version\s*=\s*"([^"]+)"/.exec(versions);
      if (google) expect(google[1], `${key}: google provider constraint`).toBe('>= 6.50, < 8.0');
      const kubernetes = /source\s*=\s*"hashicorp\/kubernetes"\s*\n\s*version\s*=\s*"([^"]+)"/.exec(versions);
      if (kubernetes) expect(kubernetes[1], `${key}: kubernetes provider constraint`).toBe('>= 2.30, < 3.0');
      expect(google !== null || kubernetes !== null, `${key} pins a provider`).toBe(true);
      if (key !== 'exampleWorkloads') expect(readFileSync(join(moduleDirs[key], 'README.md'), 'utf8').length).toBeGreaterThan(200);
    }
  });

  it('module READMEs list every input and output', () => {
    for (const key of ['platform', 'eventType', 'workerGroup', 'customMetricsAdapter'] as const) {
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

  it.each(samples)('the worker-group module names the same worker group and subscription for %s', (sample) => {
    const locals = configs.workerGroup.locals;
    const scope = (ref: string): string => {
      if (ref === 'var.event_type.name' || ref === 'local.name') return sample;
      throw new Error(`unknown reference ${ref}`);
    };
    const names = Object.fromEntries(Object.entries(locals.names as Record<string, string>).map(([k, t]) => [k, evaluateTemplate(t, scope)]));
    expect(names).toEqual({ etl_subscription: resourceNames.etlSubscription(sample), worker_group: resourceNames.workerGroup(sample) });
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
      const metadata = (configs.workerGroup.resource[type]?.worker?.metadata as Block[] | undefined)?.[0];
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

  it("every exported type, with or without ops' worker sizing, conforms to the worker-group module's event_type", () => {
    const workerType = parseType(configs.workerGroup.variable.event_type!.type as string);
    for (const [name, value] of Object.entries(exported.event_types)) {
      expect(typeErrors(value, workerType, name)).toEqual([]);
      expect(typeErrors({ ...value, worker: { heap_mb: 800, max_replicas: 40 } }, workerType, name)).toEqual([]);
    }
    if (workerType.kind !== 'object' || workerType.attributes.worker === undefined) throw new Error('worker-group event_type has no worker');
    const { worker: _w, ...withoutWorker } = workerType.attributes;
    expect({ kind: 'object', attributes: withoutWorker }).toEqual(parseType(configs.eventType.variable.event_type!.type as string));
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
    expect(call.event_type).toBe('${each.value}');
    expect(call.platform).toBe('${module.platform.event_type_platform}');
    for (const [output, module] of [['event_type_platform', 'eventType'], ['worker_group_platform', 'workerGroup']] as const) {
      const platformOutput = configs.platform.output[output]!.value as Record<string, unknown>;
      const platformInput = parseType(configs[module].variable.platform!.type as string);
      if (platformInput.kind !== 'object') throw new Error('platform input is not an object');
      expect(Object.keys(platformOutput).sort(), output).toEqual(Object.keys(platformInput.attributes).sort());
    }
  });

  it('the workloads stage gives every exported type a worker group, BigQuery-only ones included (issue 15)', () => {
    const call = configs.exampleWorkloads.module.worker_group!;
    expect(call.source).toBe('../../../modules/worker-group');
    expect(call.for_each).toBe('${local.event_types}');
    expect(configs.exampleWorkloads.locals.event_types).toBe('${jsondecode(file("${path.module}/../event_types.auto.tfvars.json")).event_types}');
    expect(call.platform).toBe('${local.platform.worker_group_platform}');
    const bigQueryOnly = Object.values(exported.event_types).filter((t) => JSON.stringify(t.storage) === '["bigquery"]');
    expect(bigQueryOnly.map((t) => t.name)).toEqual(['sign_up']);
  });

  it('the example ships the export of the sample records, byte for byte', () => {
    const shipped = readFileSync(join(moduleDirs.example, TERRAFORM_EXPORT_FILE), 'utf8');
    expect(shipped).toBe(files[0]!.content);
  });
});

// ---------------------------------------------------------------------------
// Container environments against the components' configuration

const repo = join(import.meta.dirname, '../..');

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

const storages = [['gcs'], ['bigquery'], ['gcs', 'bigquery']] as const;
type Storage = (typeof storages)[number];

/**
 * The worker group's `dynamic "env"` blocks for a type stored in `storage`: the only one is
 * the BigQuery loader's configuration, `local.loader_env` when `local.to_bigquery`.
 */
function dynamicEnvOf(container: Block | undefined, storage: Storage): EnvVar[] {
  const dynamic = container?.dynamic as Block | Block[] | undefined;
  const blocks = ((Array.isArray(dynamic) ? dynamic : dynamic === undefined ? [] : [dynamic]).flatMap((d) => (d.env ?? []) as Block[]));
  expect(blocks.length, 'the worker group has its dynamic env block').toBeGreaterThan(0);
  const locals = configs.workerGroup.locals;
  return blocks.flatMap((block) => {
    const content = at(block, 'content');
    if (block.for_each !== '${local.to_bigquery ? local.loader_env : {}}' || content?.name !== '${env.key}' || content.value !== '${env.value}') {
      throw new Error(`worker group: dynamic env ${JSON.stringify(block)} unknown to the test`);
    }
    expect(locals.to_bigquery).toBe('${contains(var.event_type.storage, "bigquery")}');
    if (!(storage as readonly string[]).includes('bigquery')) return [];
    return Object.entries(locals.loader_env as Record<string, string>).map(([name, source]) => ({ name, source }));
  });
}

/** Each component's container env as the modules set it; the ETL's for the given priority and storage. */
function componentEnvs(priority: (typeof priorities)[number] = 'normal', storage: Storage = ['gcs', 'bigquery']): Record<'eventService' | 'padlock' | 'etl' | 'status', EnvVar[]> {
  const run = configs.platform.resource.google_cloud_run_v2_service ?? {};
  const worker = configs.workerGroup.resource.kubernetes_deployment_v1?.worker;
  const scope = (ref: string): string => {
    if (ref === 'var.event_type.priority') return priority;
    throw new Error(`env name refers to ${ref}`);
  };
  const container = at(worker, 'spec', 'template', 'spec', 'container');
  return {
    eventService: envOf(at(run.event_service, 'template', 'containers'), 'event_service'),
    padlock: envOf(at(run.padlock, 'template', 'containers'), 'padlock'),
    etl: [...envOf(container, 'etl worker'), ...dynamicEnvOf(container, storage)].map((v) => ({ ...v, name: evaluateTemplate(v.name, scope) })),
    status: envOf(at(run.status, 'template', 'containers'), 'status'),
  };
}

const configFiles = {
  eventService: 'functions/event-service/config.ts',
  padlock: 'functions/padlock/config.ts',
  etl: 'etl/config.ts',
  status: 'functions/status/config.ts',
} as const;

const etlSecret = 'etl-secret-0123456789abcdef';
const project = 'acme-events-prod';

/** Sample values for the HCL expressions and value sources; an unknown one fails the test. */
const samples: Record<string, string> = {
  '${var.project_id}': project,
  '${google_storage_bucket.staging.name}': `${project}-events-staging`,
  '${google_storage_bucket.data.name}': `${project}-events-data`,
  '${var.event_service.registry_dir}': '/srv/registry',
  '${google_kms_crypto_key.padlock_kek.id}': `projects/${project}/locations/europe-west1/keyRings/event-platform/cryptoKeys/padlock-kek`,
  '${google_bigtable_instance.keys.name}': 'padlock-keys',
  '${google_bigtable_table.keychains.name}': 'keychains',
  '${local.name}': 'page_view',
  '${var.platform.data_bucket}': `${project}-events-data`,
  '${var.platform.staging_bucket}': `${project}-events-staging`,
  '${var.platform.bigquery_dataset}': 'events',
  '${var.platform.bigquery_location}': 'EU',
  '${tostring(var.event_type.slo_hours * 3600000)}': String(3 * 3_600_000),
  '${join(",", var.platform.padlock_urls)}': 'https://padlock-abc123-ew.a.run.app,https://padlock-mirror-abc123-ew.a.run.app',
  '${each.key == "padlock" ? google_bigtable_app_profile.padlock.app_profile_id : google_bigtable_app_profile.padlock_mirror.app_profile_id}': 'padlock',
  'field:metadata.name': 'etl-page-view-5d8f7c9b6-x2x7q',
  '${tostring(local.metrics_port)}': String(ETL_METRICS_PORT),
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
    for (const [priority, storage] of priorities.flatMap((p) => storages.map((s) => [p, s] as const))) {
      const set = componentEnvs(priority, storage)[component].map((v) => v.name);
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

  it('status: the environment loads with both buckets and the Firestore registry, on the port Cloud Run sets', () => {
    // Cloud Run sets PORT (8080 unless a container port says otherwise); the module sets none.
    const config = loadStatusConfig({ ...sampleEnv(componentEnvs().status), PORT: '8080' });
    expect(config).toMatchObject({ projectId: project, host: '0.0.0.0', port: 8080, stagingBucket: `${project}-events-staging`, dataBucket: `${project}-events-data`, storageEndpoint: undefined, pubsubEmulatorHost: undefined });
    expect(config.registry.kind).toBe('firestore');
    expect(at(configs.platform.resource.google_cloud_run_v2_service?.status, 'template', 'containers', 'ports')).toBeUndefined();
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

  it('etl: a type stored in BigQuery gets the loader\'s dataset and location, talks to Google and creates neither dataset nor table; a GCS-only type gets none of it', () => {
    for (const storage of [['bigquery'], ['gcs', 'bigquery']] as const) {
      expect(loadEtlConfig(sampleEnv(componentEnvs('normal', storage).etl)).bigQuery, storage.join()).toEqual({ dataset: 'events', location: 'EU', endpoint: undefined, createTables: false });
    }
    const gcsOnly = componentEnvs('normal', ['gcs']).etl.map((v) => v.name);
    expect(gcsOnly.filter((name) => name.startsWith('BIGQUERY_'))).toEqual([]);
    // The values come from the platform's dataset, through its worker_group_platform output.
    const output = configs.platform.output.worker_group_platform!.value as Record<string, unknown>;
    expect(output.bigquery_dataset).toBe('${google_bigquery_dataset.events.dataset_id}');
    expect(output.bigquery_location).toBe('${google_bigquery_dataset.events.location}');
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

  it('the loading-stopped metric matches the ERROR the BigQuery loader logs when it stops, and the alert Terraform renders for BigQuery types uses it', () => {
    const metric = configs.platform.resource.google_logging_metric?.bigquery_loading_stopped;
    const filter = String(metric?.filter);
    const loader = readFileSync(join(repo, 'etl/bigquery-load.ts'), 'utf8');
    const stop = loader.slice(loader.indexOf('private stop('));
    const entry = /this\.opts\.logger\.error\('([^']+)'/.exec(stop);
    expect(entry, 'etl/bigquery-load.ts logs the stop as an ERROR').not.toBeNull();
    expect(filter).toContain(`jsonPayload.message="${entry![1]!}"`);
    expect(filter).toContain('severity="ERROR"');
    expect(filter).toContain('labels.component="etl"');
    // The loader logs through the type's child logger (eventType label).
    expect(readFileSync(join(repo, 'etl/workers.ts'), 'utf8')).toMatch(/new BigQueryLoader\(\{[\s\S]*?logger: logger\.child\(\{ eventType \}\)/);
    expect((metric?.label_extractors as Record<string, string>).event_type).toBe('EXTRACT(labels.eventType)');
    expect(configs.platform.locals.loading_stopped_metric_name).toBe(metricNames.bigQueryLoadingStopped);
    expect(metric?.name).toBe('${local.loading_stopped_metric_name}');
    // Exported for the BigQuery types only, rendered by the module's one alert policy resource.
    const alertsOf = (storage: StorageTarget[]): Record<string, { metric: string; promql_metric: string }> =>
      toTerraformEventType(record({ ...sampleRecords[0]!.settings, storage }, [pageView])).alerts as Record<string, { metric: string; promql_metric: string }>;
    expect(alertsOf(['gcs']).bigquery_loading_stopped).toBeUndefined();
    expect(alertsOf(['gcs', 'bigquery']).bigquery_loading_stopped).toMatchObject({
      metric: `logging.googleapis.com/user/${metricNames.bigQueryLoadingStopped}`,
      promql_metric: 'logging_googleapis_com:user_etl_bigquery_loading_stopped',
    });
    const queries = String(configs.eventType.locals.alert_queries);
    expect(queries).toContain('sum(increase(${a.promql_metric}{event_type=\\"${a.resource}\\"}[1h])) > ${a.threshold}');
  });
});

// ---------------------------------------------------------------------------
// Issue 17: what a real project needs, beyond files matching files.

const resourceOf = (key: ModuleKey, type: string, name: string): Block => {
  const r = configs[key].resource[type]?.[name];
  if (r === undefined) throw new Error(`${key}: no ${type}.${name}`);
  return r;
};

describe('issue 17: deployable on Google Cloud', () => {
  const exported = (JSON.parse(exportTerraform(sampleRecords)[0]!.content) as { event_types: Record<string, { message_retention_days: number }> }).event_types;

  it('defect 2: the keychains table has the families padlock writes (lib/names.ts), one version each', async () => {
    const { KEY_FAMILY, TOMBSTONE_FAMILY } = await import('../../functions/padlock/bigtable-store.ts');
    expect([KEY_FAMILY, TOMBSTONE_FAMILY]).toEqual([keychainFamilies.key, keychainFamilies.tombstone]);
    expect(configs.platform.locals.keychain_families).toEqual(Object.values(keychainFamilies));
    const table = resourceOf('platform', 'google_bigtable_table', 'keychains');
    const dynamic = (table.dynamic as Record<string, Block[]>).column_family![0]!;
    expect(dynamic.for_each).toBe('${toset(local.keychain_families)}');
    expect(dynamic.content).toEqual([{ family: '${column_family.value}' }]);
    const gc = resourceOf('platform', 'google_bigtable_gc_policy', 'keychains');
    expect(gc.for_each).toBe('${toset(local.keychain_families)}');
    expect(gc.column_family).toBe('${each.value}');
    expect(at(gc, 'max_version')?.number).toBe(1);
  });

  it('bucket names: the platform\'s defaults are lib/names.ts bucketNames, and the components get them from the buckets', () => {
    for (const [local, name] of [['data_bucket', bucketNames.data], ['staging_bucket', bucketNames.staging]] as const) {
      const expr = String(configs.platform.locals[local]);
      const fallback = /^\$\{coalesce\(var\.storage\.\w+_bucket_name, "(.*)"\)\}$/.exec(expr)?.[1];
      expect(fallback, local).toBeDefined();
      expect(evaluateTemplate(fallback!, (ref) => (ref === 'var.project_id' ? project : (() => { throw new Error(ref); })()))).toBe(name(project));
      expect(resourceOf('platform', 'google_storage_bucket', local.replace('_bucket', '')).name).toBe(`\${local.${local}}`);
    }
    expect(configs.platform.output.worker_group_platform!.value).toMatchObject({ data_bucket: '${google_storage_bucket.data.name}', staging_bucket: '${google_storage_bucket.staging.name}' });
  });

  it('defect 3: the ETL may publish to its dead-letter topic', () => {
    const grant = resourceOf('eventType', 'google_pubsub_topic_iam_member', 'etl_dead_letter_publisher');
    expect(grant).toMatchObject({ topic: '${local.names.dead_letter_topic}', role: 'roles/pubsub.publisher', member: 'serviceAccount:${var.platform.etl_service_account_email}' });
  });

  it('defect 4: the ETL may delete, overwrite and seal (setRetention, never override) in the data bucket, which has object retention; staging keeps no soft-deleted churn (defect 11)', () => {
    expect(resourceOf('platform', 'google_storage_bucket_iam_member', 'etl_data').role).toBe('${google_project_iam_custom_role.etl_data_writer.id}');
    expect(resourceOf('platform', 'google_project_iam_custom_role', 'etl_data_writer').permissions).toEqual([
      'storage.objects.create',
      'storage.objects.delete',
      'storage.objects.get',
      'storage.objects.list',
      'storage.objects.setRetention',
      'storage.objects.update',
    ]);
    expect(resourceOf('platform', 'google_storage_bucket', 'data').enable_object_retention).toBe(true);
    expect(at(resourceOf('platform', 'google_storage_bucket', 'data'), 'soft_delete_policy')?.retention_duration_seconds).toBe('${var.storage.data_soft_delete_days * 86400}');
    expect(at(resourceOf('platform', 'google_storage_bucket', 'staging'), 'soft_delete_policy')?.retention_duration_seconds).toBe(0);
  });

  it('defect 5: stage 1 configures no kubernetes provider; stage 2 reads the cluster from stage 1 state', () => {
    expect(Object.keys(configs.example.provider)).toEqual(['google']);
    expect(Object.keys(configs.example.resource).filter((t) => t.startsWith('kubernetes_'))).toEqual([]);
    expect(readFileSync(join(moduleDirs.example, 'versions.tf'), 'utf8')).not.toContain('kubernetes');
    const kubernetes = configs.exampleWorkloads.provider.kubernetes!;
    expect(kubernetes.host).toBe('https://${local.platform.etl_cluster.endpoint}');
    expect(configs.exampleWorkloads.locals.platform).toBe('${data.terraform_remote_state.platform.outputs}');
    expect(configs.exampleWorkloads.data.terraform_remote_state?.platform?.backend).toBe('gcs');
    for (const output of ['etl_cluster', 'worker_group_platform']) expect(configs.example.output[output], output).toBeDefined();
  });

  it('defect 5: the example enables every API the apply needs, creates its notification channels, gives the nodes a service account', () => {
    const apis = String(resourceOf('example', 'google_project_service', 'apis').for_each);
    for (const api of ['iam', 'iamcredentials', 'cloudresourcemanager', 'compute', 'artifactregistry', 'container', 'run', 'pubsub', 'bigquery', 'bigtableadmin', 'cloudkms', 'firestore', 'secretmanager', 'monitoring', 'logging', 'storage']) {
      expect(apis, api).toContain(`"${api}.googleapis.com"`);
    }
    expect(resourceOf('example', 'google_monitoring_notification_channel', 'email').type).toBe('email');
    expect(String((configs.example.module.platform!.alerting as Block).notification_channels)).toContain('google_monitoring_notification_channel.email');
    expect(readFileSync(join(moduleDirs.example, 'env', 'prod.tfvars'), 'utf8')).not.toMatch(/notificationChannels\//);
    const cluster = resourceOf('platform', 'google_container_cluster', 'etl');
    expect(at(cluster, 'cluster_autoscaling', 'auto_provisioning_defaults')?.service_account).toBe('${google_service_account.gke_nodes.email}');
  });

  it('the partition status service: an internal page behind IAM, one always-on instance, read-only grants on what it reads', () => {
    const service = resourceOf('platform', 'google_cloud_run_v2_service', 'status');
    expect(service).toMatchObject({ name: 'status', ingress: 'INGRESS_TRAFFIC_ALL' });
    expect(at(service, 'template')?.service_account).toBe('${google_service_account.component["status"].email}');
    // The listing pass runs between requests: CPU always allocated, and one instance (a second would repeat the listing).
    expect(at(service, 'template', 'scaling')).toMatchObject({ min_instance_count: 1, max_instance_count: 1 });
    expect(at(service, 'template', 'containers', 'resources')?.cpu_idle).toBe(false);
    expect(at(service, 'template', 'containers')?.image).toBe('${var.status.image}');
    // Only the listed viewers may invoke it; no IAM member in the modules opens it to everyone.
    const viewers = resourceOf('platform', 'google_cloud_run_v2_service_iam_member', 'status_viewers');
    expect(viewers).toMatchObject({ for_each: '${toset(var.status.viewer_members)}', role: 'roles/run.invoker', member: '${each.value}', name: '${google_cloud_run_v2_service.status.name}' });
    for (const key of ['platform', 'eventType', 'example'] as const) expect(JSON.stringify(configs[key]), key).not.toMatch(/allUsers|allAuthenticatedUsers/);
    expect(configs.platform.output.status_url!.value).toBe('${google_cloud_run_v2_service.status.uri}');
    expect(configs.example.module.platform!.status).toEqual({ image: '${var.images.status}', viewer_members: '${var.status_viewers}' });
    // It counts dead letters on the subscription named as lib/names.ts resourceNames.deadLetterSubscription, in both provisioning modes.
    const deadLetters = resourceOf('eventType', 'google_pubsub_subscription_iam_member', 'status_dead_letter_reader');
    expect(deadLetters).toMatchObject({ subscription: '${local.names.dead_letter_subscription}', role: 'roles/pubsub.subscriber', member: 'serviceAccount:${var.platform.status_service_account_email}' });
    expect(deadLetters.count).toBeUndefined();
    for (const bucket of ['staging', 'data']) {
      expect(resourceOf('platform', 'google_storage_bucket_iam_member', `status_${bucket}`)).toMatchObject({ bucket: `\${google_storage_bucket.${bucket}.name}`, role: 'roles/storage.objectViewer' });
    }
  });

  it('defect 6: the KEK survives a region (multi-region key ring) and padlock-mirror fails over (multi-cluster routing)', () => {
    const kms = parseType(configs.platform.variable.kms!.type as string);
    expect(String(configs.platform.variable.kms!.type)).toContain('location             = optional(string, "europe")');
    expect(kms.kind).toBe('object');
    expect(resourceOf('platform', 'google_kms_key_ring', 'platform').location).toBe('${var.kms.location}');
    const mirror = resourceOf('platform', 'google_bigtable_app_profile', 'padlock_mirror');
    expect(mirror.multi_cluster_routing_use_any).toBe(true);
    expect(mirror.multi_cluster_routing_cluster_ids).toEqual(['${var.key_store.instance_name}-mirror', '${var.key_store.instance_name}-primary']);
    const profile = envOf(at(configs.platform.resource.google_cloud_run_v2_service?.padlock, 'template', 'containers'), 'padlock').find((v) => v.name === 'PADLOCK_BIGTABLE_APP_PROFILE')!.source;
    const cond = /^\$\{each\.key == "padlock" \? google_bigtable_app_profile\.(\w+)\.app_profile_id : google_bigtable_app_profile\.(\w+)\.app_profile_id\}$/.exec(profile);
    expect(cond?.slice(1)).toEqual(['padlock', 'padlock_mirror']);
  });

  it('defect 7: 100 delivery attempts before dead-lettering, in the composer and the module alike', () => {
    expect(provisioningDefaults.maxDeliveryAttempts).toBe(100);
    expect(String(configs.eventType.variable.event_type!.type)).toMatch(/dead_letter_max_attempts\s+= optional\(number, 100\)/);
    expect(resourceOf('eventType', 'google_pubsub_subscription', 'etl').dead_letter_policy).toEqual([
      { dead_letter_topic: '${google_pubsub_topic.dead_letter[0].id}', max_delivery_attempts: '${var.event_type.dead_letter_max_attempts}' },
    ]);
  });

  it('defect 1/11: the dead-letter subscription is kept alike by both owners: 31 days, acked messages too', () => {
    const dl = resourceOf('eventType', 'google_pubsub_subscription', 'dead_letter');
    expect(dl.message_retention_duration).toBe('${31 * 86400}s');
    expect(dl.retain_acked_messages).toBe(true);
    expect(provisioningDefaults.deadLetterRetentionSeconds).toBe(31 * 86400);
    expect(deadLetterSubscriptionSettings.retainAckedMessages).toBe(true);
    // The ETL subscription: Pub/Sub's 31-day maximum is above the 7 days both use.
    expect(provisioningDefaults.messageRetentionSeconds / 86400).toBe(exported.page_view!.message_retention_days);
  });

  it('defect 8: the worker group scales on undelivered messages per replica only', () => {
    const hpa = resourceOf('workerGroup', 'kubernetes_horizontal_pod_autoscaler_v2', 'worker');
    const metrics = (at(hpa, 'spec')?.metric as Block[]).map((m) => at(m, 'external', 'metric')?.name);
    expect(metrics).toEqual(['pubsub.googleapis.com|subscription|num_undelivered_messages']);
    expect(JSON.stringify(hpa)).not.toContain('oldest_unacked');
  });

  it('defect 10: the alerts Terraform renders are the composer definition, on metrics the platform emits', () => {
    const source = readFileSync(join(moduleDirs.eventType, 'main.tf'), 'utf8');
    expect(source).not.toMatch(/googleapis_com|googleapis\.com\/(subscription|user)|custom\.googleapis/);
    const policy = resourceOf('eventType', 'google_monitoring_alert_policy', 'alert');
    expect(policy.for_each).toBe('${var.event_type.alerts}');
    expect(policy.severity).toBe('${each.value.severity}');
    for (const record of sampleRecords) {
      const exportedAlerts = toTerraformEventType(record).alerts;
      const definition = monitoringFor(record.settings).alerts;
      expect(Object.keys(exportedAlerts).sort()).toEqual(definition.map((a) => a.kind).sort());
      for (const a of definition) {
        expect(exportedAlerts[a.kind]).toMatchObject({ metric: a.metric, threshold: a.threshold, severity: a.severity, duration_seconds: a.durationSeconds, resource: a.resource });
      }
    }
    // The lateness metric: the log-based metric Terraform defines, under lib/names.ts's name.
    expect(configs.platform.locals.late_partition_metric_name).toBe(metricNames.partitionsClosedAtDeadline);
    expect(resourceOf('platform', 'google_logging_metric', 'late_partitions').name).toBe('${local.late_partition_metric_name}');
    expect(promqlMetricName(`logging.googleapis.com/user/${metricNames.partitionsClosedAtDeadline}`)).toBe('logging_googleapis_com:user_etl_partitions_closed_at_deadline');
  });

  it('defect 11: owner labels are valid Kubernetes label values (alphanumeric at both ends) in both modules', () => {
    for (const key of ['eventType', 'workerGroup'] as const) {
      const template = String(configs[key].locals.owner_label);
      const label = (owner: string): string => evaluateTemplate(template, (ref) => (ref === 'var.event_type.owner' ? owner : (() => { throw new Error(ref); })()));
      expect(label('Web Analytics!')).toBe('web-analytics');
      expect(label('team-')).toBe('team');
      expect(label(`${'a'.repeat(62)}-b`)).toBe('a'.repeat(62));
      for (const owner of ['x_', '-a-', 'Données', 'a'.repeat(70)]) expect(label(owner), owner).toMatch(/^([a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?)?$/);
    }
  });

  it('defect 11: the custom-metrics adapter is Terraform, pinned to a release, and no README installs it from a branch', () => {
    const image = String(configs.customMetricsAdapter.variable.image!.default);
    expect(image).toMatch(/:v\d+\.\d+\.\d+/);
    expect(configs.exampleWorkloads.module.custom_metrics_adapter?.source).toBe('../../../modules/custom-metrics-adapter');
    for (const key of ['platform', 'eventType', 'workerGroup', 'example'] as const) {
      const readme = readFileSync(join(moduleDirs[key], 'README.md'), 'utf8');
      expect(readme, key).not.toMatch(/kubectl apply -f https?:|\/master\//);
      expect(readme, key).not.toMatch(/file-only registry|registry folder/);
    }
  });

  it('issue 15: event tables are partitioned hourly or daily, need a partition filter, expire partitions with the retention', () => {
    const table = resourceOf('eventType', 'google_bigquery_table', 'events');
    expect(table.require_partition_filter).toBe(true);
    expect(at(table, 'time_partitioning')).toMatchObject({
      type: '${var.event_type.partitioning == "hourly" ? "HOUR" : "DAY"}',
      field: '${local.receive_time_column}',
      expiration_ms: '${var.event_type.retention_days * 86400000}',
    });
    expect(table.count).toBe('${local.to_bigquery ? 1 : 0}');
  });

  it('issue 15: a table Terraform made takes the loader\'s loads: partitioned on receiveTime, with the delivered envelope as the loader maps it, the rest left to the loader', () => {
    const table = resourceOf('eventType', 'google_bigquery_table', 'events');
    const locals = configs.eventType.locals;
    expect(locals.receive_time_column).toBe(RECEIVE_TIME_COLUMN);
    expect(at(table, 'time_partitioning')?.field).toBe('${local.receive_time_column}');
    expect(table.schema).toBe('${jsonencode(local.envelope_columns)}');
    const local = (ref: string): string => {
      if (ref === 'local.receive_time_column') return String(locals.receive_time_column);
      throw new Error(`envelope column refers to ${ref}`);
    };
    const columns = (locals.envelope_columns as BigQueryField[]).map((c) => ({ ...c, name: evaluateTemplate(c.name, local) }));
    for (const schema of [pageView, signUp]) {
      const loader = tableSchemaOf(schema);
      expect(columns).toEqual(loader.filter((c) => c.name !== 'payload'));
      // What the loader does to the table before its first load: add the payload, change nothing else.
      const merge = mergeSchemas(columns, loader);
      expect(merge.added).toEqual(['payload']);
      expect(merge.relaxed).toEqual([]);
      expect(merge.fields.find((f) => f.name === RECEIVE_TIME_COLUMN)).toEqual(loader.find((f) => f.name === RECEIVE_TIME_COLUMN));
    }
    // The loader adds columns per writer version (tables.patch): Terraform must not take them back.
    expect(at(table, 'lifecycle')?.ignore_changes).toEqual(['${schema}']);
  });
});
