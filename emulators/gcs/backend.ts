/**
 * Where the emulator keeps bytes and records. Two implementations: in memory
 * (`memory-backend.ts`) and a directory (`directory-backend.ts`). The store
 * decides what is live; a backend only persists what it is told.
 */
import type { Readable } from 'node:stream';
import type { BucketRecord, ObjectRecord } from './model.ts';

/** The bytes of one object being written. Not visible to readers until committed by the store. */
export interface BlobWriter {
  /** Bytes written so far. */
  readonly size: number;
  write(chunk: Buffer): Promise<void>;
  /** Drops everything after `size` bytes (a failed resumable chunk is rolled back). */
  truncate(size: number): Promise<void>;
  /** Seals the blob; returns its id. */
  finish(): Promise<string>;
  /** Discards the blob. */
  abort(): Promise<void>;
}

/** Raised by `readBlob` when the blob is gone (replaced meanwhile). */
export class BlobGoneError extends Error {
  constructor(blob: string) {
    super(`blob ${blob} is gone`);
    this.name = 'BlobGoneError';
  }
}

export interface Backend {
  /** Everything stored, at start. Also clears what a crash left half-written. */
  load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }>;
  createBlob(): BlobWriter;
  /** A stream over bytes `start..end` (inclusive) of a blob; rejects with BlobGoneError if it was deleted. */
  readBlob(blob: string, start: number, end: number): Promise<Readable>;
  /** A new blob with the same bytes. */
  copyBlob(blob: string): Promise<string>;
  deleteBlob(blob: string): Promise<void>;
  saveBucket(bucket: BucketRecord): Promise<void>;
  deleteBucket(name: string): Promise<void>;
  /** Replaces the object's record atomically. */
  saveObject(object: ObjectRecord): Promise<void>;
  deleteObject(bucket: string, name: string): Promise<void>;
  close(): Promise<void>;
}
