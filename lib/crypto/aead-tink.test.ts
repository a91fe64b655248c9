/**
 * Interoperability with Google's own Tink (the `tink-crypto` package): Tink
 * decrypts what we encrypt, and we decrypt what Tink encrypts, using the
 * keyset that `tinkKeyset` serialises. This is the property BigQuery's AEAD
 * functions rely on.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { associatedData, decrypt, encrypt, tinkKeyset } from './aead.ts';

interface TinkAead {
  encrypt(pt: Uint8Array, ad?: Uint8Array): Promise<Uint8Array>;
  decrypt(ct: Uint8Array, ad?: Uint8Array): Promise<Uint8Array>;
}

let aeadFor: (keyset: Buffer) => Promise<TinkAead>;

beforeAll(async () => {
  // tink-crypto's closure-compiled bundle expects a browser-like `self`.
  (globalThis as { self?: unknown }).self ??= globalThis;
  const tink = (await import('tink-crypto')) as unknown as {
    aead: { register(): void; Aead: unknown };
    binaryInsecure: { deserializeKeyset(b: Uint8Array): { getPrimitive(t: unknown): Promise<TinkAead> } };
  };
  tink.aead.register();
  aeadFor = (keyset) => tink.binaryInsecure.deserializeKeyset(new Uint8Array(keyset)).getPrimitive(tink.aead.Aead);
});

describe('Tink interoperability', () => {
  const key = { keyId: 0x7e57_1d00, key: randomBytes(32) };
  const ad = associatedData('signup', 'user.email');

  it('Tink decrypts our ciphertexts with the keyset we serialise', async () => {
    const tinkAead = await aeadFor(tinkKeyset(key));
    const ct = encrypt(key, Buffer.from('value-1'), ad);
    expect(Buffer.from(await tinkAead.decrypt(new Uint8Array(ct), new Uint8Array(ad))).toString()).toBe('value-1');
    await expect(tinkAead.decrypt(new Uint8Array(ct), new Uint8Array(associatedData('signup', 'other')))).rejects.toThrow();
  });

  it('we decrypt Tink ciphertexts', async () => {
    const tinkAead = await aeadFor(tinkKeyset(key));
    const ct = await tinkAead.encrypt(new TextEncoder().encode('value-2'), new Uint8Array(ad));
    expect(decrypt(key, ct, ad).toString()).toBe('value-2');
  });
});
