/**
 * The rule that keeps personal data out of the lake in clear: a schema
 * version may be staged only if its delivered schema (what the transform
 * makes of it) declares no personal field. The identity transform delivers
 * the source schema, so a version with personal fields needs an encryption
 * transform (etl/encryption-transform.ts), whose delivered schema replaces
 * every personal leaf by encrypted bytes: a `bytes` type carrying the
 * `encryption` attribute (lib/privacy/delivered-schema.ts). The field keeps
 * its `semanticType`, so the check is on the leaf's type, not the annotation.
 */
import { personalFields, type PathStep } from '../lib/avro/annotations.ts';
import { nonNullBranches, parseSchema, type AvroNode } from '../lib/avro/schema.ts';
import { ENCRYPTION_ATTRIBUTE } from '../lib/privacy/delivered-schema.ts';
import { AppError, isAppError } from '../lib/errors.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';

/** Why a version may not be staged. */
export interface ClearPersonalData {
  fingerprint: string;
  version: number;
  /** Paths of the personal fields the delivered schema would hold in clear (schema metadata, no values). */
  fields: string[];
  message: string;
}

/**
 * Checks one version's delivered schema; undefined when it holds no personal
 * field in clear. A schema whose annotations cannot be read (e.g. a semantic
 * type the catalogue does not know) is refused too: nobody can tell.
 */
export function clearPersonalData(
  version: SchemaVersion,
  deliveredSchema: AvroSchemaJson,
  catalogue?: SemanticCatalogue,
): ClearPersonalData | undefined {
  let fields: string[];
  try {
    const personal = personalFields(deliveredSchema, catalogue);
    const root = parseSchema(deliveredSchema).root;
    fields = personal
      .filter((f) => {
        const leaves = leavesAt(root, f.steps);
        return leaves.length === 0 || !leaves.every(isEncrypted);
      })
      .map((f) => f.path);
  } catch (err) {
    if (!isAppError(err)) throw err;
    return {
      fingerprint: version.fingerprint,
      version: version.version,
      fields: [],
      message: `schema version ${version.version}: annotations cannot be checked for personal fields (${err.message})`,
    };
  }
  if (fields.length === 0) return undefined;
  return {
    fingerprint: version.fingerprint,
    version: version.version,
    fields,
    message: `schema version ${version.version} has personal fields (${fields.join(', ')}) and no encryption transform would encrypt them`,
  };
}

/** The error a refused pipeline is reported with. */
export function refusalError(eventType: string, problems: readonly ClearPersonalData[]): AppError {
  return new AppError('CONFIG_INVALID', {
    message: `Refusing the ETL pipeline of ${eventType}: ${problems.map((p) => p.message).join('; ')}. Configure field encryption (PADLOCK_URL) for this worker.`,
    details: { eventType, versions: problems.map((p) => ({ version: p.version, fingerprint: p.fingerprint, fields: p.fields })) },
  });
}

/** The non-null types reached from `node` along `steps` (union branches fan out). */
function leavesAt(node: AvroNode, steps: readonly PathStep[]): AvroNode[] {
  let current = nonNullBranches(node);
  for (const step of steps) {
    const next: AvroNode[] = [];
    for (const n of current) {
      if (step.kind === 'field' && n.kind === 'record') {
        const field = n.fields.find((f) => f.name === step.name);
        if (field !== undefined) next.push(...nonNullBranches(field.type));
      } else if (step.kind === 'items' && n.kind === 'array') next.push(...nonNullBranches(n.items));
      else if (step.kind === 'values' && n.kind === 'map') next.push(...nonNullBranches(n.values));
    }
    current = next;
  }
  return current;
}

function isEncrypted(leaf: AvroNode): boolean {
  return leaf.kind === 'primitive' && leaf.type === 'bytes' && Object.prototype.hasOwnProperty.call(leaf.props, ENCRYPTION_ATTRIBUTE);
}
