/**
 * Schema identity: the Avro "Parsing Canonical Form" and its CRC-64-AVRO
 * (Rabin) fingerprint, the one Avro's single-object encoding carries. We write
 * fingerprints as 16 lowercase hex digits of the 64-bit value, most
 * significant first (`schemaFingerprint` attribute, manifests, registry).
 */
import { avroType } from './long.ts';

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = (1n << 64n) - 1n;

const table: bigint[] = (() => {
  const t: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK);
    t.push(fp & MASK);
  }
  return t;
})();

/** The Parsing Canonical Form of an Avro schema (annotations, docs and defaults dropped). */
export function canonicalForm(schema: unknown): string {
  return JSON.stringify(avroType(schema).schema());
}

/** CRC-64-AVRO of the given bytes, as a bigint. */
export function rabin64(bytes: Uint8Array): bigint {
  let fp = EMPTY;
  for (const b of bytes) fp = (fp >> 8n) ^ table[Number((fp ^ BigInt(b)) & 0xffn)]!;
  return fp;
}

/** Fingerprint of a schema: CRC-64-AVRO of its canonical form, 16 hex digits. */
export function schemaFingerprint(schema: unknown): string {
  return rabin64(Buffer.from(canonicalForm(schema), 'utf8')).toString(16).padStart(16, '0');
}

/** The 8 bytes single-object encoding puts after `C3 01`: the fingerprint, little-endian. */
export function fingerprintToSingleObjectBytes(fingerprint: string): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(BigInt(`0x${fingerprint}`));
  return buf;
}

export function fingerprintFromSingleObjectBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes).readBigUInt64LE(0).toString(16).padStart(16, '0');
}
