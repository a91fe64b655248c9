/**
 * The ETL's field-encryption transform (DESIGN.md §3): the `RecordTransform`
 * that delivers personal fields encrypted under each subject's key, fetched
 * from padlock once per batch (create-if-absent). Padlock unavailable, or
 * refusing the ETL, throws a retryable AppError: the batch is not acked and
 * nothing is delivered in clear. Stats per record: `encryptedFields`,
 * `nulledFields` (keys deleted or no subject), summed into the manifest.
 *
 * A record whose subject is not a user id (lib/user-id.ts: a lone surrogate,
 * too long, empty) can never get a key: it is `rejected` alone, with the
 * reason (never the id itself), and the rest of its batch is encrypted. Should
 * padlock still refuse a batch's user ids (400), or answer that one user's
 * stored key does not unwrap (KEY_UNREADABLE), each record is tried alone so
 * only the refused ones are rejected.
 */
import { decodeExactDatum } from '../lib/avro/skip.ts';
import { isAppError, type ErrorCode } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';
import type { KeySource } from '../lib/privacy/keys.ts';
import { RecordEncryptor, type RecordToEncrypt, type ScannedRecord } from '../lib/privacy/record-encryptor.ts';
import { userIdProblem } from '../lib/user-id.ts';
import { notOneDatum, type EncodedInput, type EncodedOutput, type RecordTransform, type TransformInput, type TransformOutput } from './transform.ts';

export interface EncryptionTransformOptions {
  /** A padlock client (lib/padlock-client) authenticated as the ETL's service. */
  keys: KeySource;
  /** Padlock key context to encrypt under; `events` if absent (see lib/privacy/README.md). */
  keyContext?: string;
  catalogue?: SemanticCatalogue;
  logger?: Logger;
}

/** The transform that encrypts personal fields. */
export function createEncryptionTransform(options: EncryptionTransformOptions): RecordTransform {
  const encryptor = new RecordEncryptor(options);

  /** Why a subject value can never be looked up in padlock, or undefined. */
  const subjectProblem = (subject: unknown, subjectPath: readonly string[] | undefined): string | undefined => {
    // Not a string (absent, null, a number): the encryptor's own rules apply.
    if (subjectPath === undefined || typeof subject !== 'string') return undefined;
    const problem = userIdProblem(subject);
    return problem === undefined ? undefined : `subject ${subjectPath.join('.')}: ${problem}`;
  };
  const recordProblem = (r: TransformInput): string | undefined => {
    const plan = encryptor.plan(r.version.schema, r.version.fingerprint);
    if (plan.root === undefined || plan.subjectPath === undefined) return undefined;
    return subjectProblem(valueAt(r.record, plan.subjectPath), plan.subjectPath);
  };

  /** Encrypts `items`; if padlock refuses one of their subjects, each alone, so one refused subject does not hold back the rest. */
  const encryptIsolating = async <T, R>(items: T[], encrypt: (items: T[]) => Promise<R[]>): Promise<(R | Rejection)[]> => {
    try {
      return await encrypt(items);
    } catch (err) {
      const refused = subjectRefusalOf(err);
      if (refused === undefined) throw err;
      if (items.length === 1) return [refused];
      const out: (R | Rejection)[] = [];
      for (const item of items) out.push(...(await encryptIsolating([item], encrypt)));
      return out;
    }
  };

  const logRejected = (eventType: string, outputs: readonly { rejected?: unknown }[]): void => {
    const rejected = outputs.filter((o) => o.rejected !== undefined).length;
    if (rejected > 0) options.logger?.warn('records with an invalid subject rejected', { eventType, rejected });
  };

  /** The object path for records whose schema the byte scan does not cover: decode, encrypt, re-encode. */
  const encodeViaObjects = async (eventType: string, records: EncodedInput[]): Promise<EncodedOutput[]> => {
    const outputs = new Array<EncodedOutput>(records.length);
    const inputs: TransformInput[] = [];
    const positions: number[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const decoded = decodeExactDatum(r.writerType, r.bytes);
      if (decoded === undefined) outputs[i] = { rejected: notOneDatum };
      else {
        inputs.push({ record: decoded.value, version: r.version, eventId: r.eventId });
        positions.push(i);
      }
    }
    const encrypted = await transformBatch(eventType, inputs);
    for (let k = 0; k < positions.length; k++) {
      const o = encrypted[k]!;
      const i = positions[k]!;
      outputs[i] = o.rejected !== undefined ? { rejected: o.rejected } : { payload: records[i]!.deliveredType.toBuffer(o.record), ...(o.stats ? { stats: o.stats } : {}) };
    }
    return outputs;
  };

  const transformBatch = async (eventType: string, records: TransformInput[]): Promise<TransformOutput[]> => {
    const outputs = new Array<TransformOutput>(records.length);
    const items: RecordToEncrypt[] = [];
    const positions: number[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const problem = recordProblem(r);
      if (problem !== undefined) {
        outputs[i] = { record: null, rejected: { code: 'EVENT_INVALID', reason: problem } };
        continue;
      }
      items.push({ record: r.record, schema: r.version.schema, fingerprint: r.version.fingerprint });
      positions.push(i);
    }
    const encrypted = items.length === 0 ? [] : await encryptIsolating(items, (batch) => encryptor.encryptBatch(eventType, batch));
    for (let k = 0; k < positions.length; k++) {
      const e = encrypted[k]!;
      outputs[positions[k]!] =
        'reason' in e ? { record: null, rejected: e } : { record: e.record, stats: { encryptedFields: e.stats.encryptedFields, nulledFields: e.stats.nulledFields } };
    }
    logRejected(eventType, outputs);
    return outputs;
  };

  const transformEncodedBatch = async (eventType: string, records: EncodedInput[]): Promise<EncodedOutput[]> => {
    const outputs = new Array<EncodedOutput>(records.length);
    const items: ScannedRecord[] = [];
    const positions: number[] = [];
    const viaObjects: number[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      let scanned: ScannedRecord | undefined;
      try {
        scanned = encryptor.scanEncoded(eventType, { bytes: r.bytes, schema: r.version.schema, fingerprint: r.version.fingerprint });
      } catch {
        outputs[i] = { rejected: notOneDatum };
        continue;
      }
      if (scanned === undefined) {
        viaObjects.push(i);
        continue;
      }
      const problem = scanned.plan.root === undefined ? undefined : subjectProblem(scanned.scanned.subject, scanned.plan.subjectPath);
      if (problem !== undefined) {
        outputs[i] = { rejected: { code: 'EVENT_INVALID', reason: problem } };
        continue;
      }
      items.push(scanned);
      positions.push(i);
    }
    const encrypted = items.length === 0 ? [] : await encryptIsolating(items, (batch) => encryptor.encryptScanned(eventType, batch));
    for (let k = 0; k < positions.length; k++) {
      const e = encrypted[k]!;
      // An encrypted record is already `{ payload, stats }`: handed on as it is.
      outputs[positions[k]!] = 'reason' in e ? { rejected: e } : (e as unknown as EncodedOutput);
    }
    logRejected(eventType, outputs);
    if (viaObjects.length > 0) {
      const slow = await encodeViaObjects(eventType, viaObjects.map((i) => records[i]!));
      viaObjects.forEach((i, k) => (outputs[i] = slow[k]!));
    }
    return outputs;
  };

  return {
    deliveredSchema: (source: AvroSchemaJson): AvroSchemaJson => encryptor.deliveredSchema(source),
    transformBatch,
    transformEncodedBatch,
    // The byte scan walks each message whole and throws unless it is exactly one datum; the object path decodes exactly.
    checksEncoded: true,
  };
}

/** The value at a record path (field names), or undefined. */
function valueAt(record: unknown, path: readonly string[]): unknown {
  let v: unknown = record;
  for (const name of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, name)) return undefined;
    v = (v as Record<string, unknown>)[name];
  }
  return v;
}

interface Rejection {
  code: ErrorCode;
  reason: string;
}

/**
 * Why padlock refused one subject, if `err` says so: a 400 on a user id, or
 * KEY_UNREADABLE (that user's stored key does not unwrap). The encryptor wraps
 * every padlock failure in a retryable error, keeping it as `cause`. The
 * reason keeps padlock's message without its field name (never the id).
 */
function subjectRefusalOf(err: unknown): Rejection | undefined {
  const cause = isAppError(err) ? err.cause : undefined;
  if (!isAppError(cause)) return undefined;
  const field = cause.details?.field;
  if (typeof field !== 'string' || !/userId/i.test(field)) return undefined;
  const message = cause.message.replace(/^[^:]*:\s*/, '');
  if (cause.code === 'BODY_INVALID') return { code: 'EVENT_INVALID', reason: `subject refused by padlock: ${message}` };
  if (cause.code === 'KEY_UNREADABLE') return { code: 'KEY_UNREADABLE', reason: `subject's key cannot be served by padlock: ${message}` };
  return undefined;
}
