import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { aeadImplementation, associatedData, ciphertextLength, decrypt, encrypt, encryptInto, sealingBatch } from '../aead.ts';
import { nativeSeal, nativeSealer } from './index.ts';

const key = randomBytes(32);
const ad = associatedData('signup', 'user.email');

/** node:crypto's AES-256-GCM of `plaintext` under `iv`: ciphertext then tag. */
function nodeSeal(plaintext: Buffer, iv: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

describe('native AES-256-GCM sealer', () => {
  it('is built wherever CI runs (npm run build:native), so benchmarks and tests use it', () => {
    if (process.env.CI !== undefined || process.env.EDP_NATIVE_AEAD === 'require') expect(aeadImplementation).toBe('native');
    expect(aeadImplementation).toBe(nativeSeal === undefined ? 'node:crypto' : 'native');
  });
});

describe.runIf(nativeSeal !== undefined)('native sealer output', () => {
  const seal = nativeSeal!;

  it('writes exactly what node:crypto writes for the same key, IV, associated data and plaintext', () => {
    for (const size of [0, 1, 15, 16, 17, 255, 5000]) {
      const source = randomBytes(size + 7);
      const aad = randomBytes(size % 40);
      const out = Buffer.alloc(3 + 12 + size + 16 + 5, 0xee);
      const iv = randomBytes(12);
      iv.copy(out, 3);
      const end = seal(key, aad, source, 4, 4 + size, out, 3);
      expect(end).toBe(3 + 12 + size + 16);
      expect(out.subarray(15, end).equals(nodeSeal(source.subarray(4, 4 + size), iv, aad))).toBe(true);
      expect(out.subarray(end).equals(Buffer.alloc(5, 0xee))).toBe(true); // nothing written past the tag
    }
  });

  it('produces Tink ciphertexts that node:crypto decrypts, and binds them to their associated data', () => {
    const k = { keyId: 7, key };
    const source = Buffer.from('..alice@example.test..');
    const out = Buffer.alloc(ciphertextLength(18) + 4);
    const end = encryptInto(k, source, ad, out, 4, 2, 20);
    const ct = out.subarray(4, end);
    expect(decrypt(k, ct, ad).toString()).toBe('alice@example.test');
    const iv = ct.subarray(5, 17);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(associatedData('signup', 'user.phone'));
    decipher.setAuthTag(ct.subarray(ct.length - 16));
    decipher.update(ct.subarray(17, ct.length - 16));
    expect(() => decipher.final()).toThrow();
  });

  it('keeping a key until the next value (keepKey) changes no byte, whatever key comes next', () => {
    const keys = [randomBytes(32), randomBytes(32), key];
    const source = randomBytes(40);
    for (let round = 0; round < 3; round++) {
      for (const k of keys) {
        const iv = randomBytes(12);
        const out = Buffer.alloc(12 + 40 + 16);
        iv.copy(out, 0);
        seal(k, ad, source, 0, 40, out, 0, true);
        const cipher = createCipheriv('aes-256-gcm', k, iv, { authTagLength: 16 });
        cipher.setAAD(ad);
        expect(out.subarray(12).equals(Buffer.concat([cipher.update(source), cipher.final(), cipher.getAuthTag()]))).toBe(true);
      }
    }
    nativeSealer!.wipe();
  });

  it('seals a batch with one wipe at its end, however the batch ends, and nested batches wipe once', () => {
    const wipe = vi.spyOn(nativeSealer!, 'wipe');
    try {
      const sealed = sealingBatch(() =>
        [1, 2, 3].map((keyId) => {
          const k = { keyId, key: randomBytes(32) };
          return { k, ct: encrypt(k, Buffer.from(`value-${keyId}`), ad) };
        }),
      );
      expect(wipe).toHaveBeenCalledTimes(1);
      for (const { k, ct } of sealed) expect(decrypt(k, ct, ad).toString()).toBe(`value-${k.keyId}`);
      expect(() =>
        sealingBatch(() => {
          sealingBatch(() => encrypt({ keyId: 1, key }, Buffer.from('x'), ad));
          expect(wipe).toHaveBeenCalledTimes(1); // the inner batch leaves the wipe to the outer one
          throw new Error('batch failed');
        }),
      ).toThrow('batch failed');
      expect(wipe).toHaveBeenCalledTimes(2);
    } finally {
      wipe.mockRestore();
    }
  });

  it('refuses bad arguments with an error instead of reading or writing out of bounds', () => {
    const out = Buffer.alloc(64);
    const src = Buffer.from('plaintext');
    expect(() => seal(randomBytes(16), ad, src, 0, 9, out, 0)).toThrow(/32 bytes/);
    expect(() => seal(key, ad, src, 0, 10, out, 0)).toThrow(/range of source/);
    expect(() => seal(key, ad, src, 5, 4, out, 0)).toThrow(/range of source/);
    expect(() => seal(key, ad, src, 0, 9, out, 40)).toThrow(/no room/);
    expect(() => seal(key, ad, out, 12, 21, out, 0)).toThrow(/overlap/);
    expect(() => seal(key, ad, src, 0.5, 9, out, 0)).toThrow(/uint32/);
    expect(() => seal(key, ad, src, -1, 9, out, 0)).toThrow(/uint32/);
    expect(() => (seal as unknown as (...a: unknown[]) => number)(key, ad, 'plaintext', 0, 9, out, 0)).toThrow(/source must be a Buffer/);
    expect(() => (seal as unknown as (...a: unknown[]) => number)(key, ad, src)).toThrow(/takes/);
    expect(() => (seal as unknown as (...a: unknown[]) => number)(key, ad, src, 0, 9, out, 0, 'yes')).toThrow(/keepKey must be a boolean/);
    expect(() => (seal as unknown as (...a: unknown[]) => number)(key, ad, src, 0, 9, out, 0, false, 1)).toThrow(/takes/);
    expect(() => (seal as unknown as (...a: unknown[]) => number)(key, ad, src, '0', 9, out, 0)).toThrow(/uint32/);
  });
});
