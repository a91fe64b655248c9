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

/** The hashed form of a subject id in the index: base64url of the first 16 bytes of SHA-256(domain ‖ id). */
export function subjectHash(userId: string): string {
  return createHash('sha256').update(DOMAIN, 'utf8').update(userId, 'utf8').digest().subarray(0, 16).toString('base64url');
}

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
  subjects: z.array(z.tuple([z.string(), z.array(z.number().int().nonnegative())])),
});

/** A partition's subject index (the `_SUBJECTS` object). */
export type SubjectIndex = z.infer<typeof subjectIndexSchema>;

const fieldKey = (f: IndexedField): string => `${f.schemaPath}\u0000${f.category}`;
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareFields = (a: IndexedField, b: IndexedField): number => compareText(a.schemaPath, b.schemaPath) || compareText(a.category, b.category);

/** Counts encrypted values per subject and field while the part files are read. */
export class SubjectIndexBuilder {
  private readonly counts = new Map<string, Map<string, number>>();
  private readonly fields = new Map<string, IndexedField>();
  private readonly files: string[] = [];

  constructor(
    private readonly eventType: string,
    private readonly period: string,
  ) {}

  /** Notes a part file as read. */
  addFile(name: string): void {
    this.files.push(name);
  }

  /** Counts `n` encrypted values of `userId` in one field. */
  add(userId: string, field: IndexedField, n = 1): void {
    this.addHashed(subjectHash(userId), field, n);
  }

  addHashed(hash: string, field: IndexedField, n: number): void {
    const key = fieldKey(field);
    if (!this.fields.has(key)) this.fields.set(key, { schemaPath: field.schemaPath, category: field.category });
    let bySubject = this.counts.get(hash);
    if (bySubject === undefined) this.counts.set(hash, (bySubject = new Map()));
    bySubject.set(key, (bySubject.get(key) ?? 0) + n);
  }

  build(): SubjectIndex {
    const fields = [...this.fields.values()].sort(compareFields);
    const column = new Map(fields.map((f, i) => [fieldKey(f), i]));
    const subjects: [string, number[]][] = [...this.counts.keys()].sort(compareText).map((hash) => {
      const row = new Array<number>(fields.length).fill(0);
      for (const [key, n] of this.counts.get(hash)!) row[column.get(key)!] = n;
      return [hash, row];
    });
    return { formatVersion: 1, eventType: this.eventType, period: this.period, hash: SUBJECT_HASH_SCHEME, files: [...this.files].sort(compareText), fields, subjects };
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
