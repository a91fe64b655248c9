/**
 * What applying a spec does to the registry record, as a pure function: a new
 * type, changed settings, a new schema version (checked against the type's
 * compatibility mode), annotation-only edits, or nothing. Refusals are
 * AppErrors naming the field and the reason.
 */
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { AppError } from '../lib/errors.ts';
import type { EventTypeRecord, EventTypeSettings } from '../lib/registry/types.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';
import { checkMode, personalDowngrades, type CompatibilityReason } from './compatibility.ts';
import type { EventTypeSpec } from './spec.ts';

export interface RecordChange {
  /** `none`: the registry already holds this spec. */
  action: 'create' | 'update' | 'none';
  /** Human-readable list of what changes. */
  details: string[];
  /** The record to write (same as `existing` when `none`). */
  next: EventTypeRecord;
  /** Version number added, if any. */
  newVersion?: number;
}

const SETTINGS_KEYS: readonly (keyof EventTypeSettings)[] = ['owner', 'description', 'priority', 'storage', 'partitioning', 'retentionDays', 'compatibility', 'shardsPerPeriod', 'expectedEventsPerSecond'];

export function settingsOf(spec: EventTypeSpec): EventTypeSettings {
  const { schema: _schema, ...settings } = spec;
  return settings;
}

/**
 * The change applying `spec` makes to `existing`. Throws SCHEMA_INCOMPATIBLE
 * (details.reasons) for a schema change the mode forbids or a personal field
 * made non-personal without `force`; EVENT_TYPE_DEPRECATED for a deprecated type.
 */
export function planRecordChange(
  existing: EventTypeRecord | undefined,
  spec: EventTypeSpec,
  options: { catalogue: SemanticCatalogue; force?: boolean; now: Date },
): RecordChange {
  const at = options.now.toISOString();
  const fingerprint = schemaFingerprint(spec.schema);
  if (existing === undefined) {
    const next: EventTypeRecord = {
      settings: settingsOf(spec),
      versions: [{ version: 1, fingerprint, schema: spec.schema, createdAt: at }],
      status: 'active',
      provisioning: { state: 'pending', resources: {}, updatedAt: at },
      revision: 0,
      createdAt: at,
      updatedAt: at,
    };
    return { action: 'create', details: [`register event type ${spec.name} with schema version 1 (${fingerprint})`], next, newVersion: 1 };
  }
  if (existing.status !== 'active') {
    throw new AppError('EVENT_TYPE_DEPRECATED', { message: `event type ${spec.name} is ${existing.status}; it cannot be changed`, details: { eventType: spec.name } });
  }
  const details: string[] = [];
  const next: EventTypeRecord = structuredClone(existing);
  for (const key of SETTINGS_KEYS) {
    const before = JSON.stringify(existing.settings[key]);
    const after = JSON.stringify(spec[key]);
    if (before !== after) details.push(`${key}: ${before} → ${after}`);
  }
  next.settings = settingsOf(spec);

  const current = existing.versions[existing.versions.length - 1];
  let newVersion: number | undefined;
  const downgrades = current === undefined ? [] : personalDowngrades(current.schema, spec.schema, options.catalogue);
  if (downgrades.length > 0 && options.force !== true) throw incompatible(spec.name, downgrades, 'a personal field would lose its protection');

  if (current !== undefined && current.fingerprint === fingerprint) {
    if (JSON.stringify(current.schema) !== JSON.stringify(spec.schema)) {
      // Same canonical form (same bytes on the wire): annotations or docs changed; keep one version per fingerprint.
      const last = next.versions[next.versions.length - 1];
      if (last !== undefined) last.schema = spec.schema;
      details.push(`schema version ${current.version}: annotations or docs updated (fingerprint unchanged)`);
    }
  } else {
    const result = checkMode(spec.compatibility, spec.schema, existing.versions.map((v) => v.schema));
    if (!result.compatible) throw incompatible(spec.name, result.reasons, `not ${spec.compatibility} compatible`);
    newVersion = existing.versions.length + 1;
    next.versions.push({ version: newVersion, fingerprint, schema: spec.schema, createdAt: at });
    details.push(`add schema version ${newVersion} (${fingerprint})`);
  }
  if (details.length === 0) return { action: 'none', details, next: existing };
  next.updatedAt = at;
  return { action: 'update', details, next, ...(newVersion === undefined ? {} : { newVersion }) };
}

function incompatible(eventType: string, reasons: CompatibilityReason[], summary: string): AppError {
  const listed = reasons.map((r) => `${r.path}: ${r.message}${r.version === undefined ? '' : ` (vs version ${r.version}, ${r.direction})`}`);
  return new AppError('SCHEMA_INCOMPATIBLE', {
    message: `schema change for ${eventType} refused, ${summary}: ${listed.join('; ')}`,
    details: { eventType, reasons },
  });
}
