/**
 * The rule for a user id (a data subject), shared by every side that takes one:
 * padlock (create, lookup, delete), its client, the ETL and ingestion.
 *
 * A user id is a non-empty string of well-formed Unicode (no lone surrogate)
 * of at most `USER_ID_MAX_BYTES` bytes in UTF-8. Well-formed, it has exactly
 * one UTF-8 form, so the store key, the key-wrapping AAD, the derivation info
 * and the percent-encoded URL all name the same user; a lone surrogate would
 * become U+FFFD in some of them and not in others. Ids are compared exactly,
 * code point by code point: no normalisation, no case folding.
 */

/** `String.prototype.isWellFormed` (ES2024, in Node 20): false when a surrogate has no partner. */
const isWellFormed = (value: string): boolean => (value as string & { isWellFormed(): boolean }).isWellFormed();

/** Longest user id, in UTF-8 bytes. */
export const USER_ID_MAX_BYTES = 256;

/** Why `value` is not a user id (a phrase to put after the field's name), or undefined if it is one. */
export function userIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `Invalid input: expected string, received ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`;
  if (value.length === 0) return 'must not be empty';
  if (!isWellFormed(value)) return 'must be well-formed Unicode (it holds a lone surrogate)';
  // A UTF-16 code unit is at most 3 UTF-8 bytes: only long ids need counting.
  if (value.length * 3 > USER_ID_MAX_BYTES && Buffer.byteLength(value, 'utf8') > USER_ID_MAX_BYTES) {
    return `must be at most ${USER_ID_MAX_BYTES} bytes in UTF-8`;
  }
  return undefined;
}

/** Whether `value` is a user id (see `userIdProblem`). */
export function isUserId(value: unknown): value is string {
  return userIdProblem(value) === undefined;
}
