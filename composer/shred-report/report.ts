/**
 * The shred report of one user (DESIGN.md §3 "Operations"): every closed
 * partition, event type and field that held encrypted values of the user, with
 * counts, and for each value whether it still decrypts. After the user's
 * keychain is deleted it proves each value no longer decrypts: the ciphertext
 * is still in the file, and padlock answers that the key is deleted.
 *
 * It reads each closed partition's subject index (`_SUBJECTS`, small) and only
 * the part files of the partitions whose index names the user; an index hit
 * without a record of that exact user (a hash collision) is listed as a false
 * positive, verified away. Late files are not indexed: every late file of the
 * types looked at is read (they hold only events that arrived after their
 * partition closed). Closed partitions without a usable index (closed before
 * the index existed, or an index that does not parse or names another
 * partition) are listed, not read: the report cannot speak for them.
 * Decrypted values are never returned, only counts.
 */
import type { Bucket, Storage } from '@google-cloud/storage';
import { readContainer, decodeRecords } from '../../lib/avro/container.ts';
import { avroType } from '../../lib/avro/long.ts';
import { associatedData, decrypt, keyIdOf } from '../../lib/crypto/aead.ts';
import { AppError, isAppError } from '../../lib/errors.ts';
import { parseManifest, periodFromPartitionPath, subjectIndexObjectName, successObjectName, type Period } from '../../lib/partitions.ts';
import { compileEncryptedValuePlan, encryptedValuesOf, subjectOfPayload, type EncryptedValue, type EncryptedValuePlan } from '../../lib/privacy/encrypted-values.ts';
import type { KeyResult, KeySource } from '../../lib/privacy/keys.ts';
import { gcsPartitionSource, readPartitionFile } from '../../lib/privacy/partition-reader.ts';
import { lookupSubject, parseSubjectIndex, subjectHash, type SubjectIndex } from '../../lib/privacy/subject-index.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { userIdProblem } from '../../lib/user-id.ts';

/** Why a value does not decrypt. */
export type Undecryptable = 'key deleted' | 'key absent' | 'key mismatch' | 'fails authentication';

/** The values of one field of one partition (or late file). */
export interface FieldFinding {
  schemaPath: string;
  category: string;
  keyContext: string;
  /** Values the subject index counted (0 for late files, which have no index). */
  indexed: number;
  /** Ciphertexts of the user found in the files. */
  values: number;
  /** Of `values`, how many decrypt with the user's key now. */
  decrypts: number;
  undecryptable: Partial<Record<Undecryptable, number>>;
}

export interface PartitionFinding {
  eventType: string;
  period: string;
  /** `part` for a closed partition's parts, `late` for its late files. */
  source: 'part' | 'late';
  /** Files read (object names). */
  files: string[];
  /** Records of the user. */
  records: number;
  fields: FieldFinding[];
}

/** What padlock answered for one of the user's keys. */
export interface KeyFinding {
  keyContext: string;
  category: string;
  status: KeyResult['status'];
}

export interface ShredReport {
  /** The user's hashed id as the subject indexes hold it. */
  subjectHash: string;
  eventTypes: string[];
  /** Closed partitions looked at (with `_SUCCESS`). */
  closedPartitions: number;
  /** Subject indexes read. */
  indexesRead: number;
  /** Closed partitions whose index names the user and that hold the user's encrypted values; late files with them. */
  partitions: PartitionFinding[];
  /** Index hits without a record of this user (hash collisions): verified away by reading the partition. */
  falsePositives: { eventType: string; period: string }[];
  /** Closed partitions without a usable subject index (none, or not valid for that partition): the report cannot speak for them. */
  unindexed: { eventType: string; period: string; reason: 'no index' | 'index unreadable' }[];
  /** Late files read. */
  lateFilesRead: number;
  keys: KeyFinding[];
  totals: { values: number; decrypts: number; undecryptable: number };
  /**
   * `shredded`: values were found and none decrypts, every key padlock was asked for is
   * deleted or absent, and every closed partition looked at was indexed; `readable`: some
   * value still decrypts; `no data`: no value of the user was found; `unproven`: nothing
   * decrypts but some partition was unindexed or a key is still there.
   */
  verdict: 'shredded' | 'readable' | 'no data' | 'unproven';
}

export interface ShredReportOptions {
  storage: Storage;
  dataBucket: string;
  /** A padlock client of a service entitled to the key contexts of the values (never creating keys). */
  keys: KeySource;
  userId: string;
  /** Event types to look in; every type folder of the data bucket if absent. */
  eventTypes?: readonly string[];
  /** Object reads in flight (default 8). */
  concurrency?: number;
}

/** Builds the shred report of `userId`. */
export async function shredReport(options: ShredReportOptions): Promise<ShredReport> {
  const problem = userIdProblem(options.userId);
  if (problem !== undefined) throw new AppError('BAD_REQUEST', { message: `not a user id: ${problem}`, details: { field: 'userId' } });
  const bucket = options.storage.bucket(options.dataBucket);
  const limit = options.concurrency ?? 8;
  const eventTypes = options.eventTypes === undefined ? await typeFolders(bucket) : [...options.eventTypes].sort();
  const report: ShredReport = {
    subjectHash: subjectHash(options.userId),
    eventTypes,
    closedPartitions: 0,
    indexesRead: 0,
    partitions: [],
    falsePositives: [],
    unindexed: [],
    lateFilesRead: 0,
    keys: [],
    totals: { values: 0, decrypts: 0, undecryptable: 0 },
    verdict: 'no data',
  };
  const found: { finding: PartitionFinding; values: { eventType: string; value: EncryptedValue; field: FieldFinding }[] }[] = [];

  for (const eventType of eventTypes) {
    const listing = await listType(bucket, eventType);
    report.closedPartitions += listing.closed.length;
    const hits = await mapLimit(listing.closed, limit, async (period) => {
      if (!listing.indexed.has(period.key)) {
        report.unindexed.push({ eventType, period: period.key, reason: 'no index' });
        return undefined;
      }
      const [bytes] = await bucket.file(subjectIndexObjectName(eventType, period)).download();
      report.indexesRead++;
      let index: SubjectIndex;
      try {
        index = parseSubjectIndex(bytes);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'BODY_INVALID') throw err;
        report.unindexed.push({ eventType, period: period.key, reason: 'index unreadable' });
        return undefined;
      }
      if (index.eventType !== eventType || index.period !== period.key) {
        report.unindexed.push({ eventType, period: period.key, reason: 'index unreadable' });
        return undefined;
      }
      const counts = lookupSubject(index, options.userId);
      return counts === undefined ? undefined : { period, counts };
    });
    for (const hit of hits) {
      if (hit === undefined) continue;
      const result = await readIndexedPartition(options, eventType, hit.period, hit.counts);
      if (result === undefined) report.falsePositives.push({ eventType, period: hit.period.key });
      else found.push(result);
    }
    const late = await mapLimit(listing.lateFiles, limit, (name) => readLateFile(bucket, options.userId, eventType, name));
    report.lateFilesRead += listing.lateFiles.length;
    for (const r of late) if (r !== undefined) found.push(r);
  }

  report.keys = await verifyDecryption(options, found.flatMap((f) => f.values));
  report.partitions = found.map((f) => f.finding);
  for (const p of report.partitions) {
    for (const f of p.fields) {
      report.totals.values += f.values;
      report.totals.decrypts += f.decrypts;
    }
  }
  report.totals.undecryptable = report.totals.values - report.totals.decrypts;
  report.unindexed.sort((a, b) => compare(a.eventType, b.eventType) || compare(a.period, b.period));
  report.falsePositives.sort((a, b) => compare(a.eventType, b.eventType) || compare(a.period, b.period));
  const keysGone = report.keys.every((k) => k.status !== 'found');
  if (report.totals.decrypts > 0) report.verdict = 'readable';
  else if (report.totals.values === 0) report.verdict = report.unindexed.length > 0 ? 'unproven' : 'no data';
  else report.verdict = keysGone && report.unindexed.length === 0 ? 'shredded' : 'unproven';
  return report;
}

/** The type folders of the data bucket (`<type>/`). */
async function typeFolders(bucket: Bucket): Promise<string[]> {
  const out: string[] = [];
  let pageToken: string | undefined;
  do {
    const [, next, response] = await bucket.getFiles({ delimiter: '/', autoPaginate: false, maxResults: 1000, ...(pageToken === undefined ? {} : { pageToken }) });
    for (const p of (response as { prefixes?: string[] } | undefined)?.prefixes ?? []) out.push(p.replace(/\/$/, ''));
    pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
  } while (pageToken !== undefined);
  return out.sort();
}

/** The closed partitions of a type, which of them have a subject index, and its late files (names only). */
async function listType(bucket: Bucket, eventType: string): Promise<{ closed: Period[]; indexed: Set<string>; lateFiles: string[] }> {
  const closed: Period[] = [];
  const indexed = new Set<string>();
  const lateFiles: string[] = [];
  // Streamed: only the names of interest are kept, however many parts the type has.
  for await (const f of bucket.getFilesStream({ prefix: `${eventType}/` }) as AsyncIterable<{ name: string }>) {
    if (f.name.startsWith(`${eventType}/late/`)) {
      if (f.name.endsWith('.avro')) lateFiles.push(f.name);
      continue;
    }
    const period = periodFromPartitionPath(eventType, f.name);
    if (period === undefined) continue;
    if (f.name === successObjectName(eventType, period)) closed.push(period);
    else if (f.name === subjectIndexObjectName(eventType, period)) indexed.add(period.key);
  }
  closed.sort((a, b) => compare(a.key, b.key));
  return { closed, indexed, lateFiles: lateFiles.sort() };
}

/** Reads the parts of an indexed partition and keeps the user's values; undefined if none of its records is the user's. */
async function readIndexedPartition(
  options: ShredReportOptions,
  eventType: string,
  period: Period,
  counts: { field: { schemaPath: string; category: string }; values: number }[],
): Promise<{ finding: PartitionFinding; values: { eventType: string; value: EncryptedValue; field: FieldFinding }[] } | undefined> {
  const source = gcsPartitionSource(options.storage, { bucket: options.dataBucket, prefix: `${successObjectName(eventType, period).slice(0, -'_SUCCESS'.length)}` });
  const text = await source.readManifest();
  if (text === undefined) throw new AppError('PRECONDITION_FAILED', { message: `${eventType} ${period.key} lost its _SUCCESS while being read` });
  const manifest = parseManifest(text);
  const collector = new Collector(eventType, period.key, 'part');
  for (const { field, values } of counts) collector.field(field.schemaPath, field.category, undefined).indexed += values;
  for (const entry of manifest.files) {
    const file = await readPartitionFile(source, manifest, entry);
    collector.read(entry.name, file.deliveredSchema, file.records.map((r) => r.payload), options.userId);
  }
  return collector.result();
}

/** Reads one late file (self-describing: the payload's delivered schema is in its header). */
async function readLateFile(bucket: Bucket, userId: string, eventType: string, name: string) {
  const [bytes] = await bucket.file(name).download();
  const contents = readContainer(bytes);
  const fields = (contents.schema as { fields?: { name: string; type: unknown }[] }).fields;
  const payloadSchema = fields?.find((f) => f.name === 'payload')?.type;
  if (payloadSchema === undefined) throw new AppError('DECODE_FAILED', { message: `${name} is not a delivered file (no payload field)` });
  const type = avroType(contents.schema);
  const payloads = decodeRecords(contents, (buf, pos) => type.decode(buf, pos) as { value: { payload: unknown }; offset: number }).map((r) => r.payload);
  const period = periodFromPartitionPath(eventType, name.replace(`${eventType}/late/`, `${eventType}/`));
  const collector = new Collector(eventType, period?.key ?? name, 'late');
  collector.read(name, payloadSchema as AvroSchemaJson, payloads, userId);
  return collector.result();
}

/** Collects one user's encrypted values of one partition, per field. */
class Collector {
  private readonly fields = new Map<string, FieldFinding>();
  private readonly plans = new Map<string, EncryptedValuePlan>();
  private readonly files: string[] = [];
  private readonly values: { eventType: string; value: EncryptedValue; field: FieldFinding }[] = [];
  private records = 0;

  constructor(
    private readonly eventType: string,
    private readonly period: string,
    private readonly source: 'part' | 'late',
  ) {}

  field(schemaPath: string, category: string, keyContext: string | undefined): FieldFinding {
    const key = `${schemaPath}\u0000${category}`;
    let f = this.fields.get(key);
    if (f === undefined) this.fields.set(key, (f = { schemaPath, category, keyContext: keyContext ?? '', indexed: 0, values: 0, decrypts: 0, undecryptable: {} }));
    if (keyContext !== undefined) f.keyContext = keyContext;
    return f;
  }

  read(file: string, deliveredSchema: AvroSchemaJson, payloads: readonly unknown[], userId: string): void {
    this.files.push(file);
    const cacheKey = JSON.stringify(deliveredSchema);
    let plan = this.plans.get(cacheKey);
    if (plan === undefined) this.plans.set(cacheKey, (plan = compileEncryptedValuePlan(deliveredSchema)));
    for (const payload of payloads) {
      if (subjectOfPayload(plan, payload) !== userId) continue;
      const values = encryptedValuesOf(plan, payload);
      if (values.length === 0) continue;
      this.records++;
      for (const value of values) {
        const field = this.field(value.schemaPath, value.category, value.keyContext);
        field.values++;
        this.values.push({ eventType: this.eventType, value, field });
      }
    }
  }

  result(): { finding: PartitionFinding; values: { eventType: string; value: EncryptedValue; field: FieldFinding }[] } | undefined {
    if (this.records === 0) return undefined;
    const fields = [...this.fields.values()].sort((a, b) => compare(a.schemaPath, b.schemaPath) || compare(a.category, b.category));
    return { finding: { eventType: this.eventType, period: this.period, source: this.source, files: this.files, records: this.records, fields }, values: this.values };
  }
}

/** Asks padlock for the user's keys (never creating one) and tries each value; returns padlock's answers. */
async function verifyDecryption(options: ShredReportOptions, values: readonly { eventType: string; value: EncryptedValue; field: FieldFinding }[]): Promise<KeyFinding[]> {
  const wanted = new Map<string, Set<string>>();
  for (const { value } of values) {
    let categories = wanted.get(value.keyContext);
    if (categories === undefined) wanted.set(value.keyContext, (categories = new Set()));
    categories.add(value.category);
  }
  const keys = new Map<string, KeyResult>();
  const findings: KeyFinding[] = [];
  for (const [keyContext, categories] of [...wanted].sort((a, b) => compare(a[0], b[0]))) {
    const sorted = [...categories].sort();
    let results: KeyResult[];
    try {
      results = await options.keys.getKeys(sorted.map((category) => ({ userId: options.userId, category })), { context: keyContext });
    } catch (err) {
      if (isAppError(err) && (err.code === 'CONTEXT_FORBIDDEN' || err.code === 'FORBIDDEN')) {
        throw new AppError('CONTEXT_FORBIDDEN', { message: `the report's padlock service may not use key context '${keyContext}', so it cannot check these values`, cause: err });
      }
      throw err;
    }
    sorted.forEach((category, i) => {
      const r = results[i]!;
      keys.set(`${keyContext}\u0000${category}`, r);
      findings.push({ keyContext, category, status: r.status });
    });
  }
  for (const { eventType, value, field } of values) {
    const outcome = tryDecrypt(keys.get(`${value.keyContext}\u0000${value.category}`), eventType, value);
    if (outcome === 'decrypts') field.decrypts++;
    else field.undecryptable[outcome] = (field.undecryptable[outcome] ?? 0) + 1;
  }
  return findings;
}

function tryDecrypt(key: KeyResult | undefined, eventType: string, value: EncryptedValue): 'decrypts' | Undecryptable {
  if (key === undefined || key.status === 'absent') return 'key absent';
  if (key.status === 'deleted') return 'key deleted';
  let keyId: number;
  try {
    keyId = keyIdOf(value.ciphertext);
  } catch {
    return 'fails authentication';
  }
  if (keyId !== key.key.keyId >>> 0) return 'key mismatch';
  try {
    decrypt(key.key, value.ciphertext, associatedData(eventType, value.path));
    return 'decrypts';
  } catch {
    return 'fails authentication';
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
