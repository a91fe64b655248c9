/**
 * Test and benchmark helpers: Avro container files written with avsc's own
 * container encoder (BlockEncoder) over exact-long types, uploaded to the GCS
 * emulator. Not imported by the emulator itself.
 */
import avro from 'avsc';
import type { Storage } from '@google-cloud/storage';
import { avroType } from '../../lib/avro/long.ts';

/** Encodes `records` as an Avro object container file with `schema` in its header. */
export async function avroContainer(schema: object, records: readonly unknown[], codec: 'null' | 'deflate' = 'deflate', blockSize?: number): Promise<Buffer> {
  const encoder = new avro.streams.BlockEncoder(avroType(schema), { codec, ...(blockSize === undefined ? {} : { blockSize }) });
  // The header carries the schema as written: types built through avroType's
  // long hook would export `{"type":"long","logicalType":…}` as a bare "long".
  Object.assign(encoder, { _schema: schema });
  const chunks: Buffer[] = [];
  encoder.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    encoder.on('end', resolve);
    encoder.on('error', reject);
  });
  for (const r of records) encoder.write(r);
  encoder.end();
  await done;
  return Buffer.concat(chunks);
}

/** Uploads `bytes` as a new object (fails if it exists). */
export async function putObject(storage: Storage, bucket: string, name: string, bytes: Buffer): Promise<void> {
  await storage.bucket(bucket).file(name).save(bytes, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 }, contentType: 'application/avro' });
}
