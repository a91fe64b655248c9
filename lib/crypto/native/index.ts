/**
 * The native AES-256-GCM sealer (aead.c, built by `npm run build:native`),
 * or undefined when it is not built or `EDP_NATIVE_AEAD=off`: lib/crypto/aead.ts
 * then seals with node:crypto, to the same bytes' format.
 */
import { createRequire } from 'node:module';

/**
 * Seals `source[from, to)` under the 12-byte IV found at `out[ivOffset]`,
 * writing the ciphertext right after the IV, then the 16-byte tag; returns
 * the offset after the tag.
 */
export type Seal = (key: Buffer, ad: Uint8Array, source: Uint8Array, from: number, to: number, out: Buffer, ivOffset: number) => number;

function load(): Seal | undefined {
  if (process.env.EDP_NATIVE_AEAD === 'off') return undefined;
  try {
    const addon = createRequire(import.meta.url)('./aead.node') as { seal?: unknown };
    return typeof addon.seal === 'function' ? (addon.seal as Seal) : undefined;
  } catch {
    return undefined;
  }
}

export const nativeSeal: Seal | undefined = load();
