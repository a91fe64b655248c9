/** Building and reading the ETL's Avro files (staged, part and late files). */
import { createHash } from 'node:crypto';
import type { Bucket } from '@google-cloud/storage';
import { avroType } from '../lib/avro/long.ts';
import { crc32c, crc32cToBase64 } from '../lib/crc32c.ts';
import { deliveredFileSchema, type Period } from '../lib/partitions.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { decodeRecords, readContainer, writeContainer } from '../lib/avro/container.ts';
import { decodeStaged, encodeDelivered, encodeStaged, hasInstanceField, stagedEnvelopeSchema, syncMarkerFor, type StagedRecord } from './envelope.ts';
import { ContainerBlockReader } from './container-stream.ts';
import { compareStaged } from './merge.ts';
import { download, readRange, type ObjectInfo } from './storage-io.ts';

/** Custom metadata of a staged object: its record count (the closer's completeness check sums them without reading). */
export { STAGED_COUNT_KEY } from '../lib/staging-layout.ts';

/**
 * Blocks of staged files are small: the closing merge holds one block of every
 * staged file it merges at once.
 */
export const STAGED_BLOCK_BYTES = 64 * 1024;

/**
 * Staged files are read once, by the closer, then deleted: deflate's fastest
 * level costs ≈ 1.3 CPU µs per 500-byte record against ≈ 3.5 at the default
 * level 6, for files ≈ 13% larger (`npm run bench etl-processing`).
 */
export const STAGED_DEFLATE_LEVEL = 1;

/**
 * A staged file's bytes: envelopes sorted in the merge order (event id, then
 * fingerprint, then bytes: `compareStaged`), deflate, deterministic sync marker.
 */
export function buildStagedFile(objectName: string, eventType: string, period: Period, records: readonly StagedRecord[]): Buffer {
  const sorted = isSorted(records) ? records : [...records].sort(compareStaged);
  const encoded = new Array<Buffer>(sorted.length);
  for (let i = 0; i < sorted.length; i++) encoded[i] = encodeStaged(sorted[i]!);
  return writeContainer(encoded, {
    schema: stagedEnvelopeSchema,
    syncMarker: syncMarkerFor(objectName),
    codec: 'deflate',
    level: STAGED_DEFLATE_LEVEL,
    blockBytes: STAGED_BLOCK_BYTES,
    metadata: { 'edp.eventType': eventType, 'edp.period': period.key },
  });
}

/** In `compareStaged` order already (the stager sorts by id first): no copy, no second sort. */
function isSorted(records: readonly StagedRecord[]): boolean {
  for (let i = 1; i < records.length; i++) if (compareStaged(records[i - 1]!, records[i]!) > 0) return false;
  return true;
}

/** Records in a staged object, from its block headers (nothing is decompressed or decoded). */
export async function countStagedRecords(bucket: Bucket, object: Pick<ObjectInfo, 'name' | 'size' | 'generation'>): Promise<number> {
  const reader = new ContainerBlockReader(object.name, object.size, (offset, length) => readRange(bucket, object.name, offset, length, object.generation));
  await reader.open();
  let n = 0;
  for (let b = await reader.next({ decompress: false }); b !== undefined; b = await reader.next({ decompress: false })) n += b.count;
  return n;
}

export function parseStagedFile(bytes: Buffer): StagedRecord[] {
  const contents = readContainer(bytes);
  if (hasInstanceField(contents.schema)) return decodeRecords(contents, decodeStaged);
  // Staged before envelopes carried the accepting instance: read with the file's own schema.
  const type = avroType(contents.schema);
  return decodeRecords(contents, (buf, pos) => type.decode(buf, pos) as { value: StagedRecord; offset: number });
}

/** Reads a staged file; [] if it is gone (a closer removed it). */
export async function readStagedFile(bucket: Bucket, name: string): Promise<StagedRecord[]> {
  const bytes = await download(bucket, name);
  return bytes === undefined ? [] : parseStagedFile(bytes);
}

/** A part or late file's bytes: delivered records of one writer version, in the given order. */
export function buildDeliveredFile(
  objectName: string,
  eventType: string,
  period: Period,
  fingerprint: string,
  deliveredSchema: AvroSchemaJson,
  records: readonly StagedRecord[],
): Buffer {
  return writeContainer(
    records.map((r) => encodeDelivered(r.eventId, r.receiveTime, r.record)),
    {
      schema: deliveredFileSchema(deliveredSchema),
      syncMarker: syncMarkerFor(objectName),
      codec: 'deflate',
      metadata: { 'edp.eventType': eventType, 'edp.period': period.key, 'edp.schemaFingerprint': fingerprint },
    },
  );
}

/** Event ids in a delivered (part or late) file. */
export function deliveredIds(bytes: Buffer): string[] {
  const contents = readContainer(bytes);
  const type = avroType(contents.schema);
  return decodeRecords(contents, (buf, pos) => type.decode(buf, pos) as { value: { eventId: string }; offset: number }).map((r) => r.eventId);
}

/** The checksums GCS would report for these bytes. */
export function checksumsOf(bytes: Buffer): { md5Hash: string; crc32c: string; size: number } {
  return { md5Hash: createHash('md5').update(bytes).digest('base64'), crc32c: crc32cToBase64(crc32c(bytes)), size: bytes.length };
}
