/**
 * Validation of the lookup body, written by hand: it runs on every multi-get
 * (the hot path), where a schema library costs more than the rest of the
 * request. Same rules and same messages as the zod schema it replaces
 * (`lookupSchema` in test/lookup-body.test.ts checks both agree): the first
 * offending field in document order, `users[2].userId: must not be empty`.
 */
import { AppError } from '../../lib/errors.ts';
import { userIdProblem } from '../../lib/user-id.ts';

/**
 * A validated lookup body (the JSON object itself: unknown keys are ignored).
 * Users come in one of two forms: `users`, each with its own categories, or
 * `userIds` sharing one `categories` (the usual batch: a third of the bytes,
 * and far fewer objects to parse).
 */
export type LookupBody = {
  context?: string;
  createIfAbsent?: boolean;
} & ({ users: { userId: string; categories?: string[] }[]; userIds?: undefined } | { userIds: string[]; categories?: string[]; users?: undefined });

const CONTEXT_MAX = 63;

/** The body as a `LookupBody`, or 400 BODY_INVALID naming the first offending field. */
export function parseLookupBody(value: unknown): LookupBody {
  if (!isObject(value)) throw invalid('', expected('object', value));
  const { context, createIfAbsent, users } = value;
  if (context !== undefined) {
    if (typeof context !== 'string') throw invalid('context', expected('string', context));
    if (context.length < 1) throw invalid('context', 'Too small: expected string to have >=1 characters');
    if (context.length > CONTEXT_MAX) throw invalid('context', `Too big: expected string to have <=${CONTEXT_MAX} characters`);
  }
  if (createIfAbsent !== undefined && typeof createIfAbsent !== 'boolean') throw invalid('createIfAbsent', expected('boolean', createIfAbsent));
  if (value.userIds !== undefined || value.categories !== undefined) return parseUserIds(value);
  if (!Array.isArray(users)) throw invalid('users', expected('array', users));
  for (let i = 0; i < users.length; i++) {
    const user: unknown = users[i];
    if (!isObject(user)) throw invalid(`users[${i}]`, expected('object', user));
    const { userId, categories } = user;
    const problem = userIdProblem(userId);
    if (problem !== undefined) throw invalid(`users[${i}].userId`, problem);
    const listed = categoriesProblem(categories);
    if (listed !== undefined) throw invalid(`users[${i}].categories${listed.at}`, listed.message);
  }
  if (users.length < 1) throw invalid('users', 'must list at least one user');
  return value as unknown as LookupBody;
}

/** The `userIds` form: `{userIds: [...], categories?: [...]}`. */
function parseUserIds(value: Record<string, unknown>): LookupBody {
  const { userIds, categories, users } = value;
  if (users !== undefined) {
    throw userIds === undefined ? invalid('categories', 'goes with userIds; with users, each user lists its own') : invalid('userIds', 'give either users or userIds, not both');
  }
  if (!Array.isArray(userIds)) throw invalid('userIds', expected('array', userIds));
  for (let i = 0; i < userIds.length; i++) {
    const problem = userIdProblem(userIds[i]);
    if (problem !== undefined) throw invalid(`userIds[${i}]`, problem);
  }
  if (userIds.length < 1) throw invalid('userIds', 'must list at least one user');
  const listed = categoriesProblem(categories);
  if (listed !== undefined) throw invalid(`categories${listed.at}`, listed.message);
  return value as unknown as LookupBody;
}

/** Why `value` is not an optional list of categories (`at`: '' or the offending `[j]`), or undefined if it is one. */
function categoriesProblem(value: unknown): { at: string; message: string } | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return { at: '', message: expected('array', value) };
  for (let j = 0; j < value.length; j++) {
    const category: unknown = value[j];
    if (typeof category !== 'string') return { at: `[${j}]`, message: expected('string', category) };
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expected(type: string, value: unknown): string {
  return `Invalid input: expected ${type}, received ${received(value)}`;
}

function received(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function invalid(field: string, message: string): AppError {
  const named = field || '(body)';
  return new AppError('BODY_INVALID', { message: `${named}: ${message}`, details: { field: named } });
}
