/**
 * Registry records for tests and benchmarks of the event service: a type with
 * given schema versions, as the composer would have registered it.
 */
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import type { AvroSchemaJson, EventTypeRecord, EventTypeStatus } from '../../lib/registry/types.ts';

/** A registry record for `name` whose versions are `schemas` (oldest first). */
export function eventTypeRecord(name: string, schemas: AvroSchemaJson[], status: EventTypeStatus = 'active'): EventTypeRecord {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    settings: {
      name,
      owner: 'team-test',
      description: `test type ${name}`,
      priority: 'normal',
      storage: ['gcs'],
      partitioning: 'hourly',
      retentionDays: 30,
      compatibility: 'BACKWARD_TRANSITIVE',
    },
    versions: schemas.map((schema, i) => ({ version: i + 1, fingerprint: schemaFingerprint(schema), schema, createdAt: at })),
    status,
    provisioning: { state: 'provisioned', resources: {}, updatedAt: at },
    revision: 0,
    createdAt: at,
    updatedAt: at,
  };
}
