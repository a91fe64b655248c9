import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { associatedData, decrypt } from '../crypto/aead.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import { compileEncryptedValuePlan, encryptedValuesOf, subjectOfPayload } from './encrypted-values.ts';
import { RecordEncryptor } from './record-encryptor.ts';
import { lookupSubject, mergeSubjectIndexes, parseSubjectIndex, serializeSubjectIndex, subjectHash, SubjectIndexBuilder } from './subject-index.ts';
import { FakeKeySource } from './test-keys.ts';

const email = { schemaPath: 'email', category: 'contact' };
const ip = { schemaPath: 'ip', category: 'network' };

describe('subject index', () => {
  it('writes the same bytes whatever order the values were counted in', () => {
    const a = new SubjectIndexBuilder('signups', '2026-11-30T16');
    a.addFile('p/part-00001.avro');
    a.addFile('p/part-00000.avro');
    a.add('u1', email);
    a.add('u2', ip, 2);
    a.add('u1', email);
    const b = new SubjectIndexBuilder('signups', '2026-11-30T16');
    b.addFile('p/part-00000.avro');
    b.addFile('p/part-00001.avro');
    b.add('u2', ip);
    b.add('u1', email, 2);
    b.add('u2', ip);
    expect(serializeSubjectIndex(a.build()).equals(serializeSubjectIndex(b.build()))).toBe(true);
    expect(lookupSubject(a.build(), 'u1')).toEqual([{ field: email, values: 2 }]);
    expect(lookupSubject(a.build(), 'u2')).toEqual([{ field: ip, values: 2 }]);
    expect(lookupSubject(a.build(), 'u3')).toBeUndefined();
  });

  it('holds hashed ids only, never a user id in clear', () => {
    const b = new SubjectIndexBuilder('signups', '2026-11-30T16');
    b.add('alice@example.com-id', email);
    const bytes = serializeSubjectIndex(b.build()).toString('utf8');
    expect(bytes).not.toContain('alice');
    expect(bytes).toContain(subjectHash('alice@example.com-id'));
    expect(subjectHash('alice@example.com-id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('merges the indexes of disjoint file sets (shards) into the bytes of one pass', () => {
    const users = Array.from({ length: 3000 }, (_, i) => `user-${i}`); // the table grows several times
    const whole = new SubjectIndexBuilder('t', '2026-11-30');
    const shards = [new SubjectIndexBuilder('t', '2026-11-30'), new SubjectIndexBuilder('t', '2026-11-30'), new SubjectIndexBuilder('t', '2026-11-30')];
    for (let f = 0; f < 6; f++) {
      const name = `t/dt=2026-11-30/part-0000${f}.avro`;
      whole.addFile(name);
      shards[f % 3]!.addFile(name);
      users.forEach((u, i) => {
        if ((i + f) % 4 !== 0) return;
        const field = i % 3 === 0 ? ip : email;
        whole.add(u, field, f + 1);
        shards[f % 3]!.add(u, field, f + 1);
      });
    }
    const merged = mergeSubjectIndexes(shards.map((s) => s.build()));
    const one = whole.build();
    expect(serializeSubjectIndex(merged).equals(serializeSubjectIndex(one))).toBe(true);
    // Every subject is found by the binary search, with its counts; no other is.
    for (const u of users) expect(lookupSubject(merged, u)).toEqual(lookupSubject(one, u));
    expect(users.every((u) => lookupSubject(merged, u) !== undefined)).toBe(true);
    expect(lookupSubject(merged, 'user-3000')).toBeUndefined();
    // The ETL's bytes (written without building the object) are the same.
    expect(whole.toBytes().equals(serializeSubjectIndex(one))).toBe(true);
    expect(new SubjectIndexBuilder('t', 'p').toBytes().equals(serializeSubjectIndex(new SubjectIndexBuilder('t', 'p').build()))).toBe(true);
    expect(() => mergeSubjectIndexes([one, new SubjectIndexBuilder('t', '2026-12-01').build()])).toThrow(/cannot merge/);
  });

  it('parses what it writes and refuses anything else with the reason', () => {
    const b = new SubjectIndexBuilder('t', '2026-11-30T01');
    b.add('u', email);
    const bytes = serializeSubjectIndex(b.build());
    expect(parseSubjectIndex(bytes)).toEqual(b.build());
    expect(() => parseSubjectIndex('{')).toThrow(/not JSON/);
    const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    expect(() => parseSubjectIndex(JSON.stringify({ ...json, hash: 'md5' }))).toThrow(/not valid/);
    expect(() => parseSubjectIndex(JSON.stringify({ ...json, subjects: [['alice', [1]]] }))).toThrow(/expected a subject hash/);
    expect(() => parseSubjectIndex(JSON.stringify({ ...json, subjects: [['0'.repeat(32), [1, 2]]] }))).toThrow(/has 2 counts for 1 fields/);
  });
});

describe('encrypted values of a delivered record', () => {
  const schema: AvroSchemaJson = {
    type: 'record',
    name: 'Signup',
    fields: [
      { name: 'userId', type: 'string', semanticType: 'userId' },
      { name: 'email', type: 'string', semanticType: 'email' },
      { name: 'phone', type: ['null', 'string'], default: null, semanticType: 'phoneNumber' },
      { name: 'contacts', type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }] } } },
      { name: 'notes', type: { type: 'map', values: 'string' }, semanticType: 'freeText' },
      { name: 'url', type: 'string' },
    ],
  };

  it('finds every ciphertext with its schema path, bound path and category; each decrypts under its bound path', async () => {
    const keys = new FakeKeySource();
    const encryptor = new RecordEncryptor({ keys });
    const type = avro.Type.forSchema(schema as avro.Schema);
    const record = { userId: 'u1', email: 'e@x', phone: null, contacts: [{ email: 'a@x' }, { email: 'b@x' }], notes: { 'k"1': 'n1' }, url: '/' };
    const [out] = await encryptor.encryptBatch('signups', [{ record: type.fromBuffer(type.toBuffer(record)), schema, fingerprint: 'f' }]);
    const delivered = encryptor.deliveredSchema(schema);
    const deliveredType = avro.Type.forSchema(delivered as avro.Schema);
    const payload = deliveredType.fromBuffer(deliveredType.toBuffer(out!.record));
    const plan = compileEncryptedValuePlan(delivered);
    expect(subjectOfPayload(plan, payload)).toBe('u1');
    const values = encryptedValuesOf(plan, payload);
    expect(values.map((v) => [v.schemaPath, v.path, v.category, v.keyContext])).toEqual([
      ['email', 'email', 'contact', 'events'],
      ['contacts[].email', 'contacts[0].email', 'contact', 'events'],
      ['contacts[].email', 'contacts[1].email', 'contact', 'events'],
      ['notes{}', 'notes{"k\\"1"}', 'content', 'events'],
    ]);
    const [found] = await keys.getKeys([{ userId: 'u1', category: 'contact' }], { context: 'events' });
    if (found?.status !== 'found') throw new Error('no key');
    expect(decrypt(found.key, values[2]!.ciphertext, associatedData('signups', values[2]!.path)).toString('utf8')).toBe('b@x');
  });
});
