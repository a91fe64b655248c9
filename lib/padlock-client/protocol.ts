/**
 * Padlock's HTTP/JSON wire contract, shared by the service and its client so
 * both sides name the same fields. Keys travel base64-encoded; the root key
 * never appears here.
 */

/** Path of the multi-get (and optional create-if-absent) of derived keys. */
export const LOOKUP_PATH = '/v1/keys/lookup';
/**
 * Path of the multi-get of Tink keysets (`POST`, same body as a lookup without
 * `createIfAbsent`): each found derived key as the serialized Tink keyset that
 * BigQuery's `AEAD.DECRYPT_BYTES` takes, for a consumer's keys table.
 */
export const KEYSETS_PATH = '/v1/keys/keysets';
/** Path of keychain creation (sign-up); `DELETE ${KEYCHAINS_PATH}/<userId>[/categories/<category>]` shreds. */
export const KEYCHAINS_PATH = '/v1/keychains';

/**
 * A multi-get names its users in one of two forms: `users`, each with its own
 * categories, or `userIds` sharing one `categories` (the usual batch: smaller to
 * send and to parse). Categories left out mean all personal categories.
 */
export type LookupRequest = {
  /** Key context; the caller's first authorised context if absent. */
  context?: string;
  /** Create the keychain of users that have none (or missing categories), as at sign-up. */
  createIfAbsent?: boolean;
} & ({ users: { userId: string; categories?: string[] }[] } | { userIds: string[]; categories?: string[] });

export type CategoryKeyWire =
  | { status: 'found'; keyId: number; /** base64, 32 bytes */ key: string }
  | { status: 'absent' }
  | { status: 'deleted' };

export type UserKeysWire =
  | { userId: string; status: 'found'; categories: Record<string, CategoryKeyWire> }
  | { userId: string; status: 'absent' }
  | { userId: string; status: 'deleted' };

export interface LookupResponse {
  context: string;
  /** Same order as the request's users (or userIds). */
  users: UserKeysWire[];
}

/** A keysets request: a lookup's users and context; keys are never created here. */
export type KeysetsRequest = { context?: string } & ({ users: { userId: string; categories?: string[] }[] } | { userIds: string[]; categories?: string[] });

export type CategoryKeysetWire =
  | { status: 'found'; keyId: number; /** base64 of a serialized Tink `Keyset` (one AES-256-GCM key, TINK prefix) */ keyset: string }
  | { status: 'absent' }
  | { status: 'deleted' };

export type UserKeysetsWire =
  | { userId: string; status: 'found'; categories: Record<string, CategoryKeysetWire> }
  | { userId: string; status: 'absent' }
  | { userId: string; status: 'deleted' };

export interface KeysetsResponse {
  context: string;
  /** Same order as the request's users (or userIds). */
  users: UserKeysetsWire[];
}

export interface CreateKeychainRequest {
  userId: string;
}

export interface CreateKeychainResponse {
  userId: string;
  /** `created` if this call added at least one root key. */
  status: 'created' | 'exists';
  /** State of every category after the call (an opted-out category stays `deleted`). */
  categories: Record<string, 'active' | 'deleted'>;
}

export interface DeleteResponse {
  userId: string;
  category?: string;
  status: 'deleted';
}

/** The `Authorization` header value for a service and its secret (HTTP Basic). */
export function authorizationHeader(service: string, secret: string): string {
  return `Basic ${Buffer.from(`${service}:${secret}`, 'utf8').toString('base64')}`;
}
