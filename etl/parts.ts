/**
 * Part files streamed out of the merge: one `PartSequence` per writer version
 * writes `part-NNNNN.avro` from its first index on, starting a new part every
 * `partMaxRecords`. Each part is uploaded as it is built (one block in
 * memory), replacing a part of the same name a crashed run left, and checked
 * against the size and checksums GCS reports.
 */
import { createHash } from 'node:crypto';
import type { Bucket } from '@google-cloud/storage';
import { crc32cToBase64, crc32cUpdate } from '../lib/crc32c.ts';
import { AppError } from '../lib/errors.ts';
import { deliveredFileSchema, partObjectName, type ManifestFile, type Period } from '../lib/partitions.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { ContainerStreamWriter } from './container-stream.ts';
import { syncMarkerFor } from './envelope.ts';
import type { StagedCursor } from './merge.ts';
import { openUpload, statObject, type Upload } from './storage-io.ts';

export interface PartTarget {
  data: Bucket;
  eventType: string;
  period: Period;
  fingerprint: string;
  deliveredSchema: AvroSchemaJson;
  partMaxRecords: number;
  /** The object name of part `index`; default `part-NNNNN.avro` (`partObjectName`). */
  partName?: (index: number) => string;
  /** Throws if the partition was closed meanwhile (a part of ours must then not be replaced). */
  assertOpen(): Promise<void>;
  /** Called after each part is stored and verified. */
  onPart(file: ManifestFile): Promise<void>;
}

interface OpenPart {
  name: string;
  upload: Upload;
  writer: ContainerStreamWriter;
  /** Checksums of the bytes handed to the upload. */
  sum: { md5: ReturnType<typeof createHash>; crc: number; size: number };
}

export class PartSequence {
  private part: OpenPart | undefined;
  private index: number;

  constructor(
    private readonly target: PartTarget,
    firstIndex: number,
  ) {
    this.index = firstIndex;
  }

  /** Appends the record under `at` (the merge's next unique record of this version); a promise only when it waits on I/O. */
  append(at: StagedCursor): void | Promise<void> {
    const part = this.part;
    if (part === undefined) return this.open().then(() => this.append(at));
    const wrote = at.writeDelivered(part.writer);
    if (part.writer.records < this.target.partMaxRecords) return wrote;
    return wrote === undefined ? this.close() : wrote.then(() => this.close());
  }

  /** Stores the last part. */
  async finish(): Promise<void> {
    if (this.part !== undefined) await this.close();
  }

  /** Abandons the part being written (a failed close). */
  abort(): void {
    this.part?.upload.abort();
    this.part = undefined;
  }

  private async open(): Promise<OpenPart> {
    const t = this.target;
    const index = this.index++;
    const name = t.partName === undefined ? partObjectName(t.eventType, t.period, index) : t.partName(index);
    const there = await statObject(t.data, name);
    if (there !== undefined) await t.assertOpen();
    const upload = openUpload(t.data, name, { ifGenerationMatch: there?.generation ?? 0, contentType: 'avro/binary' });
    const sum: OpenPart['sum'] = { md5: createHash('md5'), crc: 0, size: 0 };
    const writer = new ContainerStreamWriter(
      {
        schema: deliveredFileSchema(t.deliveredSchema),
        syncMarker: syncMarkerFor(name),
        codec: 'deflate',
        metadata: { 'edp.eventType': t.eventType, 'edp.period': t.period.key, 'edp.schemaFingerprint': t.fingerprint },
      },
      (chunk) => {
        sum.md5.update(chunk);
        sum.crc = crc32cUpdate(sum.crc, chunk);
        sum.size += chunk.length;
        return upload.write(chunk);
      },
    );
    const part: OpenPart = { name, upload, writer, sum };
    this.part = part;
    return part;
  }

  private async close(): Promise<void> {
    const part = this.part!;
    this.part = undefined;
    await part.writer.end();
    if ((await part.upload.end()) === 'exists') {
      throw new AppError('CONFLICT', { message: `part ${part.name} was written by another closer meanwhile` });
    }
    const info = await statObject(this.target.data, part.name);
    const local = { size: part.sum.size, md5Hash: part.sum.md5.digest('base64'), crc32c: crc32cToBase64(part.sum.crc) };
    if (info === undefined || !sameBytes(info, local)) {
      throw new AppError('STORAGE_FAILED', { message: `part ${part.name} does not hold the bytes written` });
    }
    await this.target.onPart({
      name: part.name,
      size: info.size,
      crc32c: info.crc32c,
      md5Hash: info.md5Hash,
      recordCount: part.writer.records,
      schemaFingerprint: this.target.fingerprint,
    });
  }
}

/** Whether GCS's figures for an object match ours (md5 when it reports one, else crc32c). */
export function sameBytes(info: { size: number; md5Hash: string; crc32c: string }, local: { size: number; md5Hash: string; crc32c: string }): boolean {
  if (info.size !== local.size) return false;
  if (info.md5Hash !== '') return info.md5Hash === local.md5Hash;
  return info.crc32c === '' || info.crc32c === local.crc32c;
}
