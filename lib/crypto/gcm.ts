/**
 * AES-256-GCM encryption (NIST SP 800-38D, 96-bit IV, 128-bit tag) as
 * OpenSSL's `aes-256-gcm` computes it, for many short values under a few
 * keys: the block cipher is Node's native AES (an ECB context per key, made
 * once), GHASH is a 4-bit-table multiplication (Shoup's, as in mbed TLS)
 * over a table made once per key. `createCipheriv('aes-256-gcm')` per value
 * re-expands the key and builds a stream object each time (≈ 4–5 CPU µs for
 * a 20-byte value); this does the same work in about half of that
 * (`npm run bench privacy` prints both). The output is byte for byte
 * OpenSSL's (lib/crypto/gcm.test.ts checks random keys, IVs, values and
 * associated data against `createCipheriv`). Decryption stays on
 * `createDecipheriv`.
 */
import { createCipheriv, type Cipher } from 'node:crypto';

/** GHASH reduction of the 4 bits shifted out (mbed TLS's `last4`), placed in the top 16 bits of the high word. */
const LAST4 = Int32Array.from([0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0, 0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0], (v) => v << 16);

/** Per key: the native AES block cipher and the multiples of H by every 4-bit value, as 4 big-endian 32-bit words. */
export interface GcmKey {
  ecb: Cipher;
  t0: Int32Array;
  t1: Int32Array;
  t2: Int32Array;
  t3: Int32Array;
}

export function gcmKey(key: Buffer): GcmKey {
  const ecb = createCipheriv('aes-256-ecb', key, null);
  ecb.setAutoPadding(false);
  const h = ecb.update(Buffer.alloc(16));
  const t0 = new Int32Array(16);
  const t1 = new Int32Array(16);
  const t2 = new Int32Array(16);
  const t3 = new Int32Array(16);
  let v0 = h.readUInt32BE(0);
  let v1 = h.readUInt32BE(4);
  let v2 = h.readUInt32BE(8);
  let v3 = h.readUInt32BE(12);
  t0[8] = v0;
  t1[8] = v1;
  t2[8] = v2;
  t3[8] = v3;
  for (let i = 4; i > 0; i >>= 1) {
    const r = (v3 & 1) === 1 ? 0xe1000000 : 0;
    v3 = ((v3 >>> 1) | (v2 << 31)) >>> 0;
    v2 = ((v2 >>> 1) | (v1 << 31)) >>> 0;
    v1 = ((v1 >>> 1) | (v0 << 31)) >>> 0;
    v0 = ((v0 >>> 1) ^ r) >>> 0;
    t0[i] = v0;
    t1[i] = v1;
    t2[i] = v2;
    t3[i] = v3;
  }
  for (let i = 2; i <= 8; i *= 2) {
    for (let j = 1; j < i; j++) {
      t0[i + j] = t0[i]! ^ t0[j]!;
      t1[i + j] = t1[i]! ^ t1[j]!;
      t2[i + j] = t2[i]! ^ t2[j]!;
      t3[i + j] = t3[i]! ^ t3[j]!;
    }
  }
  return { ecb, t0, t1, t2, t3 };
}

/** Counter blocks of the value being encrypted (reused: encryption is synchronous). */
let counterScratch = Buffer.allocUnsafe(16 * 16);

/** The GHASH state: Y as 4 big-endian 32-bit words. */
const y = new Int32Array(4);

/** Y = (Y xor X) · H for each 16-byte block X of `buf[pos…end)`, the last one zero-padded. */
function ghash(k: GcmKey, buf: Uint8Array, pos: number, end: number): void {
  for (; pos + 16 <= end; pos += 16) {
    y[0] = (y[0]! ^ ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!)) >>> 0;
    y[1] = (y[1]! ^ ((buf[pos + 4]! << 24) | (buf[pos + 5]! << 16) | (buf[pos + 6]! << 8) | buf[pos + 7]!)) >>> 0;
    y[2] = (y[2]! ^ ((buf[pos + 8]! << 24) | (buf[pos + 9]! << 16) | (buf[pos + 10]! << 8) | buf[pos + 11]!)) >>> 0;
    y[3] = (y[3]! ^ ((buf[pos + 12]! << 24) | (buf[pos + 13]! << 16) | (buf[pos + 14]! << 8) | buf[pos + 15]!)) >>> 0;
    multiply(k);
  }
  if (pos < end) {
    for (let i = 0; i < end - pos; i++) y[i >> 2] = (y[i >> 2]! ^ (buf[pos + i]! << (24 - 8 * (i & 3)))) >>> 0;
    multiply(k);
  }
}

/** Y = Y · H (mbed TLS's gcm_mult, 32-bit words): Y's nibbles from the last, each step Z = Z·x⁴ + table[nibble]. */
function multiply(k: GcmKey): void {
  const { t0, t1, t2, t3 } = k;
  let z0 = 0;
  let z1 = 0;
  let z2 = 0;
  let z3 = 0;
  for (let w = 3; w >= 0; w--) {
    const word = y[w]!;
    for (let shift = 0; shift < 32; shift += 4) {
      const nibble = (word >>> shift) & 0xf;
      if (w !== 3 || shift !== 0) {
        const rem = z3 & 0xf;
        z3 = (z3 >>> 4) | (z2 << 28);
        z2 = (z2 >>> 4) | (z1 << 28);
        z1 = (z1 >>> 4) | (z0 << 28);
        z0 = (z0 >>> 4) ^ LAST4[rem]!;
      }
      z0 ^= t0[nibble]!;
      z1 ^= t1[nibble]!;
      z2 ^= t2[nibble]!;
      z3 ^= t3[nibble]!;
    }
  }
  y[0] = z0;
  y[1] = z1;
  y[2] = z2;
  y[3] = z3;
}

/**
 * Encrypts `plaintext` under `iv` (12 bytes) with associated data `ad`,
 * writing ciphertext then tag (16 bytes) into `out` at `pos`; returns the
 * position after the tag.
 */
export function gcmEncryptInto(k: GcmKey, iv: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, out: Buffer, pos: number): number {
  const blocks = Math.ceil(plaintext.length / 16);
  // Counter blocks: J0 = IV‖1 (masks the tag), then IV‖2, IV‖3, … (the keystream).
  if (counterScratch.length < 16 * (blocks + 1)) counterScratch = Buffer.allocUnsafe(16 * (blocks + 1));
  const counters = counterScratch.subarray(0, 16 * (blocks + 1));
  for (let b = 0; b <= blocks; b++) {
    counters.set(iv, 16 * b);
    counters.writeUInt32BE(b + 1, 16 * b + 12);
  }
  const stream = k.ecb.update(counters);
  const start = pos;
  for (let i = 0; i < plaintext.length; i++) out[pos + i] = plaintext[i]! ^ stream[16 + i]!;
  pos += plaintext.length;
  y.fill(0);
  ghash(k, ad, 0, ad.length);
  ghash(k, out, start, pos);
  // Lengths in bits, 64-bit big-endian each (values here are far below 2^32 bits).
  y[1] = (y[1]! ^ (ad.length * 8)) >>> 0;
  y[3] = (y[3]! ^ (plaintext.length * 8)) >>> 0;
  multiply(k);
  for (let w = 0; w < 4; w++) {
    const word = y[w]!;
    out[pos++] = (word >>> 24) ^ stream[4 * w]!;
    out[pos++] = ((word >>> 16) & 0xff) ^ stream[4 * w + 1]!;
    out[pos++] = ((word >>> 8) & 0xff) ^ stream[4 * w + 2]!;
    out[pos++] = (word & 0xff) ^ stream[4 * w + 3]!;
  }
  return pos;
}
