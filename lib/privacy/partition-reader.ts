/**
 * Reads a closed partition for consumers: from Cloud Storage
 * (`gs://bucket/<type>/dt=…/hour=…`) or from a local copy of its folder. A
 * partition without `_SUCCESS` is refused (it is not complete yet); every file
 * is checked against the manifest (size, CRC32C) and decoded with the
 * manifest's delivered schema of its writer version.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readContainer, decodeRecords } from '../avro/container.ts';
import { avroType } from '../avro/long.ts';
import type { Storage } from '@google-cloud/storage';
import { AppError } from '../errors.ts';
import { crc32c, crc32cToBase64 } from '../crc32c.ts';
import { canonicalForm } from '../avro/fingerprint.ts';
import { deliveredFileSchema, parseManifest, type Manifest, type ManifestFile } from '../partitions.ts';
import type { AvroSchemaJson } from '../registry/types.ts';

export type PartitionLocation = { kind: 'gcs'; bucket: string; prefix: string } | { kind: 'local'; dir: string };

/** `gs://bucket/prefix` or a local folder path. */
export function parsePartitionLocation(arg: string): PartitionLocation {
  const m = /^gs:\/\/([^/]+)\/?(.*)$/.exec(arg);
  if (m !== null) {
    const prefix = (m[2] ?? '').replace(/\/*$/, '');
    return { kind: 'gcs', bucket: m[1]!, prefix: prefix === '' ? '' : `${prefix}/` };
  }
  return { kind: 'local', dir: arg };
}

/** Where a partition's bytes come from. */
export interface PartitionSource {
  /** The `_SUCCESS` manifest's text; undefined if the partition is not closed. */
  readManifest(): Promise<string | undefined>;
  /** One file listed in the manifest. */
  readFile(file: ManifestFile): Promise<Buffer>;
}

/** A source over Cloud Storage (or its emulator). */
export function gcsPartitionSource(storage: Storage, location: { bucket: string; prefix: string }): PartitionSource {
  const bucket = storage.bucket(location.bucket);
  return {
    async readManifest() {
      try {
        const [bytes] = await bucket.file(`${location.prefix}_SUCCESS`).download();
        return bytes.toString('utf8');
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return undefined;
        throw err;
      }
    },
    async readFile(file) {
      const [bytes] = await bucket.file(file.name).download();
      return bytes;
    },
  };
}

/**
 * A source over a local copy of the partition folder (`gcloud storage cp -r`):
 * files are found by base name, or by their full object name under `dir`.
 */
export function localPartitionSource(dir: string): PartitionSource {
  const readIfExists = async (p: string): Promise<Buffer | undefined> => {
    try {
      return await readFile(p);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return {
    async readManifest() {
      return (await readIfExists(path.join(dir, '_SUCCESS')))?.toString('utf8');
    },
    async readFile(file) {
      const bytes = (await readIfExists(path.join(dir, path.posix.basename(file.name)))) ?? (await readIfExists(path.join(dir, file.name)));
      if (bytes === undefined) throw new AppError('NOT_FOUND', { message: `${file.name} is listed in the manifest but not in ${dir}` });
      return bytes;
    },
  };
}

/** One delivered record: the payload is in the delivered schema's shape (ciphertexts as Buffers). */
export interface DeliveredRecord {
  eventId: string;
  receiveTime: number;
  payload: unknown;
}

export interface PartitionFile {
  file: ManifestFile;
  deliveredSchema: AvroSchemaJson;
  records: DeliveredRecord[];
}

/** The manifest of a closed partition; AppError PRECONDITION_FAILED if it has no `_SUCCESS`. */
export async function readClosedManifest(source: PartitionSource): Promise<Manifest> {
  const text = await source.readManifest();
  if (text === undefined) {
    throw new AppError('PRECONDITION_FAILED', { message: 'Partition is not closed (no _SUCCESS manifest); consumers read closed partitions only' });
  }
  return parseManifest(text);
}

/** Reads, verifies and decodes one file of a partition. */
export async function readPartitionFile(source: PartitionSource, manifest: Manifest, file: ManifestFile): Promise<PartitionFile> {
  const deliveredSchema = manifest.deliveredSchemas[file.schemaFingerprint] as AvroSchemaJson | undefined;
  if (deliveredSchema === undefined) {
    throw new AppError('BODY_INVALID', { message: `manifest has no delivered schema for ${file.schemaFingerprint}` });
  }
  const bytes = await source.readFile(file);
  if (bytes.length !== file.size || crc32cToBase64(crc32c(bytes)) !== file.crc32c) {
    throw new AppError('PRECONDITION_FAILED', { message: `${file.name} does not match its manifest entry (size or CRC32C)` });
  }
  const records = decodeContainer(bytes, deliveredFileSchema(deliveredSchema));
  if (records.length !== file.recordCount) {
    throw new AppError('PRECONDITION_FAILED', { message: `${file.name} holds ${records.length} records, its manifest entry says ${file.recordCount}` });
  }
  return { file, deliveredSchema, records };
}

/** Every file of a closed partition, in manifest order. */
export async function* readPartition(source: PartitionSource): AsyncGenerator<PartitionFile & { manifest: Manifest }> {
  const manifest = await readClosedManifest(source);
  for (const file of manifest.files) yield { manifest, ...(await readPartitionFile(source, manifest, file)) };
}

/** Decodes an Avro object-container file whose header schema must be `expected` (canonically). */
function decodeContainer(bytes: Buffer, expected: AvroSchemaJson): DeliveredRecord[] {
  const contents = readContainer(bytes);
  if (canonicalForm(contents.schema) !== canonicalForm(expected)) {
    throw new AppError('PRECONDITION_FAILED', { message: "file's writer schema is not the manifest's delivered schema" });
  }
  const type = avroType(expected);
  try {
    return decodeRecords(contents, (buf, pos) => type.decode(buf, pos) as { value: DeliveredRecord; offset: number });
  } catch (err) {
    throw err instanceof AppError ? err : new AppError('DECODE_FAILED', { cause: err });
  }
}
