import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gcmEncryptInto, gcmKey } from './gcm.ts';

function openssl(key: Buffer, iv: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(ad);
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

describe('gcmEncryptInto', () => {
  it('gives OpenSSL aes-256-gcm bytes (ciphertext and tag) for random keys, IVs, values and associated data', () => {
    for (let n = 0; n < 400; n++) {
      const key = randomBytes(32);
      const k = gcmKey(key);
      for (let m = 0; m < 3; m++) {
        const iv = randomBytes(12);
        const plaintext = randomBytes(n % 70);
        const ad = randomBytes((n * 7 + m) % 53);
        const out = Buffer.alloc(plaintext.length + 16 + 4);
        const end = gcmEncryptInto(k, iv, plaintext, ad, out, 4);
        expect(end).toBe(out.length);
        expect(out.subarray(4).toString('hex')).toBe(openssl(key, iv, plaintext, ad).toString('hex'));
      }
    }
  });

  it('matches the NIST SP 800-38D test case 16 (AES-256, 96-bit IV, associated data)', () => {
    const key = Buffer.from('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308', 'hex');
    const iv = Buffer.from('cafebabefacedbaddecaf888', 'hex');
    const plaintext = Buffer.from('d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39', 'hex');
    const ad = Buffer.from('feedfacedeadbeeffeedfacedeadbeefabaddad2', 'hex');
    const out = Buffer.alloc(plaintext.length + 16);
    gcmEncryptInto(gcmKey(key), iv, plaintext, ad, out, 0);
    expect(out.subarray(0, plaintext.length).toString('hex')).toBe(
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    );
    expect(out.subarray(plaintext.length).toString('hex')).toBe('76fc6ece0f4e1768cddf8853bb2d551b');
  });
});
