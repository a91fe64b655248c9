/**
 * The native AES-256-GCM sealer (aead.c, built by `npm run build:native`),
 * or undefined when it is not built or `EDP_NATIVE_AEAD=off`: lib/crypto/aead.ts
 * then seals with node:crypto, to the same bytes' format.
 */
import { createRequire } from 'node:module';

/**
 * Seals `source[from, to)` under the 12-byte IV found at `out[ivOffset]`,
 * writing the ciphertext right after the IV, then the 16-byte tag; returns
 * the offset after the tag. The key's schedule is wiped from the sealer's
 * context before it returns, unless `keepKey`: then the caller owes a `wipe()`.
 */
export type Seal = (key: Buffer, ad: Uint8Array, source: Uint8Array, from: number, to: number, out: Buffer, ivOffset: number, keepKey?: boolean) => number;

export interface NativeSealer {
  seal: Seal;
  /** Re-keys this thread's context with an all-zero key. */
  wipe: () => void;
}

function load(): NativeSealer | undefined {
  if (process.env.EDP_NATIVE_AEAD === 'off') return undefined;
  try {
    const addon = createRequire(import.meta.url)('./aead.node') as { seal?: unknown; wipe?: unknown };
    return typeof addon.seal === 'function' && typeof addon.wipe === 'function' ? (addon as NativeSealer) : undefined;
  } catch {
    return undefined;
  }
}

export const nativeSealer: NativeSealer | undefined = load();
export const nativeSeal: Seal | undefined = nativeSealer?.seal;
