/**
 * The emulator's state: buckets and the live generation of every object,
 * indexed in memory (for both backends) and persisted through a Backend.
 * Preconditions are checked and generations assigned synchronously, so
 * concurrent writers to one object are serialised exactly as in GCS; each
 * object's persistence steps run in order on a per-object chain.
 */
import type { Readable } from 'node:stream';
import { BlobGoneError, type Backend, type BlobWriter } from './backend.ts';
import { errors } from './gcs-errors.ts';
import { listPage, compareNames, type ListQuery } from './listing.ts';
import {
  applyMetadataPatch,
  nextGeneration,
  observeGeneration,
  writableFieldNames,
  type BucketRecord,
  type ObjectRecord,
  type WritableObjectFields,
} from './model.ts';
import { checkPreconditions, type Preconditions } from './preconditions.ts';
import { nextProtection, protectionAtInsert, protectionFailure, type ProtectionPatch } from './protection.ts';

interface BucketState {
  record: BucketRecord;
  objects: Map<string, ObjectRecord>;
  /** Object names in byte order; rebuilt lazily after a name is added or removed. */
  sorted: string[] | undefined;
}

/** Bytes and checksums of a finished upload, compose or copy, about to become an object. */
export interface ObjectDraft {
  blob: string;
  size: number;
  crc32c: string;
  md5Hash: string;
  fields: WritableObjectFields;
  componentCount?: number;
}

export interface ListObjectsResult {
  items: ObjectRecord[];
  prefixes: string[];
  nextPageToken?: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

export class Store {
  private readonly buckets = new Map<string, BucketState>();
  private readonly creating = new Set<string>();
  private readonly chains = new Map<string, Promise<void>>();

  private constructor(private readonly backend: Backend) {}

  /** Opens a store over a backend, loading what it holds. */
  static async open(backend: Backend): Promise<Store> {
    const store = new Store(backend);
    const { buckets, objects } = await backend.load();
    for (const b of buckets) store.buckets.set(b.name, { record: b, objects: new Map(), sorted: undefined });
    for (const o of objects) {
      store.buckets.get(o.bucket)?.objects.set(o.name, o);
      observeGeneration(o.generation);
    }
    return store;
  }

  createBlob(): BlobWriter {
    return this.backend.createBlob();
  }

  // ---- buckets

  async createBucket(
    name: string,
    fields: { location?: string; storageClass?: string; labels?: Record<string, string>; objectRetention?: boolean },
  ): Promise<BucketRecord> {
    if (!BUCKET_NAME.test(name) || name.includes('..')) throw errors.invalid(`Invalid bucket name: '${name}'`);
    if (this.buckets.has(name) || this.creating.has(name)) throw errors.bucketExists();
    const now = new Date().toISOString();
    const record: BucketRecord = {
      name,
      timeCreated: now,
      updated: now,
      metageneration: 1,
      location: (fields.location ?? 'US').toUpperCase(),
      storageClass: fields.storageClass ?? 'STANDARD',
      ...(fields.labels === undefined ? {} : { labels: fields.labels }),
      ...(fields.objectRetention === true ? { objectRetention: true as const } : {}),
    };
    this.creating.add(name);
    try {
      await this.backend.saveBucket(record);
    } finally {
      this.creating.delete(name);
    }
    this.buckets.set(name, { record, objects: new Map(), sorted: undefined });
    return record;
  }

  getBucket(name: string): BucketRecord {
    return this.bucket(name).record;
  }

  listBuckets(): BucketRecord[] {
    return [...this.buckets.values()].map((b) => b.record).sort((a, b) => compareNames(a.name, b.name));
  }

  async patchBucket(name: string, labels: Record<string, string | null> | undefined, pre: Preconditions): Promise<BucketRecord> {
    const state = this.bucket(name);
    if (pre.ifMetagenerationMatch !== undefined && pre.ifMetagenerationMatch !== String(state.record.metageneration)) {
      throw errors.preconditionFailed();
    }
    const merged = applyMetadataPatch(state.record.labels, labels);
    const record: BucketRecord = { ...state.record, metageneration: state.record.metageneration + 1, updated: new Date().toISOString() };
    if (merged === undefined) delete record.labels;
    else record.labels = merged;
    state.record = record;
    await this.backend.saveBucket(record);
    return record;
  }

  async deleteBucket(name: string): Promise<void> {
    const state = this.bucket(name);
    if (state.objects.size > 0) throw errors.bucketNotEmpty();
    this.buckets.delete(name);
    await this.backend.deleteBucket(name);
  }

  // ---- objects

  /** The live object; with `generation`, only if that is the live generation. */
  getObject(bucket: string, name: string, generation?: string): ObjectRecord {
    const rec = this.bucket(bucket).objects.get(name);
    if (rec === undefined || (generation !== undefined && rec.generation !== generation)) throw errors.noSuchObject(bucket, name);
    return rec;
  }

  /** The live object or undefined (the bucket must exist). */
  findObject(bucket: string, name: string): ObjectRecord | undefined {
    return this.bucket(bucket).objects.get(name);
  }

  listObjects(bucket: string, q: ListQuery): ListObjectsResult {
    const state = this.bucket(bucket);
    state.sorted ??= [...state.objects.keys()].sort(compareNames);
    const page = listPage(state.sorted, q);
    const items = page.names.map((n) => state.objects.get(n)).filter((o): o is ObjectRecord => o !== undefined);
    return { items, prefixes: page.prefixes, ...(page.nextPageToken === undefined ? {} : { nextPageToken: page.nextPageToken }) };
  }

  /**
   * Makes a draft the live generation of `bucket/name` if `pre` holds, then
   * persists it and drops the replaced generation's bytes. A held or retained
   * live generation is not replaced (403). On failure the draft's bytes are discarded.
   */
  async commitObject(bucket: string, name: string, draft: ObjectDraft, pre: Preconditions): Promise<ObjectRecord> {
    const state = this.buckets.get(bucket);
    const current = state?.objects.get(name);
    const nowMs = Date.now();
    let failure = state === undefined ? errors.noSuchBucket() : checkPreconditions(pre, current);
    if (failure === undefined && current !== undefined) failure = protectionFailure(current, nowMs);
    let protection = {};
    if (failure === undefined && state !== undefined && draft.fields.protection !== undefined) {
      try {
        protection = protectionAtInsert(state.record, draft.fields.protection, nowMs);
      } catch (err) {
        failure = err as typeof failure;
      }
    }
    if (failure !== undefined || state === undefined) {
      await this.backend.deleteBlob(draft.blob);
      throw failure ?? errors.noSuchBucket();
    }
    const now = new Date(nowMs).toISOString();
    const rec: ObjectRecord = {
      bucket,
      name,
      generation: nextGeneration(),
      metageneration: 1,
      size: draft.size,
      crc32c: draft.crc32c,
      md5Hash: draft.md5Hash,
      timeCreated: now,
      updated: now,
      ...cleanFields(draft.fields),
      ...(draft.componentCount === undefined ? {} : { componentCount: draft.componentCount }),
      ...protection,
      blob: draft.blob,
    };
    if (current === undefined) state.sorted = undefined;
    state.objects.set(name, rec);
    await this.persist(bucket, name, async () => {
      await this.backend.saveObject(rec);
      if (current !== undefined) await this.backend.deleteBlob(current.blob);
    });
    return rec;
  }

  /**
   * Patches (or, with `replace`, replaces) the writable metadata, holds and
   * retention (`overrideUnlockedRetention` allows shortening an Unlocked one); bumps the metageneration.
   */
  async updateObject(
    bucket: string,
    name: string,
    generation: string | undefined,
    patch: WritableObjectFields & { metadataPatch?: Record<string, string | null>; protection?: ProtectionPatch },
    pre: Preconditions,
    replace: boolean,
    overrideUnlockedRetention = false,
  ): Promise<ObjectRecord> {
    const current = this.getObject(bucket, name, generation);
    const failure = checkPreconditions(pre, current);
    if (failure !== undefined) throw failure;
    const nowMs = Date.now();
    const protection = nextProtection(this.bucket(bucket).record, current, patch.protection ?? {}, { override: overrideUnlockedRetention, nowMs, replace });
    const next: ObjectRecord = { ...current, metageneration: current.metageneration + 1, updated: new Date(nowMs).toISOString() };
    delete next.temporaryHold;
    delete next.eventBasedHold;
    delete next.retention;
    Object.assign(next, protection);
    for (const f of writableFieldNames) {
      if (patch[f] !== undefined) next[f] = patch[f];
      else if (replace) delete next[f];
    }
    const metadata = applyMetadataPatch(replace ? undefined : current.metadata, patch.metadataPatch);
    if (metadata === undefined) delete next.metadata;
    else next.metadata = metadata;
    this.bucket(bucket).objects.set(name, next);
    await this.persist(bucket, name, () => this.backend.saveObject(next));
    return next;
  }

  async deleteObject(bucket: string, name: string, generation: string | undefined, pre: Preconditions): Promise<void> {
    const state = this.bucket(bucket);
    const current = this.getObject(bucket, name, generation);
    const failure = checkPreconditions(pre, current) ?? protectionFailure(current, Date.now());
    if (failure !== undefined) throw failure;
    state.objects.delete(name);
    state.sorted = undefined;
    await this.persist(bucket, name, async () => {
      await this.backend.deleteObject(bucket, name);
      await this.backend.deleteBlob(current.blob);
    });
  }

  /**
   * Opens bytes `start..end` of an object. If its generation is replaced
   * between the lookup and the open, reads the new one (unless a generation was asked for).
   */
  async openObject(
    bucket: string,
    name: string,
    generation: string | undefined,
    range: (rec: ObjectRecord) => { start: number; end: number },
  ): Promise<{ record: ObjectRecord; start: number; end: number; stream: Readable }> {
    for (let attempt = 0; ; attempt++) {
      const record = this.getObject(bucket, name, generation);
      const { start, end } = range(record);
      try {
        const stream = await this.backend.readBlob(record.blob, start, end);
        return { record, start, end, stream };
      } catch (err) {
        if (!(err instanceof BlobGoneError) || attempt >= 5) throw err;
      }
    }
  }

  /**
   * A new blob holding a copy of an object's bytes (for copy/rewrite), and
   * the record it copied; `check` vets the source (its preconditions).
   */
  async copyObjectBytes(
    bucket: string,
    name: string,
    generation: string | undefined,
    check: (rec: ObjectRecord) => void,
  ): Promise<{ record: ObjectRecord; blob: string }> {
    for (let attempt = 0; ; attempt++) {
      const record = this.getObject(bucket, name, generation);
      check(record);
      try {
        return { record, blob: await this.backend.copyBlob(record.blob) };
      } catch (err) {
        if (!(err instanceof BlobGoneError) || attempt >= 5) throw err;
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.chains.values()]);
    await this.backend.close();
  }

  private bucket(name: string): BucketState {
    const b = this.buckets.get(name);
    if (b === undefined) throw errors.noSuchBucket();
    return b;
  }

  /** Runs `step` after the object's earlier persistence steps; resolves when it is done. */
  private persist(bucket: string, name: string, step: () => Promise<void>): Promise<void> {
    const key = `${bucket}\u0000${name}`;
    const prev = this.chains.get(key);
    const run = prev === undefined ? step() : prev.then(step, step);
    const tail = run.catch(() => {});
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return run;
  }
}

function cleanFields(fields: WritableObjectFields): WritableObjectFields {
  const out: WritableObjectFields = {};
  for (const f of writableFieldNames) if (fields[f] !== undefined) out[f] = fields[f];
  if (fields.metadata !== undefined && Object.keys(fields.metadata).length > 0) out.metadata = fields.metadata;
  return out;
}
