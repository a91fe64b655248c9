/** Building and reading the ETL's Avro files (staged, part and late files). */
import { createHash } from 'node:crypto';
import type { Bucket } from '@google-cloud/storage';
import { avroType } from '../lib/avro/long.ts';
import { crc32c, crc32cToBase64 } from '../lib/crc32c.ts';
import { deliveredFileSchema, type Period } from '../lib/partitions.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { decodeRecords, readContainer, writeContainer } from './avro-container.ts';
import { decodeStaged, encodeDelivered, encodeStaged, stagedEnvelopeSchema, syncMarkerFor, type StagedRecord } from './envelope.ts';
import { download } from './storage-io.ts';

/** A staged file's bytes: envelopes sorted by event id, deflate, deterministic sync marker. */
export function buildStagedFile(objectName: string, eventType: string, period: Period, records: readonly StagedRecord[]): Buffer {
  return writeContainer(records.map(encodeStaged), {
    schema: stagedEnvelopeSchema,
    syncMarker: syncMarkerFor(objectName),
    codec: 'deflate',
    metadata: { 'edp.eventType': eventType, 'edp.period': period.key },
  });
}

export function parseStagedFile(bytes: Buffer): StagedRecord[] {
  return decodeRecords(readContainer(bytes), decodeStaged);
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
