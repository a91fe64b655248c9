import { describe, expect, it } from 'vitest';
import { canonicalForm, schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { isAppError } from '../lib/errors.ts';
import type { AvroSchemaJson, EventTypeRecord, EventTypeSettings, EventTypeStatus, ProvisioningState } from '../lib/registry/types.ts';
import { provisioningDefaults } from './defaults.ts';
import { sloHoursByPriority } from './monitoring.ts';
import type { PubsubResource } from './provisioning.ts';
import { exportTerraform, importBlocks, isExported, TERRAFORM_EXPORT_FILE, TERRAFORM_IMPORTS_FILE, toTerraformEventType } from './terraform-export.ts';

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
  it('exports shardsPerPeriod as shards_per_period', () => {
    expect(toTerraformEventType(record('plays', { settings: { shardsPerPeriod: 8 } })).shards_per_period).toBe(8);
  });

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
      shards_per_period: 1,
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
      alerts: {
        backlog_age: {
          metric: 'pubsub.googleapis.com/subscription/oldest_unacked_message_age',
          promql_metric: 'pubsub_googleapis_com:subscription_oldest_unacked_message_age',
          resource: 'events-plays-etl',
          threshold: 36 * 3600,
          duration_seconds: 300,
          severity: 'WARNING',
          working_hours_only: true,
          description: 'ETL backlog older than half the 72 h SLO',
        },
        dead_letters: {
          metric: 'pubsub.googleapis.com/subscription/num_undelivered_messages',
          promql_metric: 'pubsub_googleapis_com:subscription_num_undelivered_messages',
          resource: 'events-plays-dead-letter-sub',
          threshold: 0,
          duration_seconds: 60,
          severity: 'WARNING',
          working_hours_only: true,
          description: 'events dead-lettered by the ETL',
        },
        partition_close_lag: {
          metric: 'prometheus.googleapis.com/etl_partition_close_lag_seconds/gauge',
          promql_metric: 'etl_partition_close_lag_seconds',
          resource: 'plays',
          threshold: 48 * 3600,
          duration_seconds: 120,
          severity: 'WARNING',
          working_hours_only: true,
          description: 'oldest unclosed partition 48 h past its end (SLO 72 h)',
        },
        partition_lateness: {
          metric: 'logging.googleapis.com/user/etl_partitions_closed_at_deadline',
          promql_metric: 'logging_googleapis_com:user_etl_partitions_closed_at_deadline',
          resource: 'plays',
          threshold: 0,
          duration_seconds: 0,
          severity: 'WARNING',
          working_hours_only: true,
          description: 'partitions closed at the 72 h SLO deadline',
        },
        bigquery_loading_stopped: {
          metric: 'logging.googleapis.com/user/etl_bigquery_loading_stopped',
          promql_metric: 'logging_googleapis_com:user_etl_bigquery_loading_stopped',
          resource: 'plays',
          threshold: 0,
          duration_seconds: 0,
          severity: 'WARNING',
          working_hours_only: true,
          description: 'BigQuery loading stopped on a permanent failure (the worker group needs a restart once fixed)',
        },
      },
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

  it('import blocks address the module resource of each existing Pub/Sub resource, sorted, one per resource', () => {
    const existing = new Map<string, Set<PubsubResource>>([
      ['b_type', new Set(['etlSubscription'])],
      ['a_type', new Set(['topic', 'topicSchema'])],
    ]);
    const file = importBlocks('acme-prod', existing);
    expect(file.path).toBe(TERRAFORM_IMPORTS_FILE);
    const blocks = [...file.content.matchAll(/import \{\n {2}to = (.*)\n {2}id = "(.*)"\n\}/g)].map((m) => [m[1], m[2]]);
    expect(blocks).toEqual([
      ['module.event_type["a_type"].google_pubsub_schema.events[0]', 'projects/acme-prod/schemas/events-a_type-schema'],
      ['module.event_type["a_type"].google_pubsub_topic.events[0]', 'projects/acme-prod/topics/events-a_type'],
      ['module.event_type["b_type"].google_pubsub_subscription.etl[0]', 'projects/acme-prod/subscriptions/events-b_type-etl'],
    ]);
    expect(importBlocks('acme-prod', new Map()).content).not.toContain('import {');
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
