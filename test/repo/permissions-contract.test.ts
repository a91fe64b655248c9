/**
 * The permissions contract (lib/permissions/contract.json), checked against
 * both sides it describes:
 * - the code: every Google client call each component's code makes (found with
 *   the type checker, test/support/google-calls.ts) maps to permissions
 *   (lib/permissions/client-methods.json); the component must list them, and
 *   everything it lists must be called;
 * - the Terraform: the roles granted to each principal (IAM members parsed from
 *   terraform/modules), expanded with Google's role definitions
 *   (lib/permissions/roles.json), must cover every operation on its resource,
 *   in both provisioning modes, and grant nothing beyond the principal's stated
 *   allowance; every grant must be needed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import clientMethods from '../../lib/permissions/client-methods.json' with { type: 'json' };
import contract from '../../lib/permissions/contract.json' with { type: 'json' };
import roleData from '../../lib/permissions/roles.json' with { type: 'json' };
import { googleCalls, type GoogleCall } from '../support/google-calls.ts';
import { loadAll, type Block, type HclConfig, type ModuleKey } from '../support/terraform-hcl.ts';

type Mode = 'terraform' | 'composer';
const modes: Mode[] = ['terraform', 'composer'];

interface Operation {
  permission: string;
  resource: string;
  prefix?: string;
  modes?: Mode[];
  why: string;
  /** Made by Google on the principal's behalf, not by our code. */
  by?: string;
  /** Granted by Google along with this other operation of the principal (e.g. reading the jobs it created). */
  impliedBy?: string;
  /** Made only outside production; never granted. */
  localOnly?: string;
}
interface Principal {
  kind: 'component' | 'google';
  entries?: string[];
  operations: Operation[];
  reachableNotCalled?: { permissions: string[]; why: string }[];
  allowance?: { permissions: string[]; why: string }[];
}

const principals = contract.principals as Record<string, Principal>;
const roles = new Map(Object.entries(roleData.roles).map(([name, r]) => [name, new Set(r.includedPermissions)]));
const methods = new Map(Object.entries(clientMethods.methods as Record<string, string[]>));

const inMode = (op: Operation, mode: Mode): boolean => op.modes === undefined || op.modes.includes(mode);
/** The operations Terraform must grant in `mode` (an implied one comes with the operation that implies it). */
const grantedOps = (p: Principal, mode: Mode): Operation[] => p.operations.filter((op) => inMode(op, mode) && op.localOnly === undefined && op.impliedBy === undefined);

// ---------------------------------------------------------------------------
// The code side

const components = Object.entries(principals).filter(([, p]) => p.kind === 'component');
/** Code that starts calling an API nobody listed, scanned like a component. */
const FIXTURE = 'fixture';
let calls: Record<string, GoogleCall[]>;

beforeAll(() => {
  calls = googleCalls({ ...Object.fromEntries(components.map(([name, p]) => [name, p.entries ?? []])), [FIXTURE]: ['test/fixtures/permissions/new-call.ts'] });
}, 120_000);

function permissionsOf(found: GoogleCall[]): { permissions: Map<string, string[]>; unknown: GoogleCall[] } {
  const permissions = new Map<string, string[]>();
  const unknown: GoogleCall[] = [];
  for (const call of found) {
    const needed = methods.get(call.method);
    if (needed === undefined) unknown.push(call);
    else for (const p of needed) permissions.set(p, [...(permissions.get(p) ?? []), `${call.method} at ${call.at}`]);
  }
  return { permissions, unknown };
}

describe('permissions contract against the code', () => {
  it('finds the Google client calls of every component (the scan is real)', () => {
    const methodsOf = (c: string): Set<string> => new Set(calls[c]!.map((x) => x.method));
    expect(methodsOf('event-service')).toContain('Topic.publishMessage');
    expect(methodsOf('etl')).toContain('File.delete');
    expect(methodsOf('composer')).toContain('Bucket.exists');
    // Through padlock's structural adapter: kmsCallsOf(createKms(…)).
    expect(methodsOf('padlock')).toContain('KeyManagementServiceClient.decrypt');
    // The status service peeks at dead letters and gives them back.
    expect([...methodsOf('status')]).toEqual(expect.arrayContaining(['Bucket.getFiles', 'File.download', 'SubscriberClient.pull', 'SubscriberClient.modifyAckDeadline']));
  });

  it.each(components.map(([name]) => name))('%s: every client method it calls has known permissions', (name) => {
    expect(permissionsOf(calls[name]!).unknown.map((c) => `${c.method} at ${c.at}`), 'add these to lib/permissions/client-methods.json').toEqual([]);
  });

  it.each(components.map(([name]) => name))('%s: the contract lists every permission its code needs, and only those', (name) => {
    const p = principals[name]!;
    const { permissions } = permissionsOf(calls[name]!);
    const listed = new Set([...p.operations.filter((op) => op.by === undefined).map((op) => op.permission), ...(p.reachableNotCalled ?? []).flatMap((r) => r.permissions)]);
    const unlisted = [...permissions].filter(([perm]) => !listed.has(perm)).map(([perm, where]) => `${perm} (${where.join(', ')})`);
    expect(unlisted, `${name} calls APIs its contract does not list`).toEqual([]);
    const uncalled = p.operations.filter((op) => op.by === undefined && !permissions.has(op.permission)).map((op) => op.permission);
    expect(uncalled, `${name}'s contract lists operations its code never makes`).toEqual([]);
    const stale = (p.reachableNotCalled ?? []).flatMap((r) => r.permissions).filter((perm) => !permissions.has(perm));
    expect(stale, `${name}: reachableNotCalled lists permissions no reachable call needs`).toEqual([]);
  });

  it('a component that starts calling an unlisted API is caught, with the call site', () => {
    const { permissions, unknown } = permissionsOf(calls[FIXTURE]!);
    expect(unknown.map((c) => `${c.method} at ${c.at}`)).toEqual(['File.copy at test/fixtures/permissions/new-call.ts:8']);
    expect([...permissions.keys()]).toEqual(['storage.objects.get']);
  });

  it('an implied operation comes with a granted operation of the same principal on the same resource', () => {
    const implied = Object.entries(principals).flatMap(([name, p]) => p.operations.filter((op) => op.impliedBy !== undefined).map((op) => ({ name, p, op })));
    expect(implied.map(({ name, op }) => `${name}: ${op.permission}`)).toContain('etl: bigquery.jobs.get');
    for (const { name, p, op } of implied) {
      const by = p.operations.find((o) => o.permission === op.impliedBy && o.resource === op.resource && o.impliedBy === undefined && o.localOnly === undefined);
      expect(by, `${name}: ${op.permission} is implied by ${op.impliedBy}, which it must be granted on ${op.resource}`).toBeDefined();
    }
  });

  it('the BigQuery loader is granted what it calls in production; creating the dataset is local only', () => {
    const etl = principals.etl!;
    const { permissions } = permissionsOf(calls.etl!);
    const bigQuery = [...permissions.keys()].filter((perm) => perm.startsWith('bigquery.')).sort();
    expect(bigQuery).toEqual(['bigquery.datasets.create', 'bigquery.jobs.create', 'bigquery.jobs.get', 'bigquery.tables.create', 'bigquery.tables.get', 'bigquery.tables.update', 'bigquery.tables.updateData']);
    const granted = new Set(modes.flatMap((mode) => grantedOps(etl, mode)).map((op) => op.permission));
    expect(bigQuery.filter((perm) => !granted.has(perm))).toEqual(['bigquery.datasets.create', 'bigquery.jobs.get']);
    expect(etl.operations.find((op) => op.permission === 'bigquery.datasets.create')?.localOnly).toBeDefined();
    // Load jobs read the data bucket with the ETL's credentials.
    expect(grantedOps(etl, 'terraform').filter((op) => op.resource === 'bucket:data').map((op) => op.permission)).toEqual(expect.arrayContaining(['storage.buckets.get', 'storage.objects.get']));
  });

  it('every method in client-methods.json is called somewhere (no stale entries)', () => {
    const called = new Set(components.flatMap(([name]) => calls[name]!.map((c) => c.method)));
    expect([...methods.keys()].filter((m) => !called.has(m))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The Terraform side

interface Grant {
  /** `module.type.name[key]`, for messages. */
  address: string;
  principal: string;
  role: string;
  resource: string;
  prefix?: string;
}

/** IAM members that are not platform principals (variables): the producers allowed to call the event service, the operators allowed to open the status page. */
const externalMembers = new Set(['google_cloud_run_v2_service_iam_member.event_service_invokers', 'google_cloud_run_v2_service_iam_member.status_viewers']);

const resourceOf: Record<string, (b: Block, condition: string | undefined) => string> = {
  google_storage_bucket_iam_member: (b) => byValue(b.bucket, { '${google_storage_bucket.data.name}': 'bucket:data', '${google_storage_bucket.staging.name}': 'bucket:staging' }),
  google_pubsub_topic_iam_member: (b) => byValue(b.topic, { '${local.names.topic}': 'topic:events', '${local.names.dead_letter_topic}': 'topic:dead-letter' }),
  google_pubsub_subscription_iam_member: (b) => byValue(b.subscription, { '${local.names.etl_subscription}': 'subscription:etl', '${local.names.dead_letter_subscription}': 'subscription:dead-letter' }),
  google_project_iam_member: (_, condition) => (condition?.includes('/databases/') ? 'firestore:registry' : 'project'),
  google_bigquery_dataset_iam_member: (b) => byValue(b.dataset_id, { '${google_bigquery_dataset.events.dataset_id}': 'dataset:events' }),
  google_bigtable_table_iam_member: (b) => byValue(b.table, { '${google_bigtable_table.keychains.name}': 'bigtable-table:keychains' }),
  google_kms_crypto_key_iam_member: (b) => byValue(b.crypto_key_id, { '${google_kms_crypto_key.padlock_kek.id}': 'kms-key:padlock-kek' }),
  google_secret_manager_secret_iam_member: (b) => byValue(b.secret_id, { '${var.padlock.service_secrets_secret_id}': 'secret:padlock-services' }),
  google_cloud_run_v2_service_iam_member: (b) => byValue(b.name, { '${each.value.name}': 'run:padlock' }),
  google_service_account_iam_member: (b) => byValue(b.service_account_id, { '${var.platform.etl_service_account_name}': 'service-account:etl' }),
};

function byValue(value: unknown, table: Record<string, string>): string {
  const key = String(value);
  const r = Object.hasOwn(table, key) ? table[key] : undefined;
  if (r === undefined) throw new Error(`unknown IAM resource ${String(value)}: map it in test/repo/permissions-contract.test.ts`);
  return r;
}

/** The IAM condition's expression, a `local.*` reference resolved. */
function conditionOf(b: Block, locals: Record<string, unknown>): string | undefined {
  const expression = (b.condition as Block[] | undefined)?.[0]?.expression as string | undefined;
  const local = expression === undefined ? undefined : /^\$\{local\.(\w+)\}$/.exec(expression);
  return local ? String(locals[local[1]!]) : expression;
}

function memberPrincipal(member: string, eachKey: string | undefined): string {
  const sa = /^\$\{local\.sa\["([a-z-]+)"\]\}$/.exec(member);
  if (sa) return sa[1]!;
  if (member === '${local.sa[each.key]}' && eachKey !== undefined) return eachKey;
  const known: Record<string, string> = {
    'serviceAccount:${var.platform.etl_service_account_email}': 'etl',
    'serviceAccount:${var.platform.event_service_account_email}': 'event-service',
    'serviceAccount:${var.platform.composer_service_account_email}': 'composer',
    'serviceAccount:${var.platform.status_service_account_email}': 'status',
    '${local.pubsub_service_agent}': 'pubsub-service-agent',
    'serviceAccount:${google_service_account.gke_nodes.email}': 'gke-nodes',
  };
  if (Object.hasOwn(known, member)) return known[member]!;
  if (member.endsWith('/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter')) return 'custom-metrics-adapter';
  if (/^serviceAccount:\$\{var\.project_id\}\.svc\.id\.goog\[/.test(member)) return 'etl-workload';
  throw new Error(`unknown IAM member ${member}: add its principal to the contract and this mapping`);
}

/** The for_each keys of a resource (one `undefined` without for_each). */
function instances(b: Block): (string | undefined)[] {
  const forEach = b.for_each as string | undefined;
  if (forEach === undefined) return [undefined];
  const set = /^\$\{toset\(\[(.*)\]\)\}$/s.exec(forEach);
  if (set) return [...set[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  if (forEach === '${google_cloud_run_v2_service.padlock}') return ['padlock-groups'];
  throw new Error(`cannot expand for_each ${forEach}`);
}

/** The name `roleOf` gives a custom role of the platform module (`google_project_iam_custom_role.<name>`). */
const customRoleName = (name: string): string => `custom:${name}`;

function roleOf(b: Block, eachKey: string | undefined, mode: Mode): string {
  const role = String(b.role);
  if (role === '${each.value}' && eachKey !== undefined) return eachKey;
  const custom = /^\$\{google_project_iam_custom_role\.(\w+)\.(id|name)\}$/.exec(role);
  if (custom) return customRoleName(custom[1]!);
  const conditional = /^\$\{local\.composer_provisions \? "([^"]+)" : "([^"]+)"\}$/.exec(role);
  if (conditional) return mode === 'composer' ? conditional[1]! : conditional[2]!;
  if (role.includes('${')) throw new Error(`cannot evaluate role ${role}`);
  return role;
}

/** Every IAM grant to a platform principal in the platform and event-type modules. */
function grantsOf(configs: Record<ModuleKey, HclConfig>, mode: Mode): Grant[] {
  const grants: Grant[] = [];
  for (const module of ['platform', 'eventType'] as const) {
    for (const [type, byName] of Object.entries(configs[module].resource)) {
      if (!type.endsWith('_iam_member')) continue;
      for (const [name, block] of Object.entries(byName)) {
        if (externalMembers.has(`${type}.${name}`)) continue;
        // Grants the event-type module makes only when it owns the Pub/Sub resources.
        if (block.count === '${local.owns_pubsub ? 1 : 0}' && mode !== 'terraform') continue;
        const toResource = Object.hasOwn(resourceOf, type) ? resourceOf[type] : undefined;
        if (toResource === undefined) throw new Error(`IAM resource type ${type} unknown to the contract test`);
        for (const key of instances(block)) {
          const condition = conditionOf(block, configs[module].locals);
          const prefix = condition === undefined ? undefined : /\/objects\/([^"\\]*)/.exec(condition)?.[1];
          grants.push({
            address: `${module}.${type}.${name}${key === undefined ? '' : `["${key}"]`}`,
            principal: memberPrincipal(String(block.member), key),
            role: roleOf(block, key, mode),
            resource: toResource(block, condition),
            ...(prefix === undefined ? {} : { prefix }),
          });
        }
      }
    }
  }
  return grants;
}

function permissionsOfRole(role: string): Set<string> {
  const r = roles.get(role);
  if (r === undefined) throw new Error(`role ${role} is not in lib/permissions/roles.json (nor a custom role of the modules): add Google's definition`);
  return r;
}

/** Adds the modules' custom roles (their `permissions`, as the HCL lists them) to the role definitions. */
function addCustomRoles(configs: Record<ModuleKey, HclConfig>): void {
  for (const module of ['platform', 'eventType'] as const) {
    for (const [name, block] of Object.entries(configs[module].resource.google_project_iam_custom_role ?? {})) {
      const permissions = block.permissions;
      if (!Array.isArray(permissions) || !permissions.every((p) => typeof p === 'string')) throw new Error(`custom role ${name}: permissions must be a literal list`);
      roles.set(customRoleName(name), new Set(permissions));
    }
  }
}

/** Whether `grant` lets its principal do `op`. */
function covers(grant: Grant, op: Operation): boolean {
  const onResource = grant.resource === op.resource || (grant.resource === 'project' && op.resource !== 'firestore:registry');
  const inPrefix = grant.prefix === undefined || (op.prefix !== undefined && op.prefix.startsWith(grant.prefix));
  return onResource && inPrefix && permissionsOfRole(grant.role).has(op.permission);
}

export interface ContractProblems {
  uncovered: string[];
  unneeded: string[];
  /** Project-wide grants serving operations on one resource. */
  overScoped: string[];
  beyondAllowance: string[];
  unknownPrincipals: string[];
}

/** Everything wrong between the contract and `grants`. */
export function contractProblems(grants: Grant[], mode: Mode): ContractProblems {
  const problems: ContractProblems = { uncovered: [], unneeded: [], overScoped: [], beyondAllowance: [], unknownPrincipals: [] };
  for (const g of grants) if (!Object.hasOwn(principals, g.principal)) problems.unknownPrincipals.push(`${g.address}: ${g.principal}`);
  for (const [name, p] of Object.entries(principals)) {
    const mine = grants.filter((g) => g.principal === name);
    const ops = grantedOps(p, mode);
    for (const op of ops) {
      if (!mine.some((g) => covers(g, op))) problems.uncovered.push(`${name}: ${op.permission} on ${op.resource}${op.prefix === undefined ? '' : ` under ${op.prefix}`}`);
    }
    for (const g of mine) {
      const served = ops.filter((op) => covers(g, op));
      if (served.length === 0) problems.unneeded.push(`${g.address} (${g.role} on ${g.resource}) serves no operation of ${name}`);
      else if (g.resource === 'project' && served.every((op) => op.resource !== 'project')) problems.overScoped.push(`${g.address} (${g.role}) is project-wide for ${[...new Set(served.map((op) => op.resource))].join(', ')}`);
    }
    const used = new Set(ops.map((op) => op.permission));
    const allowed = new Set((p.allowance ?? []).flatMap((a) => a.permissions));
    const extra = new Set(mine.flatMap((g) => [...permissionsOfRole(g.role)]).filter((perm) => !used.has(perm) && !allowed.has(perm)));
    for (const perm of [...extra].sort()) problems.beyondAllowance.push(`${name}: ${perm}`);
  }
  return problems;
}

const noProblems: ContractProblems = { uncovered: [], unneeded: [], overScoped: [], beyondAllowance: [], unknownPrincipals: [] };

describe('permissions contract against the Terraform', () => {
  let configs: Record<ModuleKey, HclConfig>;
  beforeAll(async () => {
    configs = await loadAll();
    addCustomRoles(configs);
  });

  it.each(modes)('provisioning = %s: the grants cover every operation, each grant is needed, nothing beyond the allowance', (mode) => {
    expect(contractProblems(grantsOf(configs, mode), mode)).toEqual(noProblems);
  });

  it.each(modes)('provisioning = %s: removing any single grant uncovers an operation (the check is real)', (mode) => {
    const grants = grantsOf(configs, mode);
    expect(grants.length).toBeGreaterThan(15);
    for (const removed of grants) {
      const problems = contractProblems(grants.filter((g) => g !== removed), mode);
      expect(problems.uncovered.length, `without ${removed.address}`).toBeGreaterThan(0);
    }
  });

  it('the composer edits Pub/Sub only in composer mode, and never administers it (defect 9)', () => {
    const composerRoles = (mode: Mode): string[] => grantsOf(configs, mode).filter((g) => g.principal === 'composer').map((g) => g.role).sort();
    expect(composerRoles('composer')).toEqual(['roles/datastore.user', 'roles/pubsub.editor', 'roles/storage.legacyBucketReader', 'roles/storage.legacyObjectReader']);
    // Plus, for `replay --dead-letters`, publishing to the type's topic and consuming its dead-letter subscription (issue 19).
    expect(composerRoles('terraform')).toEqual(['roles/datastore.user', 'roles/pubsub.publisher', 'roles/pubsub.subscriber', 'roles/pubsub.viewer', 'roles/storage.legacyBucketReader', 'roles/storage.legacyObjectReader']);
  });

  it('an unused or broader grant is refused: BigQuery for the composer, padlock\'s Bigtable role beyond its table (defect 9)', () => {
    const grants = grantsOf(configs, 'composer');
    const withDataEditor = [...grants, { address: 'extra', principal: 'composer', role: 'roles/bigquery.dataEditor', resource: 'dataset:events' }];
    expect(contractProblems(withDataEditor, 'composer').unneeded).toEqual(['extra (roles/bigquery.dataEditor on dataset:events) serves no operation of composer']);
    const projectWide = grants.map((g) => (g.principal === 'padlock' && g.resource === 'bigtable-table:keychains' ? { ...g, resource: 'project' } : g));
    expect(contractProblems(projectWide, 'composer').overScoped).toEqual(['platform.google_bigtable_table_iam_member.padlock (roles/bigtable.user) is project-wide for bigtable-table:keychains']);
  });

  it('closed partitions stay sealed: the data bucket retains objects, the ETL may set a retention, and no principal may lift one (defect 4)', () => {
    expect(configs.platform.resource.google_storage_bucket!.data!.enable_object_retention).toBe(true);
    for (const mode of modes) {
      const grants = grantsOf(configs, mode);
      const etlOnData = grants.filter((g) => g.principal === 'etl' && g.resource === 'bucket:data').flatMap((g) => [...permissionsOfRole(g.role)]);
      expect(etlOnData).toContain('storage.objects.setRetention');
      const lifting = grants.filter((g) => permissionsOfRole(g.role).has('storage.objects.overrideUnlockedRetention')).map((g) => g.address);
      expect(lifting, mode).toEqual([]);
    }
    // The check is real: granting the ETL objectAdmin-like override on the data bucket is caught.
    roles.set('test:override', new Set(['storage.objects.overrideUnlockedRetention']));
    try {
      const withOverride = [...grantsOf(configs, 'terraform'), { address: 'extra', principal: 'etl', role: 'test:override', resource: 'bucket:data' }];
      expect(contractProblems(withOverride, 'terraform').unneeded).toEqual(['extra (test:override on bucket:data) serves no operation of etl']);
    } finally {
      roles.delete('test:override');
    }
  });

  it('every allowance is granted (no stale allowance)', () => {
    const granted = new Map<string, Set<string>>();
    for (const mode of modes) for (const g of grantsOf(configs, mode)) for (const perm of permissionsOfRole(g.role)) (granted.get(g.principal) ?? granted.set(g.principal, new Set()).get(g.principal)!).add(perm);
    for (const [name, p] of Object.entries(principals)) {
      const stale = (p.allowance ?? []).flatMap((a) => a.permissions).filter((perm) => !granted.get(name)?.has(perm));
      expect(stale, name).toEqual([]);
    }
  });
});
