/**
 * Derivation of a service's view of a root key: HKDF-SHA256 over the root key
 * with an info string binding the key context, the category and the user, and
 * a one-way key id for Tink's AEAD wire format.
 */
import { createHash, hkdfSync } from 'node:crypto';

/** A derived key and its Tink key id (uint32). */
export interface DerivedKey {
  keyId: number;
  /** 32 bytes; AES-256-GCM key. */
  key: Buffer;
}

export interface KeyIdentity {
  context: string;
  category: string;
  userId: string;
}

const DERIVE_LABEL = 'padlock/derive/v1';
const KEY_ID_LABEL = 'padlock/key-id/v1';

/** Length-prefixed parts, so no two different identities share an info string. */
function infoFor(identity: KeyIdentity): Buffer {
  const parts = [DERIVE_LABEL, identity.context, identity.category, identity.userId].map((p) => Buffer.from(p, 'utf8'));
  const out: Buffer[] = [];
  for (const part of parts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(part.length);
    out.push(len, part);
  }
  return Buffer.concat(out);
}

/**
 * HKDF-SHA256(root key, salt = empty, info = label ‖ context ‖ category ‖ userId).
 * The user id is in the info so that no two users ever share a derived key,
 * even if a root key were copied by mistake.
 */
export function deriveKey(rootKey: Buffer, identity: KeyIdentity): DerivedKey {
  const key = Buffer.from(hkdfSync('sha256', rootKey, Buffer.alloc(0), infoFor(identity), 32));
  return { keyId: keyIdOf(key), key };
}

/** First 4 bytes (big-endian) of SHA-256(label ‖ derived key): one-way, reveals no key bits. */
export function keyIdOf(derivedKey: Buffer): number {
  return createHash('sha256').update(KEY_ID_LABEL).update(derivedKey).digest().readUInt32BE(0);
}
