/**
 * The ETL's field-encryption transform (DESIGN.md §3): the `RecordTransform`
 * that delivers personal fields encrypted under each subject's key, fetched
 * from padlock once per batch (create-if-absent). Padlock unavailable, or
 * refusing the ETL, throws a retryable AppError: the batch is not acked and
 * nothing is delivered in clear. Stats per record: `encryptedFields`,
 * `nulledFields` (keys deleted or no subject), summed into the manifest.
 */
import type { Logger } from '../lib/logger.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';
import type { KeySource } from '../lib/privacy/keys.ts';
import { RecordEncryptor } from '../lib/privacy/record-encryptor.ts';
import type { RecordTransform, TransformInput, TransformOutput } from './transform.ts';

export interface EncryptionTransformOptions {
  /** A padlock client (lib/padlock-client) authenticated as the ETL's service. */
  keys: KeySource;
  /** Padlock key context to encrypt under; `events` if absent (see lib/privacy/README.md). */
  keyContext?: string;
  catalogue?: SemanticCatalogue;
  logger?: Logger;
}

/** The transform that encrypts personal fields. */
export function createEncryptionTransform(options: EncryptionTransformOptions): RecordTransform {
  const encryptor = new RecordEncryptor(options);
  return {
    deliveredSchema: (source: AvroSchemaJson): AvroSchemaJson => encryptor.deliveredSchema(source),
    async transformBatch(eventType: string, records: TransformInput[]): Promise<TransformOutput[]> {
      const encrypted = await encryptor.encryptBatch(
        eventType,
        records.map((r) => ({ record: r.record, schema: r.version.schema, fingerprint: r.version.fingerprint })),
      );
      return encrypted.map((e) => ({ record: e.record, stats: { encryptedFields: e.stats.encryptedFields, nulledFields: e.stats.nulledFields } }));
    },
  };
}
