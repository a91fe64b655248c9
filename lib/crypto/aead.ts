/**
 * Field encryption in Google Tink's AEAD wire format (AES-256-GCM, TINK prefix):
 *
 *   0x01 | key id (4 bytes, big-endian) | IV (12 bytes) | ciphertext | tag (16 bytes)
 *
 * Associated data is authenticated, not stored: the caller binds each value to
 * its event type and field path (`associatedData`), so a ciphertext moved to
 * another field or type fails to decrypt. Because the format is Tink's, a
 * BigQuery user holding the derived key can decrypt with
 * `AEAD.DECRYPT_BYTES(tinkKeyset(key), value, associated_data)`.
 */
import { encodeVarint } from '../avro/binary.ts';
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { AppError } from '../errors.ts';
import { nativeSealer } from './native/index.ts';

export const TINK_PREFIX_BYTE = 0x01;
const PREFIX_LEN = 5;
const IV_LEN = 12;
const TAG_LEN = 16;
export const CIPHERTEXT_OVERHEAD = PREFIX_LEN + IV_LEN + TAG_LEN;

export interface AeadKey {
  /** uint32: identifies the key in the ciphertext's prefix and in a Tink keyset. */
  keyId: number;
  /** 32 bytes (AES-256). */
  key: Buffer;
}

/** The associated data binding a value to where it belongs: `<eventType>\0<field path>`. */
export function associatedData(eventType: string, fieldPath: string): Buffer {
  return Buffer.from(`${eventType}\u0000${fieldPath}`, 'utf8');
}

/**
 * IVs are drawn from a pool of random bytes refilled in bulk: one
 * `randomFillSync` per `IV_POOL_IVS` values instead of one `randomBytes` call
 * (≈ 3 µs) per value. Each 12-byte slice is handed out once (the offset only
 * moves forward) and the whole pool is overwritten with fresh random bytes
 * before any slice is handed out again, so no IV is ever reused: the IVs are
 * as random and as unique as with a `randomBytes(12)` per value.
 */
const IV_POOL_IVS = 1024;
const ivPool = Buffer.allocUnsafeSlow(IV_LEN * IV_POOL_IVS);
let ivPoolOffset = ivPool.length;

/** Copies the next unused IV into `out` at `offset`. */
function writeNextIv(out: Buffer, offset: number): void {
  if (ivPoolOffset + IV_LEN > ivPool.length) {
    randomFillSync(ivPool);
    ivPoolOffset = 0;
  }
  // Byte by byte: Buffer#copy from an offset allocates a view per call.
  for (let i = 0; i < IV_LEN; i++) out[offset + i] = ivPool[ivPoolOffset + i]!;
  ivPoolOffset += IV_LEN;
}

/** How values are sealed: OpenSSL through the native addon, or node:crypto when it is not built. */
export const aeadImplementation: 'native' | 'node:crypto' = nativeSealer === undefined ? 'node:crypto' : 'native';

/** Depth of `sealingBatch` calls on this thread (the native sealer keeps one context per thread). */
let batchDepth = 0;

/**
 * Runs `seal` (synchronous: nothing else seals meanwhile), letting the native
 * sealer keep each value's key schedule until the next value instead of
 * wiping it after each one: one key setup per value instead of two. The
 * context is wiped once when `seal` ends, however it ends, so no schedule
 * outlives the batch (whose keys its caller holds meanwhile anyway).
 */
export function sealingBatch<T>(seal: () => T): T {
  if (nativeSealer === undefined) return seal();
  batchDepth++;
  try {
    return seal();
  } finally {
    if (--batchDepth === 0) nativeSealer.wipe();
  }
}

/** Bytes of the ciphertext of a `plaintextLength`-byte value. */
export function ciphertextLength(plaintextLength: number): number {
  return plaintextLength + CIPHERTEXT_OVERHEAD;
}

export function encrypt(key: AeadKey, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ciphertextLength(plaintext.length));
  encryptInto(key, plaintext, ad, out, 0);
  return out;
}

/**
 * Writes the ciphertext of `source[from, to)` (all of it by default) into
 * `out` at `offset`, which has room for `ciphertextLength(to - from)` bytes;
 * returns the offset after it. Lets a caller build a whole record from the
 * message it scanned without a buffer per value.
 */
export function encryptInto(key: AeadKey, source: Uint8Array, ad: Uint8Array, out: Buffer, offset: number, from = 0, to = source.length): number {
  checkKey(key);
  if (from < 0 || from > to || to > source.length || offset < 0 || out.length - offset < ciphertextLength(to - from)) {
    throw new AppError('INTERNAL', { message: 'encryptInto: no such plaintext range, or no room for its ciphertext' });
  }
  out[offset] = TINK_PREFIX_BYTE;
  out.writeUInt32BE(key.keyId >>> 0, offset + 1);
  const ivAt = offset + PREFIX_LEN;
  writeNextIv(out, ivAt);
  if (nativeSealer !== undefined) return nativeSealer.seal(key.key, ad, source, from, to, out, ivAt, batchDepth > 0);
  const cipher = createCipheriv('aes-256-gcm', key.key, out.subarray(ivAt, ivAt + IV_LEN), { authTagLength: TAG_LEN });
  cipher.setAAD(ad);
  let pos = ivAt + IV_LEN;
  pos += cipher.update(source.subarray(from, to)).copy(out, pos);
  pos += cipher.final().copy(out, pos); // empty for GCM, kept in case
  return pos + cipher.getAuthTag().copy(out, pos);
}

/** The key id in a ciphertext's prefix, to pick the key before decrypting. */
export function keyIdOf(ciphertext: Uint8Array): number {
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (buf.length < CIPHERTEXT_OVERHEAD || buf[0] !== TINK_PREFIX_BYTE) {
    throw new AppError('DECRYPT_FAILED', { message: 'Not a Tink AEAD ciphertext (bad prefix or too short)' });
  }
  return buf.readUInt32BE(1);
}

/** Throws AppError DECRYPT_FAILED on a wrong key, wrong associated data or any tampering. */
export function decrypt(key: AeadKey, ciphertext: Uint8Array, ad: Uint8Array): Buffer {
  checkKey(key);
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (keyIdOf(buf) !== key.keyId >>> 0) {
    throw new AppError('DECRYPT_FAILED', { message: 'Ciphertext was made with another key' });
  }
  const iv = buf.subarray(PREFIX_LEN, PREFIX_LEN + IV_LEN);
  const tag = buf.subarray(buf.length - TAG_LEN);
  const body = buf.subarray(PREFIX_LEN + IV_LEN, buf.length - TAG_LEN);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_LEN });
    decipher.setAAD(ad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    throw new AppError('DECRYPT_FAILED', { message: 'Authentication failed: wrong key, wrong field binding or tampered value', cause });
  }
}

function checkKey(key: AeadKey): void {
  if (key.key.length !== 32) throw new AppError('BAD_REQUEST', { message: 'AEAD key must be 32 bytes' });
  if (!Number.isInteger(key.keyId) || key.keyId < 0 || key.keyId > 0xffffffff) {
    throw new AppError('BAD_REQUEST', { message: 'AEAD key id must be a uint32' });
  }
}

/** Tink's KeyData.KeyMaterialType for AES-GCM keys (as in every keyset BigQuery's KEYS.NEW_KEYSET makes). */
const KEY_MATERIAL_SYMMETRIC = 1;

/**
 * A serialized Tink `Keyset` (protobuf) holding one AES-256-GCM key with the
 * TINK output prefix: what BigQuery's AEAD functions take as a keyset.
 * Handle the result as key material: never log it.
 */
export function tinkKeyset(key: AeadKey): Buffer {
  checkKey(key);
  // AesGcmKey { uint32 version = 1; bytes key_value = 3; }: version is 0, a proto3 default, which Tink
  // (like any proto3 serializer) omits, so only key_value is written.
  const aesGcmKey = field(3, 2, key.key);
  // KeyData { string type_url = 1; bytes value = 2; KeyMaterialType key_material_type = 3 (SYMMETRIC = 1;
  // 2 is ASYMMETRIC_PRIVATE) }
  const keyData = Buffer.concat([
    field(1, 2, Buffer.from('type.googleapis.com/google.crypto.tink.AesGcmKey')),
    field(2, 2, aesGcmKey),
    field(3, 0, encodeVarint(KEY_MATERIAL_SYMMETRIC)),
  ]);
  // Keyset.Key { KeyData key_data = 1; KeyStatusType status = 2 (ENABLED = 1); uint32 key_id = 3; OutputPrefixType output_prefix_type = 4 (TINK = 1); }
  const keysetKey = Buffer.concat([field(1, 2, keyData), field(2, 0, encodeVarint(1)), field(3, 0, encodeVarint(key.keyId >>> 0)), field(4, 0, encodeVarint(1))]);
  // Keyset { uint32 primary_key_id = 1; repeated Key key = 2; }
  return Buffer.concat([field(1, 0, encodeVarint(key.keyId >>> 0)), field(2, 2, keysetKey)]);
}

/** A protobuf field: wire type 0 (varint, `payload` already encoded) or 2 (length-delimited). */
function field(number: number, wireType: 0 | 2, payload: Buffer): Buffer {
  const tag = encodeVarint((number << 3) | wireType);
  return wireType === 0 ? Buffer.concat([tag, payload]) : Buffer.concat([tag, encodeVarint(payload.length), payload]);
}
