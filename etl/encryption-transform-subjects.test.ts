/**
 * The encryption transform rejects a record alone when its subject can never
 * get a key, and keeps padlock outages retryable for the whole batch.
 */
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { AppError } from '../lib/errors.ts';
import { FakeKeySource } from '../lib/privacy/test-keys.ts';
import type { KeyLookupOptions, KeyRequest, KeyResult } from '../lib/privacy/keys.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';
import { createEncryptionTransform } from './encryption-transform.ts';

const schema: AvroSchemaJson = {
  type: 'record',
  name: 'Signup',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
  ],
};
const version: SchemaVersion = { version: 1, fingerprint: schemaFingerprint(schema), schema, createdAt: '2026-01-01T00:00:00.000Z' };
const writer = avro.Type.forSchema(schema as avro.Schema);
/** A decoded record; a lone surrogate is set after decoding, since no Avro bytes decode to one. */
const input = (userId: string, i: number) => {
  const record = writer.fromBuffer(writer.toBuffer({ userId: 'placeholder', email: 'x@y.example' })) as { userId: string };
  record.userId = userId;
  return { record, version, eventId: `e${i}` };
};

/** Padlock as a stricter (or newer) deployment would answer: 400 for a batch holding `refused`. */
class RefusingKeys extends FakeKeySource {
  override async getKeys(items: KeyRequest[], options: KeyLookupOptions = {}): Promise<KeyResult[]> {
    const at = items.findIndex((i) => i.userId === 'refused');
    if (at !== -1) throw new AppError('BODY_INVALID', { message: `userIds[${at}]: not a user id here`, details: { status: 400, field: `userIds[${at}]` } });
    return super.getKeys(items, options);
  }
}

describe('encryption transform and invalid subjects', () => {
  it.each([
    ['a lone surrogate', 'x\ud800', /subject userId: must be well-formed Unicode/],
    ['too many UTF-8 bytes', '€'.repeat(86), /subject userId: must be at most 256 bytes in UTF-8/],
    ['an empty id', '', /subject userId: must not be empty/],
  ])('rejects the record with %s alone, without asking padlock for it', async (_what, userId, why) => {
    const keys = new FakeKeySource();
    const out = await createEncryptionTransform({ keys }).transformBatch('signups', [input('alice', 0), input(userId, 1), input('bob', 2)]);
    expect(out[1]).toMatchObject({ record: null, rejected: { code: 'EVENT_INVALID', reason: expect.stringMatching(why) as unknown } });
    expect(out[1]!.rejected!.reason).not.toContain(userId || '\u0000');
    for (const i of [0, 2]) expect(out[i]).toMatchObject({ stats: { encryptedFields: 1, nulledFields: 0 } });
    expect(keys.calls.flatMap((c) => c.items.map((item) => item.userId)).sort()).toEqual(['alice', 'bob']);
  });

  it('rejects only the records padlock refuses (400 on a user id), trying the batch record by record', async () => {
    const out = await createEncryptionTransform({ keys: new RefusingKeys() }).transformBatch('signups', [input('alice', 0), input('refused', 1), input('bob', 2)]);
    expect(out[1]).toMatchObject({ rejected: { code: 'EVENT_INVALID', reason: 'subject refused by padlock: not a user id here' } });
    expect(out[0]!.rejected).toBeUndefined();
    expect(out[2]!.rejected).toBeUndefined();
    expect(out[0]!.stats).toEqual({ encryptedFields: 1, nulledFields: 0 });
  });

  it('keeps a padlock outage retryable for the whole batch', async () => {
    const keys = new FakeKeySource();
    keys.failWith = new AppError('UNAVAILABLE', { message: 'padlock down' });
    await expect(createEncryptionTransform({ keys }).transformBatch('signups', [input('alice', 0), input('bob', 1)])).rejects.toMatchObject({ retryable: true });
  });
});
