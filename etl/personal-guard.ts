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
    const named = namedTypes(deliveredSchema);
    fields = personalFields(deliveredSchema, catalogue)
      .filter((f) => {
        const leaves = leavesAt(deliveredSchema, f.steps, named);
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

type Named = Map<string, unknown>;

/** Every named type of a schema by name and full name (to follow references). */
function namedTypes(schema: unknown, named: Named = new Map(), namespace = ''): Named {
  if (Array.isArray(schema)) {
    for (const b of schema) namedTypes(b, named, namespace);
    return named;
  }
  if (typeof schema !== 'object' || schema === null) return named;
  const obj = schema as Record<string, unknown>;
  let ns = namespace;
  if (typeof obj.name === 'string' && (obj.type === 'record' || obj.type === 'enum' || obj.type === 'fixed' || obj.type === 'error')) {
    ns = typeof obj.namespace === 'string' ? obj.namespace : obj.name.includes('.') ? obj.name.slice(0, obj.name.lastIndexOf('.')) : namespace;
    const short = obj.name.includes('.') ? obj.name.slice(obj.name.lastIndexOf('.') + 1) : obj.name;
    named.set(short, obj);
    named.set(ns === '' ? short : `${ns}.${short}`, obj);
  }
  if (Array.isArray(obj.fields)) for (const f of obj.fields as { type?: unknown }[]) namedTypes(f.type, named, ns);
  if (obj.items !== undefined) namedTypes(obj.items, named, ns);
  if (obj.values !== undefined) namedTypes(obj.values, named, ns);
  if (typeof obj.type === 'object') namedTypes(obj.type, named, ns);
  return named;
}

/** The non-null types a schema may take: union branches, named references followed, `{type: X}` wrappers opened. */
function branches(schema: unknown, named: Named): unknown[] {
  if (Array.isArray(schema)) return schema.flatMap((b) => branches(b, named));
  if (schema === 'null') return [];
  if (typeof schema === 'string') return named.has(schema) ? [named.get(schema)] : [schema];
  if (typeof schema === 'object' && schema !== null) {
    const obj = schema as Record<string, unknown>;
    if (typeof obj.type === 'object' || (typeof obj.type === 'string' && named.has(obj.type))) return branches(obj.type, named);
  }
  return [schema];
}

/** The leaf types reached from `schema` along `steps`. */
function leavesAt(schema: unknown, steps: readonly PathStep[], named: Named): unknown[] {
  let current = branches(schema, named);
  for (const step of steps) {
    const next: unknown[] = [];
    for (const node of current) {
      if (typeof node !== 'object' || node === null) continue;
      const obj = node as Record<string, unknown>;
      if (step.kind === 'field' && Array.isArray(obj.fields)) {
        const field = (obj.fields as { name?: string; type?: unknown }[]).find((f) => f.name === step.name);
        if (field !== undefined) next.push(...branches(field.type, named));
      } else if (step.kind === 'items' && obj.type === 'array') next.push(...branches(obj.items, named));
      else if (step.kind === 'values' && obj.type === 'map') next.push(...branches(obj.values, named));
    }
    current = next;
  }
  return current;
}

function isEncrypted(leaf: unknown): boolean {
  return typeof leaf === 'object' && leaf !== null && (leaf as Record<string, unknown>).type === 'bytes' && ENCRYPTION_ATTRIBUTE in leaf;
}
