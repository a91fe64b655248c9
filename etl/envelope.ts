/**
 * Record layouts the ETL writes: the staged envelope (staging files) and the
 * delivered record (partition and late files, `deliveredFileSchema` in
 * lib/partitions.ts). Both are built by concatenating Avro encodings, so the
 * transformed payload bytes are spliced in without being re-encoded.
 */
import { createHash } from 'node:crypto';
import { writeLong } from '../lib/avro/binary.ts';
import { avroType } from '../lib/avro/long.ts';

/**
 * Staged envelope: the transformed payload (Avro binary with the delivered
 * schema of its writer version) plus what closing needs: the id to dedup on,
 * the receive time, the writer fingerprint (to pick the delivered schema and
 * the output file set) and the transform's per-record stats.
 */
export const stagedEnvelopeSchema = {
  type: 'record',
  name: 'edp_StagedEvent',
  fields: [
    { name: 'eventId', type: 'string' },
    { name: 'receiveTime', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'schemaFingerprint', type: 'string' },
    { name: 'stats', type: { type: 'map', values: 'long' } },
    { name: 'record', type: 'bytes' },
    // Added for per-instance completeness: staged files written before it lack it (read as '').
    { name: 'instanceId', type: 'string', default: '' },
  ],
} as const;

/** Whether a staged container's writer schema has `instanceId` (files staged before it was added do not). */
export function hasInstanceField(schema: unknown): boolean {
  const fields = (schema as { fields?: unknown } | undefined)?.fields;
  return Array.isArray(fields) && fields.some((f) => (f as { name?: unknown }).name === 'instanceId');
}

export interface StagedRecord {
  eventId: string;
  receiveTime: number;
  schemaFingerprint: string;
  stats: Record<string, number>;
  /** Avro binary of the payload with the delivered schema of `schemaFingerprint`'s version. */
  record: Buffer;
  /** The event-service instance that accepted the event (message attribute); absent for a direct producer's event. */
  instanceId?: string;
}

const stagedType = avroType(stagedEnvelopeSchema);

/** One staged record's Avro binary, written into one allocation (the hot path of staging: no other object per record). */
export function encodeStaged(r: StagedRecord): Buffer {
  const idLength = Buffer.byteLength(r.eventId, 'utf8');
  const instance = r.instanceId ?? '';
  let size = 10 + idLength + 10 + 10 + r.schemaFingerprint.length + 10 + 10 + r.record.length + 10 + Buffer.byteLength(instance, 'utf8');
  let entries = 0;
  for (const k in r.stats) {
    if (!Object.hasOwn(r.stats, k)) continue;
    entries++;
    size += 20 + Buffer.byteLength(k, 'utf8');
  }
  const buf = Buffer.allocUnsafe(size);
  let pos = writeLong(buf, 0, idLength);
  pos += buf.write(r.eventId, pos, 'utf8');
  pos = writeLong(buf, pos, r.receiveTime);
  pos = writeLong(buf, pos, r.schemaFingerprint.length);
  pos += buf.write(r.schemaFingerprint, pos, 'latin1');
  if (entries > 0) {
    pos = writeLong(buf, pos, entries);
    for (const k in r.stats) {
      if (!Object.hasOwn(r.stats, k)) continue;
      pos = writeLong(buf, pos, Buffer.byteLength(k, 'utf8'));
      pos += buf.write(k, pos, 'utf8');
      pos = writeLong(buf, pos, r.stats[k]!);
    }
  }
  pos = writeLong(buf, pos, 0);
  pos = writeLong(buf, pos, r.record.length);
  pos += r.record.copy(buf, pos);
  pos = writeLong(buf, pos, Buffer.byteLength(instance, 'utf8'));
  pos += buf.write(instance, pos, 'utf8');
  return buf.subarray(0, pos);
}

export function decodeStaged(buf: Buffer, pos: number): { value: StagedRecord; offset: number } {
  const r = stagedType.decode(buf, pos) as { value: StagedRecord; offset: number };
  if (r.value.instanceId === '') delete r.value.instanceId;
  return r;
}

/** One delivered record's Avro binary: event id, receive time, then the payload bytes as they are. */
export function encodeDelivered(eventId: string, receiveTime: number, payload: Buffer): Buffer {
  const id = Buffer.from(eventId, 'utf8');
  const buf = Buffer.allocUnsafe(20 + id.length + payload.length);
  let pos = writeLong(buf, 0, id.length);
  pos += id.copy(buf, pos);
  pos = writeLong(buf, pos, receiveTime);
  pos += payload.copy(buf, pos);
  return buf.subarray(0, pos);
}

/** Deterministic 16-byte sync marker for a file, so a re-run writes identical bytes. */
export function syncMarkerFor(objectName: string): Buffer {
  return createHash('sha256').update(`edp-sync:${objectName}`).digest().subarray(0, 16);
}

/** Hex SHA-256 of the sorted distinct ids: the content-derived name of a staged or late file. */
export function idSetHash(ids: Iterable<string>, salt = ''): string {
  const sorted = [...new Set(ids)].sort();
  const h = createHash('sha256').update(salt);
  // One update of `id\n…id\n` (the same bytes as an update per id, without 2 native calls per id).
  if (sorted.length > 0) h.update(`${sorted.join('\n')}\n`);
  return h.digest('hex');
}

/** Byte-wise comparison of ids (UTF-16 order, same in every run). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
