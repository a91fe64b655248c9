/**
 * What the emulator stores: buckets and the live generation of each object.
 * Generations are decimal strings (they exceed 2^53 in GCS's microsecond scheme).
 */
import type { ProtectionPatch } from './protection.ts';

/** A stored bucket. */
export interface BucketRecord {
  name: string;
  timeCreated: string;
  updated: string;
  metageneration: number;
  location: string;
  storageClass: string;
  labels?: Record<string, string>;
  /** Created with `enableObjectRetention=true`: objects may carry a retention (it cannot be turned off). */
  objectRetention?: true;
}

/** Object metadata a writer may set (the JSON API's writable fields we keep). */
export interface WritableObjectFields {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  metadata?: Record<string, string>;
  /** Holds or a retention asked for at insert (protection.ts); not stored as such. */
  protection?: ProtectionPatch;
}

/** An object's retention (Object Retention Lock): no delete or replace before `retainUntilTime`. */
export interface ObjectRetention {
  mode: 'Unlocked' | 'Locked';
  /** RFC 3339. */
  retainUntilTime: string;
}

/** What keeps an object from being deleted or replaced (protection.ts). */
export interface ObjectProtection {
  temporaryHold?: true;
  eventBasedHold?: true;
  retention?: ObjectRetention;
}

/** One live object generation and where its bytes are. */
export interface ObjectRecord extends WritableObjectFields, ObjectProtection {
  bucket: string;
  name: string;
  generation: string;
  metageneration: number;
  size: number;
  crc32c: string;
  md5Hash: string;
  timeCreated: string;
  updated: string;
  /** Number of source objects, for composed objects. */
  componentCount?: number;
  /** Backend id of the object's bytes. */
  blob: string;
}

export const writableFieldNames = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
] as const;

/**
 * Picks the writable fields from a client-sent resource; unknown fields are
 * ignored. Custom metadata values are stringified, as GCS does; `null`
 * entries are kept as deletions for patch.
 */
export function pickWritable(body: unknown): WritableObjectFields & { metadataPatch?: Record<string, string | null> } {
  const out: WritableObjectFields & { metadataPatch?: Record<string, string | null> } = {};
  if (typeof body !== 'object' || body === null) return out;
  const src = body as Record<string, unknown>;
  for (const f of writableFieldNames) {
    const v = src[f];
    if (typeof v === 'string') out[f] = v;
  }
  const md = src.metadata;
  if (typeof md === 'object' && md !== null) {
    const patch: Record<string, string | null> = Object.create(null);
    for (const [k, v] of Object.entries(md as Record<string, unknown>)) {
      patch[k] = v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
    }
    out.metadataPatch = patch;
  }
  return out;
}

/** Applies a metadata patch (null deletes a key); undefined when empty. */
export function applyMetadataPatch(
  current: Record<string, string> | undefined,
  patch: Record<string, string | null> | undefined,
): Record<string, string> | undefined {
  if (patch === undefined) return current;
  // No prototype: a key named __proto__ is a key like any other, not a setter.
  const next: Record<string, string> = Object.assign(Object.create(null), current);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return Object.keys(next).length === 0 ? undefined : next;
}

let lastGeneration = 0n;

/** A generation larger than every one handed out before (microseconds since the epoch, as GCS). */
export function nextGeneration(): string {
  const now = BigInt(Date.now()) * 1000n;
  lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
  return lastGeneration.toString();
}

/** Keeps generations monotonic after loading stored objects from disk. */
export function observeGeneration(generation: string): void {
  const g = BigInt(generation);
  if (g > lastGeneration) lastGeneration = g;
}
