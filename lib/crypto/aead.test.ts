import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { associatedData, CIPHERTEXT_OVERHEAD, decrypt, encrypt, keyIdOf, tinkKeyset } from './aead.ts';

const key = { keyId: 0x12345678, key: randomBytes(32) };
const ad = associatedData('signup', 'user.email');

describe('Tink AEAD wire format', () => {
  it('round-trips and lays out prefix, key id, IV, ciphertext and tag', () => {
    const ct = encrypt(key, Buffer.from('alice@example.test'), ad);
    expect(ct[0]).toBe(0x01);
    expect(ct.readUInt32BE(1)).toBe(0x12345678);
    expect(keyIdOf(ct)).toBe(0x12345678);
    expect(ct.length).toBe(CIPHERTEXT_OVERHEAD + 'alice@example.test'.length);
    expect(decrypt(key, ct, ad).toString()).toBe('alice@example.test');
  });

  it('uses a fresh IV per value', () => {
    const a = encrypt(key, Buffer.from('x'), ad);
    const b = encrypt(key, Buffer.from('x'), ad);
    expect(a.subarray(5, 17).equals(b.subarray(5, 17))).toBe(false);
  });

  it('never repeats an IV, across refills of the IV pool', () => {
    // Well past the pool's 1 024 IVs: several refills.
    const ivs = new Set<string>();
    for (let i = 0; i < 5000; i++) ivs.add(encrypt(key, Buffer.from('x'), ad).subarray(5, 17).toString('hex'));
    expect(ivs.size).toBe(5000);
  });

  it('writes every byte of the result (no stale pool bytes) for empty and long values', () => {
    for (const size of [0, 1, 15, 16, 17, 5000]) {
      const plaintext = Buffer.alloc(size, 0xab);
      const ct = encrypt(key, plaintext, ad);
      expect(ct.length).toBe(CIPHERTEXT_OVERHEAD + size);
      expect(decrypt(key, ct, ad).equals(plaintext)).toBe(true);
    }
  });

  it('refuses a value moved to another field or event type', () => {
    const ct = encrypt(key, Buffer.from('secret'), ad);
    expect(() => decrypt(key, ct, associatedData('signup', 'user.phone'))).toThrow(/Authentication failed/);
    expect(() => decrypt(key, ct, associatedData('login', 'user.email'))).toThrow(/Authentication failed/);
  });

  it('refuses another key, a flipped bit, and a truncated value', () => {
    const ct = encrypt(key, Buffer.from('secret'), ad);
    expect(() => decrypt({ keyId: key.keyId, key: randomBytes(32) }, ct, ad)).toThrow(/DECRYPT|Authentication/);
    expect(() => decrypt({ keyId: 7, key: key.key }, ct, ad)).toThrow(/another key/);
    for (let i = 5; i < ct.length; i++) {
      const bad = Buffer.from(ct);
      bad[i]! ^= 0x01;
      expect(() => decrypt(key, bad, ad)).toThrow();
    }
    expect(() => decrypt(key, ct.subarray(0, 20), ad)).toThrow(/too short/);
  });

  it('serialises a one-key Tink keyset naming the key id and the AES-GCM type', () => {
    const ks = tinkKeyset(key);
    expect(ks.includes(Buffer.from('type.googleapis.com/google.crypto.tink.AesGcmKey'))).toBe(true);
    expect(ks.includes(key.key)).toBe(true);
    // primary_key_id: field 1, varint of 0x12345678
    expect(ks.subarray(0, 6).toString('hex')).toBe('08f8acd19101');
  });
});
