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
 */
import { canonicalForm } from '../lib/avro/fingerprint.ts';
import { AppError } from '../lib/errors.ts';
import { eventTypeNamePattern } from '../lib/names.ts';
import { currentVersion, type EventTypeRecord } from '../lib/registry/types.ts';
import { provisioningDefaults } from './defaults.ts';
import { sloHoursByPriority } from './monitoring.ts';

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
}

/** File name of the export; `*.auto.tfvars.json` is loaded by Terraform without `-var-file`. */
export const TERRAFORM_EXPORT_FILE = 'event_types.auto.tfvars.json';

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
  };
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
