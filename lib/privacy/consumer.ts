/**
 * What a consumer runs: read a closed partition, decrypt what its service is
 * entitled to, and get events as JSON-ready values (the decrypt CLI prints
 * them as JSON lines).
 */
import type { Manifest } from '../partitions.ts';
import type { DecryptionStats, RecordDecryptor, UnreadableReason } from './decryptor.ts';
import { readClosedManifest, readPartitionFile, type PartitionSource } from './partition-reader.ts';

/** One delivered event after decryption. */
export interface DecryptedEvent {
  eventId: string;
  /** ISO-8601 UTC. */
  receiveTime: string;
  schemaFingerprint: string;
  /** The payload with decrypted values, or `EncryptedMarker`s where undecryptable. */
  payload: unknown;
}

export interface PartitionDecryption {
  manifest: Manifest;
  events: DecryptedEvent[];
  stats: DecryptionStats;
}

/** Decrypts every event of a closed partition (refused if it has no `_SUCCESS`). */
export async function decryptPartition(source: PartitionSource, decryptor: RecordDecryptor): Promise<PartitionDecryption> {
  const stats: DecryptionStats = { decrypted: 0, unreadable: {} };
  const events: DecryptedEvent[] = [];
  const manifest = await readClosedManifest(source);
  for (const entry of manifest.files) {
    const file = await readPartitionFile(source, manifest, entry);
    const result = await decryptor.decryptBatch(
      manifest.eventType,
      file.deliveredSchema,
      file.records.map((r) => r.payload),
    );
    stats.decrypted += result.stats.decrypted;
    for (const [reason, n] of Object.entries(result.stats.unreadable) as [UnreadableReason, number][]) {
      stats.unreadable[reason] = (stats.unreadable[reason] ?? 0) + n;
    }
    file.records.forEach((r, i) => {
      events.push({
        eventId: r.eventId,
        receiveTime: new Date(r.receiveTime).toISOString(),
        schemaFingerprint: entry.schemaFingerprint,
        payload: result.records[i],
      });
    });
  }
  return { manifest, events, stats };
}

/**
 * A JSON-ready copy: Buffers (bytes, fixed) as base64 strings, Dates as ISO.
 * Longs stay numbers, or bigints beyond ±2^53: print them with {@link jsonLine}.
 */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
    return out;
  }
  return value;
}

/**
 * One JSON line of `value` (after {@link toJsonValue}). A long is a JSON number
 * with its exact digits, as in Avro's JSON encoding, also beyond ±2^53 where
 * `JSON.stringify` cannot write a bigint (read those with a lossless JSON parser).
 */
export function jsonLine(value: unknown): string {
  return jsonText(toJsonValue(value));
}

function jsonText(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
