/**
 * The hook between decode and stage, where field encryption plugs in. A
 * thrown retryable AppError means "don't ack, back off"; a non-retryable one
 * dead-letters the batch's records. A record the transform refuses on its own
 * (`rejected`) is dead-lettered alone and the rest of the batch goes on.
 */
import type avro from 'avsc';
import type { ErrorCode } from '../lib/errors.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';

export interface TransformInput {
  record: unknown;
  version: SchemaVersion;
  eventId: string;
}

export interface TransformOutput {
  /** The record as it is delivered (valid against `deliveredSchema(version.schema)`). */
  record: unknown;
  /** Per-record counters (e.g. `nulledFields`), summed into the manifest after dedup. */
  stats?: Record<string, number>;
  /** Set when this record cannot be delivered, ever (e.g. its subject is not a user id): it is dead-lettered with this reason. */
  rejected?: { code: ErrorCode; reason: string };
}

/**
 * A message's payload as received: Avro binary that should hold one datum of
 * `version`'s schema. The pipeline has checked that it holds exactly one,
 * unless the transform `checksEncoded`.
 */
export interface EncodedInput {
  bytes: Buffer;
  version: SchemaVersion;
  eventId: string;
  /** avsc types of the writer and delivered schemas (lib/avro/long.ts), for a transform that needs to decode or re-encode. */
  writerType: avro.Type;
  deliveredType: avro.Type;
}

export interface EncodedOutput {
  /** Avro binary of the record in `deliveredSchema(version.schema)`; absent when rejected. */
  payload?: Buffer;
  stats?: Record<string, number>;
  rejected?: { code: ErrorCode; reason: string };
}

export interface RecordTransform {
  /** The delivered schema of a source (writer) schema, e.g. personal fields as `bytes`. */
  deliveredSchema(source: AvroSchemaJson): AvroSchemaJson;
  /** Transforms a batch (same order, same length), so keys for many subjects are fetched at once. */
  transformBatch(eventType: string, records: TransformInput[]): Promise<TransformOutput[]>;
  /**
   * Optional, the same transform from message bytes to delivered bytes. When
   * a transform has it the pipeline uses it instead of `transformBatch` and
   * never decodes records into objects (decode once, untouched bytes kept).
   */
  transformEncodedBatch?(eventType: string, records: EncodedInput[]): Promise<EncodedOutput[]>;
  /**
   * Set when `transformEncodedBatch` itself rejects (`notOneDatum`) bytes that
   * are not exactly one datum of their writer schema, as its byte scan walks
   * every message anyway: the pipeline then does not walk each one first.
   */
  readonly checksEncoded?: boolean;
}

/** Why a message whose bytes are not exactly one datum of its writer schema is dead-lettered. */
export const notOneDatum = { code: 'DECODE_FAILED', reason: 'record does not decode with its writer schema' } as const satisfies { code: ErrorCode; reason: string };

/** Delivers records as produced. The pipeline recognises it and keeps the original bytes. */
export const identityTransform: RecordTransform = {
  deliveredSchema: (source) => source,
  transformBatch: async (_eventType, records) => records.map((r) => ({ record: r.record })),
};
