/**
 * What the privacy code needs from padlock: the subject's derived key per data
 * category, many at once. lib/padlock-client's `PadlockClient` satisfies it;
 * tests may pass a fake.
 */
import type { AeadKey } from '../crypto/aead.ts';

export interface KeyRequest {
  userId: string;
  category: string;
}

/** One key request's answer: the key, no keychain (or category) yet, or shredded. */
export type KeyResult = { status: 'found'; key: AeadKey } | { status: 'absent' } | { status: 'deleted' };

export interface KeyLookupOptions {
  /** Create the keychain of subjects that have none (the ETL does; consumers never). */
  createIfAbsent?: boolean;
  /** Padlock key context; the service's default if absent. */
  context?: string;
}

export interface KeySource {
  /** Answers in request order. Throws AppError (retryable when padlock is unavailable). */
  getKeys(items: KeyRequest[], options?: KeyLookupOptions): Promise<KeyResult[]>;
}

/** The distinct requests of `items`, and where each item's answer is. */
export function dedupeRequests(items: readonly KeyRequest[]): { unique: KeyRequest[]; keyOf: (item: KeyRequest) => string } {
  const keyOf = (item: KeyRequest): string => `${item.category}\u0000${item.userId}`;
  const seen = new Map<string, KeyRequest>();
  for (const item of items) {
    const k = keyOf(item);
    if (!seen.has(k)) seen.set(k, item);
  }
  return { unique: [...seen.values()], keyOf };
}
