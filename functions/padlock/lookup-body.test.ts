import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AppError } from '../../lib/errors.ts';
import { parseLookupBody } from './lookup-body.ts';

/** The zod schema the hand-written validator replaced: the reference for rules and messages. */
const userIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .refine((s) => !/\p{Cs}/u.test(s), 'must be well-formed Unicode (it holds a lone surrogate)')
  .refine((s) => new TextEncoder().encode(s).length <= 256, 'must be at most 256 bytes in UTF-8');
const lookupSchema = z.object({
  context: z.string().min(1).max(63).optional(),
  createIfAbsent: z.boolean().optional(),
  users: z.array(z.object({ userId: userIdSchema, categories: z.array(z.string()).optional() })).min(1, 'must list at least one user'),
});

/** What the zod-based parser answered: the error message, or 'ok'. */
function viaZod(value: unknown): string {
  const result = lookupSchema.safeParse(value);
  if (result.success) return 'ok';
  const issue = result.error.issues[0];
  let field = '';
  for (const p of issue?.path ?? []) field += typeof p === 'number' ? `[${p}]` : field === '' ? String(p) : `.${String(p)}`;
  return `${field || '(body)'}: ${issue?.message ?? 'invalid'}`;
}

function viaHand(value: unknown): string {
  try {
    parseLookupBody(value);
    return 'ok';
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    expect(err.code).toBe('BODY_INVALID');
    expect(err.message.startsWith(`${String(err.details?.field)}: `)).toBe(true);
    return err.message;
  }
}

const anyJson = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<unknown>;
const sometimes = <T,>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> => fc.oneof({ weight: 4, arbitrary: arb }, { weight: 1, arbitrary: anyJson });
/** Any UTF-16 code unit: lone surrogates and characters of 1 to 3 UTF-8 bytes. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: 4 }),
    fc.string({ minLength: max - 1, maxLength: max + 2 }),
    fc.string({ unit: codeUnit, maxLength: 4 }),
    fc.string({ unit: codeUnit, minLength: Math.floor(max / 3) - 1, maxLength: max }),
  );
const user = fc.record(
  { userId: sometimes(text(256)), categories: sometimes(fc.array(sometimes(fc.constantFrom('contact', 'ads', 'x')), { maxLength: 3 })) },
  { requiredKeys: [] },
);
const body = fc.record(
  { context: sometimes(text(63)), createIfAbsent: sometimes(fc.boolean()), users: sometimes(fc.array(sometimes(user), { maxLength: 3 })), extra: anyJson },
  { requiredKeys: [] },
);

describe('parseLookupBody', () => {
  it('accepts and rejects exactly what the zod schema did, with the same message naming the field', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 6, arbitrary: body }, { weight: 1, arbitrary: anyJson }), (value) => {
        // Through JSON, as on the wire.
        const parsed: unknown = JSON.parse(JSON.stringify(value) ?? 'null');
        expect(viaHand(parsed)).toBe(viaZod(parsed));
      }),
      { numRuns: 2000 },
    );
  });

  it('names the first offending field in document order', () => {
    expect(viaHand({ users: [{ userId: 'u1' }, { userId: 42 }] })).toBe('users[1].userId: Invalid input: expected string, received number');
    expect(viaHand({ users: [] })).toBe('users: must list at least one user');
    expect(viaHand({ context: '', users: [] })).toBe('context: Too small: expected string to have >=1 characters');
    expect(viaHand([])).toBe('(body): Invalid input: expected object, received array');
    expect(viaHand({ users: [{ userId: 'u', categories: ['contact', 7] }] })).toBe('users[0].categories[1]: Invalid input: expected string, received number');
  });

  it('takes users as userIds sharing one categories list, with the same rules', () => {
    expect(viaHand({ userIds: ['u1', 'u2'], categories: ['contact'] })).toBe('ok');
    expect(viaHand({ userIds: ['u1'], context: 'etl', createIfAbsent: true })).toBe('ok');
    expect(viaHand({ userIds: [] })).toBe('userIds: must list at least one user');
    expect(viaHand({ userIds: ['u1', 7] })).toBe('userIds[1]: Invalid input: expected string, received number');
    expect(viaHand({ userIds: ['u1', ''] })).toBe('userIds[1]: must not be empty');
    expect(viaHand({ userIds: ['x'.repeat(257)] })).toBe('userIds[0]: must be at most 256 bytes in UTF-8');
    expect(viaHand({ userIds: ['x'.repeat(256)] })).toBe('ok');
    expect(viaHand({ userIds: ['é'.repeat(128)] })).toBe('ok');
    expect(viaHand({ userIds: ['é'.repeat(129)] })).toBe('userIds[0]: must be at most 256 bytes in UTF-8');
    expect(viaHand({ userIds: ['u1', 'x\ud800'] })).toBe('userIds[1]: must be well-formed Unicode (it holds a lone surrogate)');
    expect(viaHand({ users: [{ userId: '\udc00' }] })).toBe('users[0].userId: must be well-formed Unicode (it holds a lone surrogate)');
    expect(viaHand({ userIds: ['x\ufffd', '\u{1f600}'] })).toBe('ok');
    expect(viaHand({ userIds: 'u1' })).toBe('userIds: Invalid input: expected array, received string');
    expect(viaHand({ userIds: ['u1'], categories: 'contact' })).toBe('categories: Invalid input: expected array, received string');
    expect(viaHand({ userIds: ['u1'], categories: ['contact', null] })).toBe('categories[1]: Invalid input: expected string, received null');
    expect(viaHand({ categories: ['contact'] })).toBe('userIds: Invalid input: expected array, received undefined');
    expect(viaHand({ userIds: ['u1'], users: [{ userId: 'u1' }] })).toBe('userIds: give either users or userIds, not both');
    expect(viaHand({ users: [{ userId: 'u1' }], categories: ['contact'] })).toBe('categories: goes with userIds; with users, each user lists its own');
    // The checks before the users still come first.
    expect(viaHand({ context: 5, userIds: [] })).toBe('context: Invalid input: expected string, received number');
  });
});
