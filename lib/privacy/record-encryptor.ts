/**
 * Encrypts the personal values of decoded records (DESIGN.md §3): each value
 * with AES-256-GCM in Tink's wire format under the subject's derived key for
 * the value's data category, bound to its event type and concrete field path
 * (lib/privacy/field-path.ts). One padlock multi-get per batch, with
 * create-if-absent; a value whose key is deleted (or whose record has no
 * subject) becomes `null` (an empty `bytes` as an array item: see
 * delivered-schema.ts) and is counted — never written in clear.
 */
import type avro from 'avsc';
import { isUserId } from '../user-id.ts';
import { avroType } from '../avro/long.ts';
import { longLength, writeLong } from '../avro/binary.ts';
import { AppError, isAppError } from '../errors.ts';
import { associatedData, ciphertextLength, encrypt, encryptInto, sealingBatch, type AeadKey } from '../crypto/aead.ts';
import type { Logger } from '../logger.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import type { SemanticCatalogue } from '../semantic-types.ts';
import { compileEncryptionPlan, DEFAULT_KEY_CONTEXT, type EncryptionPlan, type PlanNode } from './delivered-schema.ts';
import { fieldStep, itemStep, valueStep } from './field-path.ts';
import { compileScanner, UnsupportedScan, type ScannedDatum } from './encoded-scan.ts';
import type { KeyRequest, KeyResult, KeySource } from './keys.ts';

export interface RecordEncryptorOptions {
  keys: KeySource;
  /** Padlock key context to encrypt under (`DEFAULT_KEY_CONTEXT` if absent); entitled consumers share it. */
  keyContext?: string;
  catalogue?: SemanticCatalogue;
  logger?: Logger;
}

/** One decoded record to encrypt, with its writer schema. */
export interface RecordToEncrypt {
  record: unknown;
  /** The writer (source) schema, annotations included. */
  schema: AvroSchemaJson;
  /** The writer schema's fingerprint: plans are cached under it. */
  fingerprint: string;
}

/** Counters of one record, summed into the partition manifest by the ETL. */
export interface EncryptionStats {
  /** Personal values encrypted. */
  encryptedFields: number;
  /** Personal values written as null (empty bytes for an array item): key deleted (user or category), or no usable subject. */
  nulledFields: number;
}

export interface EncryptedRecord {
  /** The record in the delivered schema's shape (plain objects, Buffers for ciphertexts). */
  record: unknown;
  stats: EncryptionStats;
}

/** One writer-schema datum (Avro binary) to encrypt. */
export interface EncodedToEncrypt {
  /** Avro binary of one record of `schema`. */
  bytes: Buffer;
  schema: AvroSchemaJson;
  fingerprint: string;
}

/** A datum scanned by `scanEncoded`, ready for `encryptScanned`. */
export interface ScannedRecord {
  bytes: Buffer;
  plan: EncryptionPlan;
  scanned: ScannedDatum;
}

export interface EncryptedEncoded {
  /** Avro binary of the record in the delivered schema. */
  payload: Buffer;
  stats: EncryptionStats;
}

export class RecordEncryptor {
  private readonly plans = new Map<string, EncryptionPlan>();
  /** Byte scanners per event type, then writer fingerprint (null: the schema needs the object path). */
  private readonly scanners = new Map<string, Map<string, ((buf: Buffer) => ScannedDatum) | null>>();
  private scannerCount = 0;
  private readonly plansBySource = new WeakMap<AvroSchemaJson, EncryptionPlan>();
  private readonly adCaches = new Map<string, AdCache>();
  private readonly keyContext: string;

  constructor(private readonly options: RecordEncryptorOptions) {
    this.keyContext = options.keyContext ?? DEFAULT_KEY_CONTEXT;
  }

  /** The delivered schema of a source schema, for this encryptor's key context. */
  deliveredSchema(source: AvroSchemaJson): AvroSchemaJson {
    return this.planOfSource(source).delivered;
  }

  /** The (cached) plan of a writer schema: compiled once per schema version. */
  plan(schema: AvroSchemaJson, fingerprint: string): EncryptionPlan {
    let plan = this.plans.get(fingerprint);
    if (plan === undefined) {
      plan = this.planOfSource(schema);
      this.plans.set(fingerprint, plan);
    }
    return plan;
  }

  /** Registry schema objects are not mutated, so a plan is reused for the same object. */
  private planOfSource(source: AvroSchemaJson): EncryptionPlan {
    let plan = this.plansBySource.get(source);
    if (plan === undefined) {
      plan = compileEncryptionPlan(source, this.compileOptions());
      this.plansBySource.set(source, plan);
    }
    return plan;
  }

  /**
   * Encrypts every record's personal values, in order. Throws a retryable
   * AppError (nothing is written) when padlock cannot answer.
   */
  async encryptBatch(eventType: string, items: readonly RecordToEncrypt[]): Promise<EncryptedRecord[]> {
    const plans: EncryptionPlan[] = new Array<EncryptionPlan>(items.length);
    const subjects: (string | undefined)[] = new Array<string | undefined>(items.length);
    const wanted: Wanted = new Map();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const plan = this.plan(item.schema, item.fingerprint);
      plans[i] = plan;
      const subject = plan.root === undefined ? undefined : subjectOf(item.record, plan.subjectPath);
      subjects[i] = subject;
      if (subject !== undefined) want(wanted, subject, plan.categories);
    }
    const keys = await this.fetchKeys(eventType, wanted);
    const ctx: EncryptContext = { adCache: this.adCacheOf(eventType), subjectKeys: undefined, stats: { encryptedFields: 0, nulledFields: 0 } };

    const out: EncryptedRecord[] = new Array<EncryptedRecord>(items.length);
    sealingBatch(() => {
      for (let i = 0; i < items.length; i++) {
        const record = items[i]!.record;
        const root = plans[i]!.root;
        const stats: EncryptionStats = { encryptedFields: 0, nulledFields: 0 };
        if (root === undefined) {
          out[i] = { record, stats };
          continue;
        }
        const subject = subjects[i];
        ctx.subjectKeys = subject === undefined ? undefined : keys.get(subject);
        ctx.stats = stats;
        out[i] = { record: encryptValue(root, record, '', ctx), stats };
      }
    });
    return out;
  }

  /**
   * Scans one encoded record (its subject and personal values) without
   * decoding it into objects; undefined if its schema needs the object path
   * (`encryptBatch`). Throws if the bytes are not one datum of the schema.
   */
  scanEncoded(eventType: string, item: EncodedToEncrypt): ScannedRecord | undefined {
    const plan = this.plan(item.schema, item.fingerprint);
    let byFingerprint = this.scanners.get(eventType);
    let scanner = byFingerprint?.get(item.fingerprint);
    if (scanner === undefined) {
      if (this.scannerCount >= MAX_CACHED_SCANNERS) {
        this.scanners.clear();
        this.scannerCount = 0;
        byFingerprint = undefined;
      }
      if (byFingerprint === undefined) this.scanners.set(eventType, (byFingerprint = new Map()));
      scanner = compileScannerOrNull(eventType, item.schema, plan);
      byFingerprint.set(item.fingerprint, scanner);
      this.scannerCount++;
    }
    return scanner === null ? undefined : { bytes: item.bytes, plan, scanned: scanner(item.bytes) };
  }

  /**
   * Encrypts scanned records into delivered-schema bytes: the source bytes are
   * copied as they are, each personal value replaced by its ciphertext (or
   * null/empty without a key). Same keys, associated data, format and stats
   * as `encryptBatch`; throws the same retryable AppError when padlock cannot answer.
   */
  async encryptScanned(eventType: string, items: readonly ScannedRecord[]): Promise<EncryptedEncoded[]> {
    const subjects: (string | undefined)[] = new Array<string | undefined>(items.length);
    const wanted: Wanted = new Map();
    for (let i = 0; i < items.length; i++) {
      const { plan, scanned } = items[i]!;
      const subject = plan.root === undefined ? undefined : subjectId(scanned.subject);
      subjects[i] = subject;
      if (subject !== undefined) want(wanted, subject, plan.categories);
    }
    const keys = await this.fetchKeys(eventType, wanted);
    const out = new Array<EncryptedEncoded>(items.length);
    sealingBatch(() => {
      for (let i = 0; i < items.length; i++) {
        const subject = subjects[i];
        out[i] = writeDelivered(items[i]!, subject === undefined ? undefined : keys.get(subject));
      }
    });
    return out;
  }

  /** The associated-data cache of an event type (bounded: paths under maps and arrays can vary without end). */
  private adCacheOf(eventType: string): AdCache {
    let cache = this.adCaches.get(eventType);
    if (cache === undefined) {
      if (this.adCaches.size >= MAX_CACHED_EVENT_TYPES) this.adCaches.clear();
      cache = { eventType, byPath: new Map() };
      this.adCaches.set(eventType, cache);
    }
    return cache;
  }

  private compileOptions(): { keyContext: string; catalogue?: SemanticCatalogue } {
    return { keyContext: this.keyContext, ...(this.options.catalogue ? { catalogue: this.options.catalogue } : {}) };
  }

  /** The keys found, per subject then category; a deleted (or absent) key is not in the map. */
  private async fetchKeys(eventType: string, wanted: Wanted): Promise<Map<string, Map<string, AeadKey>>> {
    const out = new Map<string, Map<string, AeadKey>>();
    if (wanted.size === 0) return out;
    const requests: KeyRequest[] = [];
    for (const [userId, categories] of wanted) for (const category of categories) requests.push({ userId, category });
    let results: KeyResult[];
    try {
      results = await this.options.keys.getKeys(requests, { createIfAbsent: true, context: this.keyContext });
    } catch (err) {
      // Any failure (padlock down, or refusing us) stops the batch: it is neither
      // delivered in clear nor dead-lettered; the ETL backs off and retries.
      this.options.logger?.error('padlock key lookup failed; batch not processed', { eventType, users: wanted.size, err });
      if (isAppError(err) && err.retryable) throw err;
      throw new AppError('UNAVAILABLE', {
        message: 'Key service lookup failed; personal fields cannot be encrypted',
        details: { eventType, cause: isAppError(err) ? err.code : 'unknown' },
        cause: err,
      });
    }
    if (results.length !== requests.length) {
      throw new AppError('UNAVAILABLE', { message: `Key service answered ${results.length} keys for ${requests.length} requests` });
    }
    for (let i = 0; i < requests.length; i++) {
      const result = results[i]!;
      if (result.status !== 'found') continue;
      const { userId, category } = requests[i]!;
      let byCategory = out.get(userId);
      if (byCategory === undefined) out.set(userId, (byCategory = new Map()));
      byCategory.set(category, result.key);
    }
    return out;
  }
}

/**
 * Subject → the categories its records need in one batch: each (user,
 * category) is asked for and resolved once per batch. Usually every record
 * has the same plan, so the plan's own list is kept; a Set only when they differ.
 */
type Wanted = Map<string, readonly string[] | Set<string>>;

function want(wanted: Wanted, subject: string, categories: readonly string[]): void {
  const known = wanted.get(subject);
  if (known === undefined) wanted.set(subject, categories);
  else if (known !== categories) {
    const merged = known instanceof Set ? known : new Set(known);
    for (const category of categories) merged.add(category);
    wanted.set(subject, merged);
  }
}

/** The subject id at `path` as padlock takes it, or undefined if missing, empty or too long. */
export function subjectOf(record: unknown, path: readonly string[] | undefined): string | undefined {
  if (path === undefined) return undefined;
  let v: unknown = record;
  for (const name of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[name];
  }
  return subjectId(v);
}

/** A subject value as padlock takes it, or undefined if not usable. */
export function subjectId(v: unknown): string | undefined {
  if (typeof v === 'string') return isUserId(v) ? v : undefined;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return undefined;
}

/** Associated data of one event type, per concrete field path. */
interface AdCache {
  eventType: string;
  byPath: Map<string, Buffer>;
}

/** Bounds of the associated-data caches (cleared when full: a cache, never a requirement). */
const MAX_CACHED_EVENT_TYPES = 256;
const MAX_CACHED_PATHS = 4096;

interface EncryptContext {
  adCache: AdCache;
  /** The current record subject's keys per category (undefined: no subject, or none found). */
  subjectKeys: Map<string, AeadKey> | undefined;
  stats: EncryptionStats;
}

function adOf(cache: AdCache, path: string): Buffer {
  let ad = cache.byPath.get(path);
  if (ad === undefined) {
    if (cache.byPath.size >= MAX_CACHED_PATHS) cache.byPath.clear();
    ad = associatedData(cache.eventType, path);
    cache.byPath.set(path, ad);
  }
  return ad;
}

function encryptValue(node: PlanNode, value: unknown, path: string, ctx: EncryptContext): unknown {
  if (value === null || value === undefined) return null;
  switch (node.kind) {
    case 'personal': {
      const key = ctx.subjectKeys?.get(node.category);
      if (key === undefined) {
        ctx.stats.nulledFields++;
        return node.withoutKey === 'empty' ? Buffer.alloc(0) : null;
      }
      ctx.stats.encryptedFields++;
      return encrypt(key, node.encode(value), adOf(ctx.adCache, path));
    }
    case 'record': {
      const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      for (const f of node.fields) out[f.name] = encryptValue(f.node, out[f.name], fieldStep(path, f.name), ctx);
      return out;
    }
    case 'array':
      return (value as unknown[]).map((v, i) => encryptValue(node.items, v, itemStep(path, i), ctx));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = encryptValue(node.values, v, valueStep(path, k), ctx);
      return out;
    }
    case 'union':
      return encryptUnion(node, value, path, ctx);
  }
}

function encryptUnion(node: Extract<PlanNode, { kind: 'union' }>, value: unknown, path: string, ctx: EncryptContext): unknown {
  const first = node.branches[0];
  if (node.single && first !== undefined) return encryptValue(first.node, value, path, ctx);
  // Several non-null branches: avsc gives `{"<branch name>": value}` when it wraps.
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const wrapped = node.branches.find((b) => b.name === keys[0]);
      if (wrapped !== undefined) return { [wrapped.name]: encryptValue(wrapped.node, (value as Record<string, unknown>)[wrapped.name], path, ctx) };
    }
  }
  const branch = node.branches.find((b) => b.isValid(value));
  return branch === undefined ? value : encryptValue(branch.node, value, path, ctx);
}

const MAX_CACHED_SCANNERS = 1024;

function compileScannerOrNull(eventType: string, schema: AvroSchemaJson, plan: EncryptionPlan): ((buf: Buffer) => ScannedDatum) | null {
  const writer: avro.Type = avroType(schema);
  const delivered: avro.Type = plan.root === undefined ? writer : avroType(plan.delivered);
  try {
    return compileScanner(eventType, writer, delivered, plan);
  } catch (err) {
    if (err instanceof UnsupportedScan) return null;
    throw err;
  }
}

/** What each slot of the record being written gets: its key, or NO_KEY (null, or empty bytes), or null (no value). */
const slotKeys: (AeadKey | typeof NO_KEY | null)[] = [];
const NO_KEY = Symbol('no key');

/**
 * Delivered bytes of a scanned record: untouched ranges copied, personal
 * values written in their delivered form. Sizes are known before writing, so
 * each ciphertext is sealed straight into the one output buffer.
 */
function writeDelivered(item: ScannedRecord, subjectKeys: Map<string, AeadKey> | undefined): EncryptedEncoded {
  try {
    return writeSlots(item, subjectKeys);
  } finally {
    slotKeys.length = 0; // holds keys: never kept past the record
  }
}

function writeSlots(item: ScannedRecord, subjectKeys: Map<string, AeadKey> | undefined): EncryptedEncoded {
  const stats: EncryptionStats = { encryptedFields: 0, nulledFields: 0 };
  const { bytes, scanned } = item;
  const slots = scanned.slots;
  if (slots.length === 0) return { payload: bytes, stats };
  let size = bytes.length;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    let length: number | null = null;
    if (slot.source === null) slotKeys[i] = null;
    else {
      const key = subjectKeys?.get(slot.category);
      if (key === undefined) {
        stats.nulledFields++;
        slotKeys[i] = NO_KEY;
        if (slot.withoutKey === 'empty') length = 0;
      } else {
        stats.encryptedFields++;
        slotKeys[i] = key;
        length = ciphertextLength(slot.to - slot.from);
      }
    }
    if (length === null && !slot.nullable) throw new AppError('INTERNAL', { message: 'a null value for a non-nullable encrypted item' });
    // [union index] + length as a varint + bytes, or the null branch's index
    size += (slot.nullable ? 1 : 0) + (length === null ? 0 : longLength(length) + length) - (slot.end - slot.start);
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  let from = 0;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    const key = slotKeys[i]!;
    pos += bytes.copy(out, pos, from, slot.start);
    if (key === null || (key === NO_KEY && slot.withoutKey !== 'empty')) out[pos++] = 0; // union branch 0: null
    else {
      if (slot.nullable) out[pos++] = 2; // union branch 1 (zig-zag): bytes
      if (key === NO_KEY) pos = writeLong(out, pos, 0);
      else {
        pos = writeLong(out, pos, ciphertextLength(slot.to - slot.from));
        pos = encryptInto(key, slot.source!, slot.ad, out, pos, slot.from, slot.to);
      }
    }
    from = slot.end;
  }
  pos += bytes.copy(out, pos, from);
  if (pos !== size) throw new AppError('INTERNAL', { message: `delivered record is ${pos} bytes, ${size} expected` });
  return { payload: out, stats };
}
