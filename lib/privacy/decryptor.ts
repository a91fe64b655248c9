/**
 * The consumer side of field encryption: decrypts the personal values of
 * delivered records, as far as the calling service is entitled. The delivered
 * schema (from the partition manifest) says where the encrypted values are and
 * how each was made (`encryption` attribute, lib/privacy/delivered-schema.ts).
 *
 * A value that cannot be decrypted stays encrypted and is marked:
 * `{"$encrypted": "<base64 ciphertext>", "reason": …}` with reason
 * - `not entitled`: padlock refused this service the key context (403);
 * - `key deleted`: the subject was deleted, or opted out of the category;
 * - `key mismatch`: padlock gave a key with another id (e.g. another context);
 * - `tampered`: the key is right but authentication failed (value moved to
 *   another field, element or event type, or altered);
 * - `no subject`: the record has no usable subject id.
 *
 * A value the ETL had no key for (`null`, or an empty `bytes` as an array
 * item) is read as `null`.
 */
import { nonNullBranches, parseSchema, SchemaError, typeName, type AvroNode, type RecordNode } from '../avro/schema.ts';
import { AppError, isAppError } from '../errors.ts';
import { associatedData, decrypt, keyIdOf, type AeadKey } from '../crypto/aead.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import { SUBJECT_SEMANTIC_TYPE } from '../semantic-types.ts';
import { ENCRYPTION_ATTRIBUTE, ENCRYPTION_FORMAT, plaintextDecoder, type EncryptionAnnotation } from './delivered-schema.ts';
import { fieldStep, itemStep, valueStep } from './field-path.ts';
import { dedupeRequests, type KeyRequest, type KeyResult, type KeySource } from './keys.ts';
import { subjectOf } from './record-encryptor.ts';

export type UnreadableReason = 'not entitled' | 'key deleted' | 'key mismatch' | 'tampered' | 'no subject';

/** What an undecryptable value is replaced with. */
export interface EncryptedMarker {
  $encrypted: string;
  reason: UnreadableReason;
}

export interface DecryptionStats {
  decrypted: number;
  /** Undecryptable values by reason. */
  unreadable: Partial<Record<UnreadableReason, number>>;
}

export interface DecryptorOptions {
  /** A padlock client authenticated as the consumer service. */
  keys: KeySource;
  /** Overrides the key context written in the delivered schema. */
  context?: string;
}

interface EncryptedNode {
  kind: 'encrypted';
  category: string;
  context: string;
  decode(plaintext: Buffer): unknown;
}
type DecryptNode =
  | EncryptedNode
  | { kind: 'record'; fields: { name: string; node: DecryptNode }[] }
  | { kind: 'array'; items: DecryptNode }
  | { kind: 'map'; values: DecryptNode }
  | { kind: 'union'; single: boolean; branches: { name: string; node: DecryptNode }[] };

interface DecryptionPlan {
  root: DecryptNode | undefined;
  subjectPath: string[] | undefined;
  /** Distinct (context, category) pairs of the encrypted values. */
  needs: { context: string; category: string }[];
}

/** Decrypts delivered records for one consumer service. */
export class RecordDecryptor {
  private readonly plans = new Map<string, DecryptionPlan>();

  constructor(private readonly options: DecryptorOptions) {}

  /**
   * Decrypts the payloads (decoded with `deliveredSchema`) of one event type,
   * in order. Padlock failures other than a refused context propagate.
   */
  async decryptBatch(eventType: string, deliveredSchema: AvroSchemaJson, payloads: readonly unknown[]): Promise<{ records: unknown[]; stats: DecryptionStats }> {
    const plan = this.plan(deliveredSchema);
    const stats: DecryptionStats = { decrypted: 0, unreadable: {} };
    if (plan.root === undefined) return { records: [...payloads], stats };
    const subjects = payloads.map((p) => subjectOf(p, plan.subjectPath));
    const keys = await this.fetchKeys(plan, subjects);
    const records = payloads.map((payload, i) => {
      const subject = subjects[i];
      const keyFor = (context: string, category: string): KeyResult | 'not entitled' | undefined => {
        if (subject === undefined) return undefined;
        return keys.get(`${context}\u0000${category}\u0000${subject}`);
      };
      return decryptValue(plan.root!, payload, '', { eventType, keyFor, stats });
    });
    return { records, stats };
  }

  private plan(deliveredSchema: AvroSchemaJson): DecryptionPlan {
    const cacheKey = JSON.stringify(deliveredSchema);
    let plan = this.plans.get(cacheKey);
    if (plan === undefined) {
      plan = compileDecryptionPlan(deliveredSchema, this.options.context);
      this.plans.set(cacheKey, plan);
    }
    return plan;
  }

  private async fetchKeys(plan: DecryptionPlan, subjects: (string | undefined)[]): Promise<Map<string, KeyResult | 'not entitled'>> {
    const out = new Map<string, KeyResult | 'not entitled'>();
    const users = [...new Set(subjects.filter((s): s is string => s !== undefined))];
    const contexts = [...new Set(plan.needs.map((n) => n.context))];
    for (const context of contexts) {
      const requests: KeyRequest[] = [];
      for (const { category } of plan.needs.filter((n) => n.context === context)) {
        for (const userId of users) requests.push({ userId, category });
      }
      if (requests.length === 0) continue;
      const { unique, keyOf } = dedupeRequests(requests);
      let results: (KeyResult | 'not entitled')[];
      try {
        results = await this.options.keys.getKeys(unique, { context });
      } catch (err) {
        if (!isAppError(err) || (err.code !== 'CONTEXT_FORBIDDEN' && err.code !== 'FORBIDDEN')) throw err;
        results = unique.map(() => 'not entitled' as const);
      }
      unique.forEach((request, i) => out.set(`${context}\u0000${keyOf(request)}`, results[i]!));
    }
    return out;
  }
}

/** Where the encrypted values of a delivered schema are. */
function compileDecryptionPlan(schema: AvroSchemaJson, contextOverride: string | undefined): DecryptionPlan {
  const needs = new Map<string, { context: string; category: string }>();
  // Plan node of each record (a placeholder while it is being walked; undefined if it holds nothing encrypted).
  const records = new Map<RecordNode, DecryptNode | undefined>();
  let subjectPath: string[] | undefined;

  const walk = (node: AvroNode, fieldPath: string[], annotation: string | undefined): DecryptNode | undefined => {
    if (annotation === SUBJECT_SEMANTIC_TYPE && subjectPath === undefined) subjectPath = fieldPath;
    switch (node.kind) {
      case 'union': {
        const branches: { name: string; node: DecryptNode }[] = [];
        for (const b of node.branches) {
          const child = walk(b, fieldPath, annotation);
          if (child !== undefined) branches.push({ name: typeName(b), node: child });
        }
        const single = nonNullBranches(node).length === 1;
        if (branches.length === 1 && branches[0]!.node.kind === 'encrypted' && single) return branches[0]!.node;
        return branches.length === 0 ? undefined : { kind: 'union', single, branches };
      }
      case 'primitive': {
        const enc = node.props[ENCRYPTION_ATTRIBUTE];
        return node.type === 'bytes' && typeof enc === 'object' && enc !== null ? encryptedNode(enc as EncryptionAnnotation) : undefined;
      }
      case 'record': {
        if (records.has(node)) return records.get(node);
        const plan: { kind: 'record'; fields: { name: string; node: DecryptNode }[] } = { kind: 'record', fields: [] };
        records.set(node, plan);
        for (const f of node.fields) {
          const child = walk(f.type, [...fieldPath, f.name], typeof f.props.semanticType === 'string' ? f.props.semanticType : undefined);
          if (child !== undefined) plan.fields.push({ name: f.name, node: child });
        }
        const result = plan.fields.length === 0 ? undefined : plan;
        records.set(node, result);
        return result;
      }
      case 'array': {
        const items = walk(node.items, fieldPath, annotation);
        return items === undefined ? undefined : { kind: 'array', items };
      }
      case 'map': {
        const values = walk(node.values, fieldPath, annotation);
        return values === undefined ? undefined : { kind: 'map', values };
      }
      default:
        return undefined;
    }
  };

  const encryptedNode = (a: EncryptionAnnotation): EncryptedNode => {
    if (a.format !== ENCRYPTION_FORMAT) {
      throw new AppError('SCHEMA_INVALID', { message: `Unsupported encryption format '${String(a.format)}' (this reader knows ${ENCRYPTION_FORMAT})` });
    }
    const context = contextOverride ?? a.keyContext;
    needs.set(`${context}\u0000${a.category}`, { context, category: a.category });
    return { kind: 'encrypted', category: a.category, context, decode: plaintextDecoder(a.plaintext, a.sourceType) };
  };

  let model: AvroNode;
  try {
    model = parseSchema(schema).root;
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw new AppError('SCHEMA_INVALID', { message: `The delivered schema is not valid Avro: ${err.message}` });
  }
  const root = walk(model, [], undefined);
  return { root, subjectPath, needs: [...needs.values()] };
}

interface DecryptContext {
  eventType: string;
  keyFor(context: string, category: string): KeyResult | 'not entitled' | undefined;
  stats: DecryptionStats;
}

function mark(ciphertext: Buffer, reason: UnreadableReason, stats: DecryptionStats): EncryptedMarker {
  stats.unreadable[reason] = (stats.unreadable[reason] ?? 0) + 1;
  return { $encrypted: ciphertext.toString('base64'), reason };
}

function decryptLeaf(node: EncryptedNode, value: Buffer, path: string, ctx: DecryptContext): unknown {
  const result = ctx.keyFor(node.context, node.category);
  if (result === undefined) return mark(value, 'no subject', ctx.stats);
  if (result === 'not entitled') return mark(value, 'not entitled', ctx.stats);
  if (result.status !== 'found') return mark(value, 'key deleted', ctx.stats);
  const key: AeadKey = result.key;
  let keyId: number;
  try {
    keyId = keyIdOf(value);
  } catch {
    return mark(value, 'tampered', ctx.stats);
  }
  if (keyId !== key.keyId >>> 0) return mark(value, 'key mismatch', ctx.stats);
  try {
    const plaintext = decrypt(key, value, associatedData(ctx.eventType, path));
    ctx.stats.decrypted++;
    return node.decode(plaintext);
  } catch {
    return mark(value, 'tampered', ctx.stats);
  }
}

function decryptValue(node: DecryptNode, value: unknown, path: string, ctx: DecryptContext): unknown {
  if (value === null || value === undefined) return value ?? null;
  switch (node.kind) {
    case 'encrypted':
      if (!Buffer.isBuffer(value)) return value;
      // Empty: an array item the ETL had no key for (no ciphertext is empty), read as null.
      return value.length === 0 ? null : decryptLeaf(node, value, path, ctx);
    case 'record': {
      const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      for (const f of node.fields) out[f.name] = decryptValue(f.node, out[f.name], fieldStep(path, f.name), ctx);
      return out;
    }
    case 'array':
      return (value as unknown[]).map((v, i) => decryptValue(node.items, v, itemStep(path, i), ctx));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = decryptValue(node.values, v, valueStep(path, k), ctx);
      return out;
    }
    case 'union': {
      const first = node.branches[0];
      if (node.single && first !== undefined) return decryptValue(first.node, value, path, ctx);
      if (typeof value === 'object' && !Buffer.isBuffer(value) && !Array.isArray(value)) {
        const keys = Object.keys(value);
        const wrapped = keys.length === 1 ? node.branches.find((b) => b.name === keys[0]) : undefined;
        if (wrapped !== undefined) return { [wrapped.name]: decryptValue(wrapped.node, (value as Record<string, unknown>)[wrapped.name], path, ctx) };
        // Unwrapped (avsc 'auto'): an object can only be the one record branch.
        const records = node.branches.filter((b) => b.node.kind === 'record');
        if (records.length === 1) return decryptValue(records[0]!.node, value, path, ctx);
      }
      return value;
    }
  }
}
