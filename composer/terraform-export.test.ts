import { describe, expect, it } from 'vitest';
import { canonicalForm, schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { isAppError } from '../lib/errors.ts';
import type { AvroSchemaJson, EventTypeRecord, EventTypeSettings, EventTypeStatus, ProvisioningState } from '../lib/registry/types.ts';
import { provisioningDefaults } from './defaults.ts';
import { sloHoursByPriority } from './monitoring.ts';
import { exportTerraform, isExported, TERRAFORM_EXPORT_FILE, toTerraformEventType } from './terraform-export.ts';

const v1: AvroSchemaJson = {
  type: 'record',
  name: 'Play',
  doc: 'A track was played',
  fields: [
    { name: 'user_id', type: 'string', semanticType: 'userId' },
    { name: 'track', type: 'string', semanticType: 'contentId' },
  ],
};
const v2: AvroSchemaJson = { ...v1, fields: [...(v1.fields as unknown[]), { name: 'ms', type: 'long', default: 0 }] };

function record(
  name: string,
  opts: { status?: EventTypeStatus; state?: ProvisioningState['state']; settings?: Partial<EventTypeSettings>; schemas?: AvroSchemaJson[] } = {},
): EventTypeRecord {
  const at = '2026-01-05T10:00:00.000Z';
  const schemas = opts.schemas ?? [v1];
  return {
    settings: {
      name,
      owner: 'music',
      description: 'Plays',
      priority: 'low',
      storage: ['gcs'],
      partitioning: 'hourly',
      retentionDays: 30,
      compatibility: 'BACKWARD_TRANSITIVE',
      ...opts.settings,
    },
    versions: schemas.map((schema, k) => ({ version: k + 1, fingerprint: schemaFingerprint(schema), schema, createdAt: at })),
    status: opts.status ?? 'active',
    provisioning: { state: opts.state ?? 'provisioned', resources: {}, updatedAt: at },
    revision: 1,
    createdAt: at,
    updatedAt: at,
  };
}

function exported(records: EventTypeRecord[]): Record<string, Record<string, unknown>> {
  const files = exportTerraform(records);
  expect(files).toHaveLength(1);
  expect(files[0]!.path).toBe(TERRAFORM_EXPORT_FILE);
  return (JSON.parse(files[0]!.content) as { event_types: Record<string, Record<string, unknown>> }).event_types;
}

describe('exportTerraform', () => {
  it('maps settings, the current schema and the composer defaults to the module input', () => {
    const t = toTerraformEventType(record('plays', { schemas: [v1, v2], settings: { storage: ['gcs', 'bigquery', 'gcs'] } }));
    expect(t).toEqual({
      name: 'plays',
      owner: 'music',
      description: 'Plays',
      priority: 'low',
      storage: ['bigquery', 'gcs'],
      partitioning: 'hourly',
      retention_days: 30,
      compatibility: 'BACKWARD_TRANSITIVE',
      schema_version: 2,
      schema_fingerprint: schemaFingerprint(v2),
      schema_definition: canonicalForm(v2),
      deprecated: false,
      slo_hours: sloHoursByPriority.low,
      ack_deadline_seconds: provisioningDefaults.ackDeadlineSeconds,
      message_retention_days: 7,
      dead_letter_max_attempts: provisioningDefaults.maxDeliveryAttempts,
      retry_minimum_backoff_seconds: provisioningDefaults.minimumBackoffSeconds,
      retry_maximum_backoff_seconds: provisioningDefaults.maximumBackoffSeconds,
    });
    // The canonical form drops annotations and docs: what Pub/Sub validates against.
    expect(t.schema_definition).not.toContain('semanticType');
    expect(t.schema_definition).not.toContain('doc');
  });

  it('exports active types and deprecated ones still draining (flagged); leaves out removed and deleted ones', () => {
    expect(isExported(record('a_active'))).toBe(true);
    const types = exported([
      record('d_active'),
      record('c_draining', { status: 'deprecated', state: 'draining' }),
      record('b_removed', { status: 'deprecated', state: 'removed' }),
      record('a_deleted', { status: 'deleted', state: 'removed' }),
    ]);
    expect(Object.keys(types)).toEqual(['c_draining', 'd_active']);
    expect(types.c_draining!.deprecated).toBe(true);
    expect(types.d_active!.deprecated).toBe(false);
  });

  it('is deterministic: sorted by name, same bytes whatever the input order', () => {
    const a = record('alpha_type');
    const b = record('beta_type', { settings: { priority: 'high' } });
    expect(exportTerraform([b, a])).toEqual(exportTerraform([a, b]));
    expect(exportTerraform([a, b])[0]!.content.endsWith('}\n')).toBe(true);
  });

  it('exports an empty map for an empty registry', () => {
    expect(exported([])).toEqual({});
  });

  it('refuses an invalid name, a type without schema and a duplicate with SPEC_INVALID', () => {
    const bad = [[record('Bad-Name')], [{ ...record('no_schema'), versions: [] }], [record('twice'), record('twice')]];
    for (const records of bad) {
      let error: unknown;
      try {
        exportTerraform(records);
      } catch (e) {
        error = e;
      }
      expect(isAppError(error) && error.code === 'SPEC_INVALID').toBe(true);
    }
  });
});
