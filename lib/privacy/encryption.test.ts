import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { associatedData, decrypt } from '../crypto/aead.ts';
import { AppError } from '../errors.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import { compileEncryptionPlan } from './delivered-schema.ts';
import { RecordDecryptor, type EncryptedMarker } from './decryptor.ts';
import { RecordEncryptor } from './record-encryptor.ts';
import { FakeKeySource } from './test-keys.ts';

const schema: AvroSchemaJson = {
  type: 'record',
  name: 'Signup',
  namespace: 'com.example',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'name', type: ['null', 'string'], default: null, semanticType: 'fullName' },
    { name: 'ip', type: ['null', 'string'], default: null, semanticType: 'ipAddress' },
    { name: 'born', type: ['null', 'int'], default: null, semanticType: 'birthDate' },
    { name: 'segment', type: { type: 'enum', name: 'Segment', symbols: ['A', 'B'] }, semanticType: 'adsProfile' },
    {
      name: 'contacts',
      type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }, { name: 'label', type: 'string' }] } },
    },
    { name: 'notes', type: { type: 'map', values: 'string' }, semanticType: 'freeText' },
    { name: 'devices', type: { type: 'array', items: 'bytes' }, semanticType: 'deviceId' },
    { name: 'url', type: 'string' },
  ],
};
const fingerprint = 'f1';

function event(userId: string, n = 0): Record<string, unknown> {
  return {
    userId,
    email: `${userId}-${n}@example.com`,
    name: `Name of ${userId}`,
    ip: n % 2 === 0 ? `10.0.0.${n}` : null,
    born: 7000 + n,
    segment: 'B',
    contacts: [
      { email: `a.${userId}@example.com`, label: 'home' },
      { email: `b.${userId}@example.com`, label: 'work' },
    ],
    notes: { first: `secret note of ${userId}`, 'we}ird"key': 'other note' },
    devices: [Buffer.from(`device-${userId}`)],
    url: '/signup',
  };
}

/** Decoded as the ETL does: avsc with the writer schema. */
function decoded(value: Record<string, unknown>): unknown {
  const type = avro.Type.forSchema(schema as avro.Schema);
  return type.fromBuffer(type.toBuffer(value));
}

async function encryptAll(keys: FakeKeySource, values: Record<string, unknown>[], eventType = 'signups') {
  const encryptor = new RecordEncryptor({ keys });
  const out = await encryptor.encryptBatch(eventType, values.map((v) => ({ record: decoded(v), schema, fingerprint })));
  const deliveredType = avro.Type.forSchema(encryptor.deliveredSchema(schema) as avro.Schema);
  // Round trip through the delivered schema's Avro binary, as written to a partition.
  const bytes = out.map((o) => deliveredType.toBuffer(o.record));
  return { out, bytes, delivered: encryptor.deliveredSchema(schema), deliveredType };
}

describe('RecordEncryptor + RecordDecryptor', () => {
  it('encrypts every personal value and an entitled consumer gets the originals back', async () => {
    const keys = new FakeKeySource();
    const values = [event('alice', 0), event('bob', 1), event('alice', 2)];
    const { out, bytes, delivered, deliveredType } = await encryptAll(keys, values);
    expect(out.map((o) => o.stats)).toEqual([
      { encryptedFields: 10, nulledFields: 0 },
      { encryptedFields: 9, nulledFields: 0 },
      { encryptedFields: 10, nulledFields: 0 },
    ]);
    const all = Buffer.concat(bytes);
    for (const v of values) {
      for (const secret of [v.email, v.name, `a.${String(v.userId)}@example.com`, `secret note of ${String(v.userId)}`, `device-${String(v.userId)}`]) {
        expect(all.includes(Buffer.from(String(secret)))).toBe(false);
      }
    }
    expect(all.includes(Buffer.from('alice'))).toBe(true); // the subject stays in clear

    const decryptor = new RecordDecryptor({ keys });
    const { records, stats } = await decryptor.decryptBatch('signups', delivered, bytes.map((b) => deliveredType.fromBuffer(b)));
    expect(stats).toEqual({ decrypted: 29, unreadable: {} });
    expect(JSON.parse(JSON.stringify(records))).toEqual(JSON.parse(JSON.stringify(values)));
  });

  it('asks padlock once per batch, create-if-absent, for the distinct (user, category) pairs', async () => {
    const keys = new FakeKeySource();
    await encryptAll(keys, [event('alice'), event('bob'), event('alice', 3)]);
    expect(keys.calls).toHaveLength(1);
    const call = keys.calls[0]!;
    expect(call.options).toEqual({ createIfAbsent: true, context: 'events' });
    const categories = compileEncryptionPlan(schema).categories;
    expect(call.items).toHaveLength(2 * categories.length);
    expect(keys.created).toEqual(new Set(['alice', 'bob']));
  });

  it('writes null (counted) for a deleted user and for an opted-out category only', async () => {
    const keys = new FakeKeySource();
    keys.deletedUsers.add('bob');
    keys.deletedCategories.add('carol/contact');
    const { out } = await encryptAll(keys, [event('alice'), event('bob'), event('carol')]);
    const [alice, bob, carol] = out.map((o) => o.record as Record<string, unknown>);
    expect(Buffer.isBuffer(alice!.email)).toBe(true);
    expect(bob).toMatchObject({ email: null, name: null, ip: null, born: null, segment: null, notes: { first: null } });
    expect(bob!.devices).toEqual([Buffer.alloc(0)]); // an array item: empty bytes, never null
    expect(out[1]!.stats).toEqual({ encryptedFields: 0, nulledFields: 10 });
    // carol opted out of `contact`: email, name and contacts' emails are gone; the rest is encrypted.
    expect(carol).toMatchObject({ email: null, name: null, contacts: [{ email: null, label: 'home' }, { email: null, label: 'work' }] });
    expect(Buffer.isBuffer(carol!.ip)).toBe(true);
    expect(out[2]!.stats).toEqual({ encryptedFields: 6, nulledFields: 4 });
  });

  it('writes a keyless item of an array of personal values as empty bytes, never null, and reads it back as null', async () => {
    const s: AvroSchemaJson = {
      type: 'record',
      name: 'Profile',
      fields: [
        { name: 'userId', type: ['null', 'string'], default: null, semanticType: 'userId' },
        { name: 'email', type: 'string', semanticType: 'email' },
        { name: 'phoneNumbers', type: { type: 'array', items: 'string' }, semanticType: 'phoneNumber' },
      ],
    };
    const keys = new FakeKeySource();
    keys.deletedUsers.add('bob');
    const encryptor = new RecordEncryptor({ keys });
    const values = [
      { userId: 'alice', email: 'alice@example.com', phoneNumbers: ['+100', '+101'] },
      { userId: 'bob', email: 'bob@example.com', phoneNumbers: ['+200', '+201'] },
      { userId: null, email: 'x@example.com', phoneNumbers: ['+300'] },
    ];
    const out = await encryptor.encryptBatch('profiles', values.map((record) => ({ record, schema: s, fingerprint: 'fp' })));
    const [, bob, nobody] = out.map((o) => o.record as Record<string, unknown>);
    expect(bob).toEqual({ userId: 'bob', email: null, phoneNumbers: [Buffer.alloc(0), Buffer.alloc(0)] });
    expect(nobody).toEqual({ userId: null, email: null, phoneNumbers: [Buffer.alloc(0)] });
    expect(out.map((o) => o.stats)).toEqual([
      { encryptedFields: 3, nulledFields: 0 },
      { encryptedFields: 0, nulledFields: 3 },
      { encryptedFields: 0, nulledFields: 2 },
    ]);
    const delivered = encryptor.deliveredSchema(s);
    const deliveredType = avro.Type.forSchema(delivered as avro.Schema);
    const payloads = out.map((o) => deliveredType.fromBuffer(deliveredType.toBuffer(o.record)));
    const { records, stats } = await new RecordDecryptor({ keys }).decryptBatch('profiles', delivered, payloads);
    expect(records).toEqual([values[0], { ...values[1], email: null, phoneNumbers: [null, null] }, { ...values[2], email: null, phoneNumbers: [null] }]);
    expect(stats).toEqual({ decrypted: 3, unreadable: {} });
  });

  it('still reads partitions delivered with nullable array items (null items read as null)', async () => {
    const keys = new FakeKeySource();
    const { out, delivered } = await encryptAll(keys, [event('alice')]);
    // The delivered schema as it was before array items became non-null bytes.
    const oldDelivered = structuredClone(delivered);
    const devices = (oldDelivered.fields as { name: string; type: { items: unknown } }[]).find((f) => f.name === 'devices')!;
    devices.type.items = ['null', devices.type.items];
    const oldType = avro.Type.forSchema(oldDelivered as avro.Schema);
    const alice = out[0]!.record as Record<string, unknown>;
    const payloads = [alice, { ...alice, devices: [null] }].map((r) => oldType.fromBuffer(oldType.toBuffer(r)));
    const { records } = await new RecordDecryptor({ keys }).decryptBatch('signups', oldDelivered, payloads);
    expect((records as Record<string, unknown>[]).map((r) => r.devices)).toEqual([[Buffer.from('device-alice')], [null]]);
  });

  it('nulls the personal fields of a record without a subject, never clear text', async () => {
    const s: AvroSchemaJson = {
      type: 'record',
      name: 'E',
      fields: [
        { name: 'userId', type: ['null', 'string'], default: null, semanticType: 'userId' },
        { name: 'email', type: 'string', semanticType: 'email' },
      ],
    };
    const keys = new FakeKeySource();
    const encryptor = new RecordEncryptor({ keys });
    const out = await encryptor.encryptBatch('t', [
      { record: { userId: null, email: 'x@example.com' }, schema: s, fingerprint: 'fs' },
      { record: { userId: '', email: 'y@example.com' }, schema: s, fingerprint: 'fs' },
    ]);
    expect(out.map((o) => o.record)).toEqual([{ userId: null, email: null }, { userId: '', email: null }]);
    expect(out.map((o) => o.stats.nulledFields)).toEqual([1, 1]);
    expect(keys.calls).toHaveLength(0);
  });

  it('throws a retryable error when padlock is unavailable or refuses the ETL, and encrypts nothing', async () => {
    const keys = new FakeKeySource();
    const encryptor = new RecordEncryptor({ keys });
    keys.failWith = new AppError('UNAVAILABLE');
    await expect(encryptor.encryptBatch('t', [{ record: decoded(event('a')), schema, fingerprint }])).rejects.toMatchObject({ retryable: true, code: 'UNAVAILABLE' });
    keys.failWith = new AppError('CONTEXT_FORBIDDEN');
    await expect(encryptor.encryptBatch('t', [{ record: decoded(event('a')), schema, fingerprint }])).rejects.toMatchObject({ retryable: true, code: 'UNAVAILABLE' });
  });

  it('marks values a consumer is not entitled to, or whose keys were deleted after delivery', async () => {
    const keys = new FakeKeySource();
    const { bytes, delivered, deliveredType } = await encryptAll(keys, [event('alice'), event('bob'), event('carol')]);
    const payloads = bytes.map((b) => deliveredType.fromBuffer(b));

    const outsider = new RecordDecryptor({ keys: new FakeKeySource(['marketing']) });
    const denied = await outsider.decryptBatch('signups', delivered, payloads);
    expect((denied.records[0] as Record<string, unknown>).email).toMatchObject({ reason: 'not entitled', $encrypted: expect.any(String) });
    expect(denied.stats.decrypted).toBe(0);

    keys.deletedUsers.add('bob');
    keys.deletedCategories.add('carol/network');
    const consumer = new RecordDecryptor({ keys });
    const { records } = await consumer.decryptBatch('signups', delivered, payloads);
    const [alice, bob, carol] = records as Record<string, unknown>[];
    expect(alice!.email).toBe('alice-0@example.com');
    expect(bob!.email).toMatchObject({ reason: 'key deleted' });
    expect((bob!.contacts as Record<string, unknown>[])[1]!.email).toMatchObject({ reason: 'key deleted' });
    expect(carol!.ip).toMatchObject({ reason: 'key deleted' });
    expect(carol!.email).toBe('carol-0@example.com');
    expect(carol!.url).toBe('/signup');
  });

  it('rejects ciphertexts moved to another field, element, record (subject) or event type', async () => {
    const keys = new FakeKeySource();
    const { out, delivered } = await encryptAll(keys, [event('alice'), event('bob')]);
    const alice = out[0]!.record as Record<string, unknown>;
    const bob = out[1]!.record as Record<string, unknown>;
    const contacts = alice.contacts as Record<string, unknown>[];
    const notes = alice.notes as Record<string, unknown>;
    const tampered = {
      ...alice,
      name: alice.email, // same subject, same category, other field
      contacts: [{ ...contacts[0], email: contacts[1]!.email }, { ...contacts[1], email: contacts[0]!.email }], // swapped elements
      notes: { first: notes['we}ird"key'], 'we}ird"key': notes.first }, // swapped map values
      ip: bob.ip, // another subject's value
    };
    const consumer = new RecordDecryptor({ keys });
    const [r] = (await consumer.decryptBatch('signups', delivered, [tampered])).records as Record<string, unknown>[];
    const reason = (v: unknown): string => (v as EncryptedMarker).reason;
    expect(reason(r!.name)).toBe('tampered');
    expect((r!.contacts as Record<string, unknown>[]).map((c) => reason(c.email))).toEqual(['tampered', 'tampered']);
    expect(reason((r!.notes as Record<string, unknown>).first)).toBe('tampered');
    expect(['key mismatch', 'tampered']).toContain(reason(r!.ip));
    expect(r!.email).toBe('alice-0@example.com');

    const other = await consumer.decryptBatch('other_type', delivered, [alice]);
    expect(reason((other.records[0] as Record<string, unknown>).email)).toBe('tampered');
  });

  it('binds each batch to its own event type when one encryptor serves several (associated data cached per type)', async () => {
    const keys = new FakeKeySource();
    const encryptor = new RecordEncryptor({ keys });
    const [a] = await encryptor.encryptBatch('signups', [{ record: decoded(event('alice')), schema, fingerprint }]);
    const [b] = await encryptor.encryptBatch('logins', [{ record: decoded(event('alice')), schema, fingerprint }]);
    const [{ key: contact }] = (await keys.getKeys([{ userId: 'alice', category: 'contact' }], { context: 'events' })) as [{ status: 'found'; key: { keyId: number; key: Buffer } }];
    const emailOf = (r: unknown): Buffer => (r as Record<string, unknown>).email as Buffer;
    expect(decrypt(contact, emailOf(a!.record), associatedData('signups', 'email')).toString('utf8')).toBe('alice-0@example.com');
    expect(decrypt(contact, emailOf(b!.record), associatedData('logins', 'email')).toString('utf8')).toBe('alice-0@example.com');
    expect(() => decrypt(contact, emailOf(b!.record), associatedData('signups', 'email'))).toThrow(/Authentication failed/);
  });

  it('binds values to documented field paths and UTF-8 strings (what BigQuery AEAD.DECRYPT_STRING needs)', async () => {
    const keys = new FakeKeySource();
    const { out } = await encryptAll(keys, [event('alice')]);
    const r = out[0]!.record as Record<string, unknown>;
    const [{ key: contact }] = (await keys.getKeys([{ userId: 'alice', category: 'contact' }], { context: 'events' })) as [{ status: 'found'; key: { keyId: number; key: Buffer } }];
    const [{ key: content }] = (await keys.getKeys([{ userId: 'alice', category: 'content' }], { context: 'events' })) as [{ status: 'found'; key: { keyId: number; key: Buffer } }];
    expect(decrypt(contact, r.email as Buffer, associatedData('signups', 'email')).toString('utf8')).toBe('alice-0@example.com');
    const c1 = (r.contacts as Record<string, unknown>[])[1]!.email as Buffer;
    expect(decrypt(contact, c1, associatedData('signups', 'contacts[1].email')).toString('utf8')).toBe('b.alice@example.com');
    const note = (r.notes as Record<string, unknown>)['we}ird"key'] as Buffer;
    expect(decrypt(content, note, associatedData('signups', 'notes{"we}ird\\"key"}')).toString('utf8')).toBe('other note');
  });
});
