/**
 * Key-encryption keys: root keys are stored only wrapped by a KEK. Cloud KMS in
 * production; a local key file in local mode, behind the same interface. The
 * associated data binds each wrapped key to its user and category, so a wrapped
 * key copied to another cell does not unwrap.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { openSync, writeSync, closeSync, readFileSync, statSync, mkdirSync, fsyncSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../../lib/errors.ts';

export interface Kek {
  /** What wraps the keys (for logs): `local-file` or `kms`. */
  readonly kind: 'local-file' | 'kms';
  wrap(rootKey: Buffer, aad: Buffer): Promise<Buffer>;
  unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer>;
}

/** Associated data of the wrapped root key of `userId`'s `category`. */
export function wrapAad(userId: string, category: string): Buffer {
  return Buffer.from(JSON.stringify(['padlock/root/v1', userId, category]), 'utf8');
}

const LOCAL_FORMAT = 0x01;
const GRPC_INVALID_ARGUMENT = 3;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Reads the local KEK file, creating it (32 random bytes, mode 0600, exclusive
 * create) if absent. Refuses a file of the wrong size or readable by others.
 */
export function loadOrCreateKekFile(file: string): Buffer {
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(32));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AppError('KEK_UNAVAILABLE', { message: `Cannot create the local KEK file ${file}`, cause: err });
    }
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new AppError('KEK_UNAVAILABLE', {
      message: `Local KEK file ${file} is readable by others (mode ${mode.toString(8)}); chmod 600 it`,
    });
  }
  const key = readFileSync(file);
  if (key.length !== 32) {
    throw new AppError('KEK_UNAVAILABLE', { message: `Local KEK file ${file} must hold exactly 32 bytes` });
  }
  return key;
}

/** AES-256-GCM under a local key: `0x01 ‖ IV(12) ‖ ciphertext ‖ tag(16)`. Local mode only. */
export function createLocalKek(kekBytes: Buffer): Kek {
  if (kekBytes.length !== 32) throw new AppError('KEK_UNAVAILABLE', { message: 'Local KEK must be 32 bytes' });
  const kek = Buffer.from(kekBytes);
  return {
    kind: 'local-file',
    async wrap(rootKey, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', kek, iv);
      cipher.setAAD(aad);
      const body = Buffer.concat([cipher.update(rootKey), cipher.final()]);
      return Buffer.concat([Buffer.from([LOCAL_FORMAT]), iv, body, cipher.getAuthTag()]);
    },
    async unwrap(wrapped, aad) {
      if (wrapped.length < 1 + IV_BYTES + TAG_BYTES || wrapped[0] !== LOCAL_FORMAT) {
        throw new AppError('KEY_UNREADABLE', { message: 'Wrapped root key has an unknown format' });
      }
      try {
        const iv = wrapped.subarray(1, 1 + IV_BYTES);
        const tag = wrapped.subarray(wrapped.length - TAG_BYTES);
        const decipher = createDecipheriv('aes-256-gcm', kek, iv);
        decipher.setAAD(aad);
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(wrapped.subarray(1 + IV_BYTES, wrapped.length - TAG_BYTES)), decipher.final()]);
      } catch (cause) {
        // The key file is there (it loaded): this one wrapped key fails authentication, now and always.
        throw new AppError('KEY_UNREADABLE', { message: 'Wrapped root key does not unwrap under the local KEK', cause });
      }
    },
  };
}

type Bytes = Uint8Array | string | null | undefined;

/**
 * The two Cloud KMS calls the KMS KEK makes; `KeyManagementServiceClient`
 * satisfies it through `kmsCallsOf`. Unit tests use a fake (there is no KMS emulator).
 */
export interface KmsCalls {
  encrypt(request: { name: string; plaintext: Buffer; additionalAuthenticatedData: Buffer }): Promise<[{ ciphertext?: Bytes }, ...unknown[]]>;
  decrypt(request: { name: string; ciphertext: Buffer; additionalAuthenticatedData: Buffer }): Promise<[{ plaintext?: Bytes }, ...unknown[]]>;
}

/** Adapts a `KeyManagementServiceClient` (from `createKms`) to `KmsCalls`, with a per-call timeout. */
export function kmsCallsOf(
  client: {
    encrypt(req: { name: string; plaintext: Buffer; additionalAuthenticatedData: Buffer }, opts: { timeout: number }): Promise<[{ ciphertext?: Bytes }, ...unknown[]]>;
    decrypt(req: { name: string; ciphertext: Buffer; additionalAuthenticatedData: Buffer }, opts: { timeout: number }): Promise<[{ plaintext?: Bytes }, ...unknown[]]>;
  },
  timeoutMs: number,
): KmsCalls {
  return {
    encrypt: (req) => client.encrypt(req, { timeout: timeoutMs }),
    decrypt: (req) => client.decrypt(req, { timeout: timeoutMs }),
  };
}

function toBuffer(bytes: Bytes): Buffer | undefined {
  if (bytes === null || bytes === undefined) return undefined;
  return typeof bytes === 'string' ? Buffer.from(bytes, 'base64') : Buffer.from(bytes);
}

/** Envelope encryption with a Cloud KMS symmetric key (`projects/…/cryptoKeys/…`). */
export function createKmsKek(kms: KmsCalls, keyName: string): Kek {
  return {
    kind: 'kms',
    async wrap(rootKey, aad) {
      let ciphertext: Buffer | undefined;
      try {
        const [resp] = await kms.encrypt({ name: keyName, plaintext: rootKey, additionalAuthenticatedData: aad });
        ciphertext = toBuffer(resp.ciphertext);
      } catch (cause) {
        throw new AppError('KEK_UNAVAILABLE', { message: 'Cloud KMS encrypt failed', cause });
      }
      if (ciphertext === undefined) throw new AppError('KEK_UNAVAILABLE', { message: 'Cloud KMS returned no ciphertext' });
      return ciphertext;
    },
    async unwrap(wrapped, aad) {
      let plaintext: Buffer | undefined;
      try {
        const [resp] = await kms.decrypt({ name: keyName, ciphertext: wrapped, additionalAuthenticatedData: aad });
        plaintext = toBuffer(resp.plaintext);
      } catch (cause) {
        // INVALID_ARGUMENT: KMS answered that this ciphertext (with its AAD) does not decrypt; anything else may pass.
        if ((cause as { code?: unknown }).code === GRPC_INVALID_ARGUMENT) {
          throw new AppError('KEY_UNREADABLE', { message: 'Cloud KMS cannot decrypt this wrapped root key', cause });
        }
        throw new AppError('KEK_UNAVAILABLE', { message: 'Cloud KMS decrypt failed', cause });
      }
      if (plaintext?.length !== 32) throw new AppError('KEK_UNAVAILABLE', { message: 'Cloud KMS returned no 32-byte root key' });
      return plaintext;
    },
  };
}
