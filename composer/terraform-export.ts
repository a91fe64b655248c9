/**
 * The Terraform export: the registry's event types as inputs of the
 * `terraform/modules/event-type` module, so the declarative path (ops apply
 * Terraform) and the API path (the composer provisions) describe the same
 * resources, with the same names (lib/names.ts) and the same settings
 * (provisioning defaults, SLO by priority, the schema's canonical form).
 *
 * One file, `event_types.auto.tfvars.json`: `{ "event_types": { <name>: {…} } }`,
 * which a root configuration (terraform/examples/complete) loads automatically
 * and feeds to the module with `for_each`.
 *
 * Which types are exported: `active` ones; `deprecated` ones whose
 * provisioning has not reached `removed` yet, flagged `deprecated: true` (the
 * module keeps their subscription and worker group so the backlog drains, but
 * revokes the event service's right to publish); not `deleted` ones nor
 * deprecated ones already removed.
 *
 * With provisioning mode `terraform`, Terraform owns the per-type Pub/Sub
 * resources; whatever of them already exists (created by an earlier composer
 * in `composer` mode, or by hand) is adopted with an `import` block in
 * `event_types_imports.tf` rather than created again (409) by the module.
 */
import { canonicalForm } from '../lib/avro/fingerprint.ts';
import { AppError } from '../lib/errors.ts';
import { eventTypeNamePattern, promqlMetricName, resourceNames } from '../lib/names.ts';
import { currentVersion, type EventTypeRecord } from '../lib/registry/types.ts';
import type { Composer } from './composer.ts';
import { provisioningDefaults } from './defaults.ts';
import { monitoringFor, sloHoursByPriority, type AlertKind, type AlertSeverity } from './monitoring.ts';
import type { PubsubResource } from './provisioning.ts';

/** A file of the export, `path` relative to the output directory. */
export interface ExportedFile {
  path: string;
  content: string;
}

/**
 * One event type as the event-type module's `event_type` input
 * (terraform/modules/event-type/variables.tf). Keys are Terraform's snake_case.
 */
export interface TerraformEventType {
  name: string;
  owner: string;
  description: string;
  priority: string;
  storage: string[];
  partitioning: string;
  retention_days: number;
  compatibility: string;
  /** Shards per period (spec `shardsPerPeriod`, 1 when absent): how many workers can close one period in parallel. */
  shards_per_period: number;
  schema_version: number;
  schema_fingerprint: string;
  /** Parsing Canonical Form of the current schema: the topic's Pub/Sub AVRO schema. */
  schema_definition: string;
  deprecated: boolean;
  slo_hours: number;
  ack_deadline_seconds: number;
  message_retention_days: number;
  dead_letter_max_attempts: number;
  retry_minimum_backoff_seconds: number;
  retry_maximum_backoff_seconds: number;
  /** composer/monitoring.ts's alerts, by kind: the module renders each as an alert policy. */
  alerts: Partial<Record<AlertKind, TerraformAlert>>;
}

export interface TerraformAlert {
  /** Cloud Monitoring metric type… */
  metric: string;
  /** …and its PromQL name. */
  promql_metric: string;
  resource: string;
  threshold: number;
  duration_seconds: number;
  severity: AlertSeverity;
  working_hours_only: boolean;
  description: string;
}

/** File name of the export; `*.auto.tfvars.json` is loaded by Terraform without `-var-file`. */
export const TERRAFORM_EXPORT_FILE = 'event_types.auto.tfvars.json';

/** File of the import blocks (provisioning mode `terraform` only). */
export const TERRAFORM_IMPORTS_FILE = 'event_types_imports.tf';

/** Whether a record belongs in the export (see the module comment). */
export function isExported(record: EventTypeRecord): boolean {
  if (record.status === 'active') return true;
  return record.status === 'deprecated' && record.provisioning.state !== 'removed';
}

/** The module input of one event type. Throws AppError SPEC_INVALID if the record cannot be exported. */
export function toTerraformEventType(record: EventTypeRecord): TerraformEventType {
  const s = record.settings;
  if (!eventTypeNamePattern.test(s.name)) {
    throw new AppError('SPEC_INVALID', { message: `Event type name '${s.name}' is not valid`, details: { eventType: s.name } });
  }
  if (record.versions.length === 0) {
    throw new AppError('SPEC_INVALID', { message: `Event type '${s.name}' has no schema version`, details: { eventType: s.name } });
  }
  const version = currentVersion(record);
  return {
    name: s.name,
    owner: s.owner,
    description: s.description,
    priority: s.priority,
    storage: [...new Set(s.storage)].sort(),
    partitioning: s.partitioning,
    retention_days: s.retentionDays,
    compatibility: s.compatibility,
    shards_per_period: s.shardsPerPeriod ?? 1,
    schema_version: version.version,
    schema_fingerprint: version.fingerprint,
    schema_definition: canonicalForm(version.schema),
    deprecated: record.status === 'deprecated',
    slo_hours: sloHoursByPriority[s.priority],
    ack_deadline_seconds: provisioningDefaults.ackDeadlineSeconds,
    message_retention_days: provisioningDefaults.messageRetentionSeconds / 86400,
    dead_letter_max_attempts: provisioningDefaults.maxDeliveryAttempts,
    retry_minimum_backoff_seconds: provisioningDefaults.minimumBackoffSeconds,
    retry_maximum_backoff_seconds: provisioningDefaults.maximumBackoffSeconds,
    alerts: alertsOf(record),
  };
}

function alertsOf(record: EventTypeRecord): Partial<Record<AlertKind, TerraformAlert>> {
  const entries = monitoringFor(record.settings).alerts.map((a): [AlertKind, TerraformAlert] => [
    a.kind,
    {
      metric: a.metric,
      promql_metric: promqlMetricName(a.metric),
      resource: a.resource,
      threshold: a.threshold,
      duration_seconds: a.durationSeconds,
      severity: a.severity,
      working_hours_only: a.notify === 'working-hours',
      description: a.description,
    },
  ]);
  return Object.fromEntries(entries) as Partial<Record<AlertKind, TerraformAlert>>;
}

/** Address and import id of each Pub/Sub resource in terraform/modules/event-type (`[0]`: created with `count`). */
const moduleResources: Record<PubsubResource, { address: string; id: (project: string, type: string) => string }> = {
  topicSchema: { address: 'google_pubsub_schema.events[0]', id: (p, t) => `projects/${p}/schemas/${resourceNames.topicSchema(t)}` },
  topic: { address: 'google_pubsub_topic.events[0]', id: (p, t) => `projects/${p}/topics/${resourceNames.topic(t)}` },
  deadLetterTopic: { address: 'google_pubsub_topic.dead_letter[0]', id: (p, t) => `projects/${p}/topics/${resourceNames.deadLetterTopic(t)}` },
  etlSubscription: { address: 'google_pubsub_subscription.etl[0]', id: (p, t) => `projects/${p}/subscriptions/${resourceNames.etlSubscription(t)}` },
  deadLetterSubscription: { address: 'google_pubsub_subscription.dead_letter[0]', id: (p, t) => `projects/${p}/subscriptions/${resourceNames.deadLetterSubscription(t)}` },
};

/**
 * `import` blocks adopting the Pub/Sub resources that already exist, by type
 * (terraform/examples/complete calls the module `event_type`). An import of
 * a resource already in the state is a no-op, so re-exporting is safe. Pure.
 */
export function importBlocks(project: string, existing: ReadonlyMap<string, ReadonlySet<PubsubResource>>): ExportedFile {
  const blocks: string[] = [];
  for (const type of [...existing.keys()].sort()) {
    for (const resource of Object.keys(moduleResources) as PubsubResource[]) {
      if (!existing.get(type)?.has(resource)) continue;
      const r = moduleResources[resource];
      blocks.push(`import {\n  to = module.event_type["${type}"].${r.address}\n  id = "${r.id(project, type)}"\n}\n`);
    }
  }
  const header = '# Generated by `composer export terraform` (provisioning mode terraform): Pub/Sub\n# resources that already exist, adopted by Terraform instead of created again.\n';
  return { path: TERRAFORM_IMPORTS_FILE, content: blocks.length === 0 ? header : `${header}\n${blocks.join('\n')}` };
}

/**
 * The export of the composer's registry: the event types, their worker-group
 * sizing (composer/capacity/sizing.ts), and in `terraform` mode the import
 * blocks of what exists on Pub/Sub (observed read-only).
 */
export async function exportFromComposer(composer: Composer, projectId: string): Promise<ExportedFile[]> {
  const records = await composer.registry.listEventTypes();
  const { workerSizingFile } = await import('./capacity/sizing.ts');
  const files = [...exportTerraform(records), workerSizingFile(records.filter(isExported))];
  const provisioner = composer.provisioner;
  if (provisioner === undefined || provisioner.mode !== 'terraform') return files;
  const existing = new Map<string, Set<PubsubResource>>();
  for (const record of records.filter(isExported)) existing.set(record.settings.name, await provisioner.existingPubsubResources(record.settings.name));
  return [...files, importBlocks(projectId, existing)];
}

/**
 * The Terraform inputs of the registry's event types: one
 * `event_types.auto.tfvars.json`, types sorted by name, so re-exporting an
 * unchanged registry yields the same bytes. Pure.
 */
export function exportTerraform(records: EventTypeRecord[]): ExportedFile[] {
  const eventTypes: Record<string, TerraformEventType> = {};
  const exported = records.filter(isExported).map(toTerraformEventType);
  for (const t of exported.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    // Own properties only: `constructor` is a valid event-type name.
    if (Object.hasOwn(eventTypes, t.name)) {
      throw new AppError('SPEC_INVALID', { message: `Event type '${t.name}' appears twice`, details: { eventType: t.name } });
    }
    eventTypes[t.name] = t;
  }
  return [{ path: TERRAFORM_EXPORT_FILE, content: `${JSON.stringify({ event_types: eventTypes }, null, 2)}\n` }];
}
