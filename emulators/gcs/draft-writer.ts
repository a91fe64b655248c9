/**
 * Writes an object's bytes while computing its CRC32C and MD5, so every
 * object has both checksums without reading it back. Supports marks and
 * rollback, for resumable chunks that fail half-way.
 */
import { createHash, type Hash } from 'node:crypto';
import type { BlobWriter } from './backend.ts';
import { crc32cToBase64, crc32cUpdate } from '../../lib/crc32c.ts';
import { errors } from './gcs-errors.ts';
import type { WritableObjectFields } from './model.ts';
import type { ObjectDraft } from './store.ts';

export interface DraftMark {
  size: number;
  crc: number;
  md5: Hash;
}

export class DraftWriter {
  private crc = 0;
  private md5: Hash = createHash('md5');

  constructor(private readonly blob: BlobWriter) {}

  get size(): number {
    return this.blob.size;
  }

  async write(chunk: Buffer): Promise<void> {
    this.crc = crc32cUpdate(this.crc, chunk);
    this.md5.update(chunk);
    await this.blob.write(chunk);
  }

  /** Copies every chunk of `source` in. */
  async writeAll(source: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of source) await this.write(chunk);
  }

  mark(): DraftMark {
    return { size: this.blob.size, crc: this.crc, md5: this.md5.copy() };
  }

  async rollback(mark: DraftMark): Promise<void> {
    await this.blob.truncate(mark.size);
    this.crc = mark.crc;
    this.md5 = mark.md5.copy();
  }

  /** Checksums of the bytes so far, base64 as GCS shows them. */
  checksums(): { crc32c: string; md5Hash: string } {
    return { crc32c: crc32cToBase64(this.crc), md5Hash: this.md5.copy().digest('base64') };
  }

  /** Seals the bytes into a draft for `Store.commitObject`. */
  async finish(fields: WritableObjectFields, componentCount?: number): Promise<ObjectDraft> {
    const sums = this.checksums();
    const size = this.blob.size;
    const blob = await this.blob.finish();
    return { blob, size, ...sums, fields, ...(componentCount === undefined ? {} : { componentCount }) };
  }

  async abort(): Promise<void> {
    await this.blob.abort();
  }
}

/**
 * Checks an `X-Goog-Hash: crc32c=…,md5=…` header a client sent with the
 * last bytes of an upload; throws 400 as GCS does on a mismatch.
 */
export function verifyClientHashes(header: string | string[] | undefined, actual: { crc32c: string; md5Hash: string }): void {
  if (header === undefined) return;
  const values = Array.isArray(header) ? header.join(',') : header;
  for (const pair of values.split(',')) {
    const at = pair.indexOf('=');
    if (at === -1) continue;
    const kind = pair.slice(0, at).trim().toLowerCase();
    const value = pair.slice(at + 1).trim();
    if (kind === 'crc32c' && value !== actual.crc32c) {
      throw errors.invalid(`Provided CRC32C "${value}" doesn't match calculated CRC32C "${actual.crc32c}".`);
    }
    if (kind === 'md5' && value !== actual.md5Hash) {
      throw errors.invalid(`Provided MD5 hash "${value}" doesn't match calculated MD5 hash "${actual.md5Hash}".`);
    }
  }
}
