/**
 * The subject index of a closed partition (contract, docs/partitions.md): which
 * data subjects the partition holds encrypted values of, and how many per
 * field (schema path and data category). Written by the ETL next to the
 * manifest before `_SUCCESS`; read by the shred report, so a report reads
 * only the partitions that held a user's data.
 *
 * Exact, not a Bloom filter: a lookup misses no partition, and a hit can only
 * be wrong by a hash collision, which the report verifies away by reading the
 * records. Subject ids are stored as `subjectHash` (128 bits of SHA-256 over a
 * domain-separated id), never in clear: the index is a list of who is where, so
 * it must not become a readable roster of user ids.
 *
 * Deterministic bytes (fields and subjects sorted, fixed key order), so a
 * re-run of a close writes the same object; `mergeSubjectIndexes` combines the
 * indexes of disjoint sets of part files (e.g. shards of one close) into the
 * one the whole partition would have.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../errors.ts';

/** The hash scheme's name, recorded in every index. */
export const SUBJECT_HASH_SCHEME = 'sha256-128/edp-subject-index-v1';
const DOMAIN = 'edp-subject-index-v1\u0000';

/** The hashed form of a subject id in the index: hex of the first 16 bytes of SHA-256(domain ‖ id), so text order is byte order. */
export function subjectHash(userId: string): string {
  return subjectHashBytes(userId).toString('hex');
}

function subjectHashBytes(userId: string): Buffer {
  return createHash('sha256').update(DOMAIN, 'utf8').update(userId, 'utf8').digest().subarray(0, HASH_BYTES);
}

const HASH_BYTES = 16;

/** One field of the index: where encrypted values are, and under which category. */
export interface IndexedField {
  schemaPath: string;
  category: string;
}

const subjectIndexSchema = z.object({
  formatVersion: z.literal(1),
  eventType: z.string(),
  period: z.string(),
  hash: z.literal(SUBJECT_HASH_SCHEME),
  /** The part files the index was computed from, sorted. */
  files: z.array(z.string()),
  /** Sorted by schema path, then category. */
  fields: z.array(z.object({ schemaPath: z.string(), category: z.string() })),
  /** `[subjectHash, counts]`, sorted by hash; counts align with `fields` (encrypted values per field). */
  subjects: z.array(z.tuple([z.string().regex(/^[0-9a-f]{32}$/, 'expected a subject hash (32 hex digits)'), z.array(z.number().int().nonnegative())])),
});

/** A partition's subject index (the `_SUBJECTS` object). */
export type SubjectIndex = z.infer<typeof subjectIndexSchema>;

const fieldKey = (f: IndexedField): string => `${f.schemaPath}\u0000${f.category}`;
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareFields = (a: IndexedField, b: IndexedField): number => compareText(a.schemaPath, b.schemaPath) || compareText(a.category, b.category);

/**
 * Counts encrypted values per subject and field while the part files are read,
 * in an open-addressing table of 16-byte hashes and one Uint32Array of counts
 * per field: about 2 × (16 + 4 × fields) bytes per distinct subject, off the V8
 * heap, whatever the partition's record count.
 */
export class SubjectIndexBuilder {
  private capacity = 1024;
  private size = 0;
  private keys = Buffer.alloc(this.capacity * HASH_BYTES);
  private used = new Uint8Array(this.capacity);
  /** Counts per column (fields in order of first sight), one slot per table slot. */
  private counts: Uint32Array[] = [];
  private readonly columns = new Map<string, number>();
  private readonly fields: IndexedField[] = [];
  private readonly files: string[] = [];

  constructor(
    private readonly eventType: string,
    private readonly period: string,
  ) {}

  /** Notes a part file as read. */
  addFile(name: string): void {
    this.files.push(name);
  }

  /** Counts the encrypted values of one record of `userId`, one per entry of `fields` (hashing the id once). */
  addRecord(userId: string, fields: readonly IndexedField[]): void {
    if (fields.length === 0) return;
    const slot = this.slotOf(subjectHashBytes(userId));
    for (const field of fields) this.counts[this.columnOf(field)]![slot]! += 1;
  }

  /** Counts `n` encrypted values of `userId` in one field. */
  add(userId: string, field: IndexedField, n = 1): void {
    this.addHashed(subjectHash(userId), field, n);
  }

  /** Counts `n` values of a hashed subject (as an index holds it) in one field. */
  addHashed(hash: string, field: IndexedField, n: number): void {
    if (!/^[0-9a-f]{32}$/.test(hash)) throw new AppError('INTERNAL', { message: 'not a subject hash' });
    const slot = this.slotOf(Buffer.from(hash, 'hex'));
    this.counts[this.columnOf(field)]![slot]! += n;
  }

  /** The index as an object (tests, merging; the ETL stores `toBytes()`). */
  build(): SubjectIndex {
    const { fields, order, slots } = this.sorted();
    const subjects: [string, number[]][] = slots.map((slot) => [this.hexAt(slot), order.map((c) => this.counts[c]![slot]!)]);
    return { ...this.header(fields), subjects };
  }

  /** The same bytes as `serializeSubjectIndex(build())`, without building the object. */
  toBytes(): Buffer {
    const { fields, order, slots } = this.sorted();
    const chunks: Buffer[] = [Buffer.from(`${JSON.stringify(this.header(fields)).slice(0, -1)},"subjects":[`, 'utf8')];
    const ROWS_PER_CHUNK = 4096;
    for (let i = 0; i < slots.length; i += ROWS_PER_CHUNK) {
      const rows = slots.slice(i, i + ROWS_PER_CHUNK).map((slot) => `["${this.hexAt(slot)}",[${order.map((c) => this.counts[c]![slot]!).join(',')}]]`);
      chunks.push(Buffer.from(`${i === 0 ? '' : ','}${rows.join(',')}`, 'utf8'));
    }
    chunks.push(Buffer.from(']}\n', 'utf8'));
    return Buffer.concat(chunks);
  }

  private header(fields: IndexedField[]): Omit<SubjectIndex, 'subjects'> {
    return { formatVersion: 1, eventType: this.eventType, period: this.period, hash: SUBJECT_HASH_SCHEME, files: [...this.files].sort(compareText), fields };
  }

  /** Fields sorted, the column of each, and the used slots in hash order. */
  private sorted(): { fields: IndexedField[]; order: number[]; slots: number[] } {
    const byField = this.fields.map((f, column) => ({ f, column })).sort((a, b) => compareFields(a.f, b.f));
    const slots: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) if (this.used[slot] === 1) slots.push(slot);
    const keys = this.keys;
    // Byte order: by the first 4 bytes as a number, the rest only on a tie.
    const prefix = new Uint32Array(this.capacity);
    for (const slot of slots) prefix[slot] = keys.readUInt32BE(slot * HASH_BYTES);
    slots.sort((a, b) => prefix[a]! - prefix[b]! || keys.compare(keys, b * HASH_BYTES, (b + 1) * HASH_BYTES, a * HASH_BYTES, (a + 1) * HASH_BYTES));
    return { fields: byField.map(({ f }) => ({ schemaPath: f.schemaPath, category: f.category })), order: byField.map(({ column }) => column), slots };
  }

  private hexAt(slot: number): string {
    return this.keys.toString('hex', slot * HASH_BYTES, (slot + 1) * HASH_BYTES);
  }

  private columnOf(field: IndexedField): number {
    const key = fieldKey(field);
    let column = this.columns.get(key);
    if (column === undefined) {
      column = this.fields.length;
      this.columns.set(key, column);
      this.fields.push({ schemaPath: field.schemaPath, category: field.category });
      this.counts.push(new Uint32Array(this.capacity));
    }
    return column;
  }

  /** The slot of a hash, inserted if new (linear probing on the hash's first 4 bytes, already uniform). */
  private slotOf(hash: Buffer): number {
    if ((this.size + 1) * 2 > this.capacity) this.grow();
    const mask = this.capacity - 1;
    let slot = hash.readUInt32BE(0) & mask;
    while (this.used[slot] === 1) {
      if (this.keys.compare(hash, 0, HASH_BYTES, slot * HASH_BYTES, (slot + 1) * HASH_BYTES) === 0) return slot;
      slot = (slot + 1) & mask;
    }
    this.used[slot] = 1;
    hash.copy(this.keys, slot * HASH_BYTES, 0, HASH_BYTES);
    this.size++;
    return slot;
  }

  private grow(): void {
    const old = { capacity: this.capacity, keys: this.keys, used: this.used, counts: this.counts };
    this.capacity *= 2;
    this.keys = Buffer.alloc(this.capacity * HASH_BYTES);
    this.used = new Uint8Array(this.capacity);
    this.counts = old.counts.map(() => new Uint32Array(this.capacity));
    this.size = 0;
    for (let slot = 0; slot < old.capacity; slot++) {
      if (old.used[slot] !== 1) continue;
      const moved = this.slotOf(old.keys.subarray(slot * HASH_BYTES, (slot + 1) * HASH_BYTES));
      old.counts.forEach((column, c) => (this.counts[c]![moved] = column[slot]!));
    }
  }
}

/** The index's bytes: compact JSON, keys in schema order (deterministic). */
export function serializeSubjectIndex(index: SubjectIndex): Buffer {
  const ordered: SubjectIndex = {
    formatVersion: index.formatVersion,
    eventType: index.eventType,
    period: index.period,
    hash: index.hash,
    files: index.files,
    fields: index.fields.map((f) => ({ schemaPath: f.schemaPath, category: f.category })),
    subjects: index.subjects,
  };
  return Buffer.from(`${JSON.stringify(ordered)}\n`, 'utf8');
}

/** Validates an index's bytes. */
export function parseSubjectIndex(bytes: Buffer | string): SubjectIndex {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (cause) {
    throw new AppError('BODY_INVALID', { message: 'subject index is not JSON', cause });
  }
  const r = subjectIndexSchema.safeParse(json);
  if (!r.success) throw new AppError('BODY_INVALID', { message: `subject index is not valid: ${r.error.issues[0]?.message ?? ''}` });
  for (const [hash, counts] of r.data.subjects) {
    if (counts.length !== r.data.fields.length) throw new AppError('BODY_INVALID', { message: `subject index row ${hash} has ${counts.length} counts for ${r.data.fields.length} fields` });
  }
  return r.data;
}

/** The counts of one subject per field (only fields with values), or undefined if the index does not hold it. */
export function lookupSubject(index: SubjectIndex, userId: string): { field: IndexedField; values: number }[] | undefined {
  const hash = subjectHash(userId);
  // Subjects are sorted by hash: binary search.
  let lo = 0;
  let hi = index.subjects.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const [h, counts] = index.subjects[mid]!;
    const c = compareText(h, hash);
    if (c === 0) return index.fields.flatMap((field, i) => ((counts[i] ?? 0) > 0 ? [{ field, values: counts[i]! }] : []));
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The index of the union of the indexed files (each set disjoint; e.g. the shards of one close). Files are sorted by name. */
export function mergeSubjectIndexes(indexes: readonly SubjectIndex[]): SubjectIndex {
  const first = indexes[0];
  if (first === undefined) throw new AppError('INTERNAL', { message: 'no subject index to merge' });
  const builder = new SubjectIndexBuilder(first.eventType, first.period);
  for (const index of indexes) {
    if (index.eventType !== first.eventType || index.period !== first.period) {
      throw new AppError('INTERNAL', { message: `cannot merge the subject index of ${index.eventType} ${index.period} into ${first.eventType} ${first.period}` });
    }
    for (const f of index.files) builder.addFile(f);
    for (const [hash, counts] of index.subjects) {
      counts.forEach((n, i) => {
        if (n > 0) builder.addHashed(hash, index.fields[i]!, n);
      });
    }
  }
  return builder.build();
}
