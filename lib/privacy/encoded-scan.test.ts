import { describe, expect, it } from 'vitest';
import { avroType } from '../avro/long.ts';
import type { AvroSchemaJson } from '../registry/types.ts';
import { RecordDecryptor } from './decryptor.ts';
import { RecordEncryptor } from './record-encryptor.ts';
import { FakeKeySource } from './test-keys.ts';

/** Personal values everywhere the plan reaches: nested records, arrays (of leaves, nullable items, records), maps, unions (null first, null last, several records). */
const schema: AvroSchemaJson = {
  type: 'record',
  name: 'Signup',
  namespace: 'com.example',
  fields: [
    { name: 'account', type: { type: 'record', name: 'Account', fields: [{ name: 'plan', type: 'string' }, { name: 'owner', type: 'string', semanticType: 'userId' }] } },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'name', type: ['string', 'null'], semanticType: 'fullName' },
    { name: 'ip', type: ['null', 'string'], default: null, semanticType: 'ipAddress' },
    { name: 'born', type: ['null', 'int'], default: null, semanticType: 'birthDate' },
    { name: 'segment', type: { type: 'enum', name: 'Segment', symbols: ['A', 'B'] }, semanticType: 'adsProfile' },
    { name: 'visits', type: 'long' },
    {
      name: 'contacts',
      type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }, { name: 'label', type: 'string' }] } },
    },
    { name: 'notes', type: { type: 'map', values: 'string' }, semanticType: 'freeText' },
    { name: 'devices', type: { type: 'array', items: 'bytes' }, semanticType: 'deviceId' },
    { name: 'aliases', type: { type: 'array', items: ['null', 'string'] }, semanticType: 'fullName' },
    {
      name: 'where',
      type: [
        'null',
        { type: 'record', name: 'Home', fields: [{ name: 'street', type: 'string', semanticType: 'postalAddress' }] },
        { type: 'record', name: 'Work', fields: [{ name: 'company', type: 'string' }, { name: 'phone', type: 'string', semanticType: 'phoneNumber' }] },
      ],
      default: null,
    },
    { name: 'url', type: 'string' },
  ],
};
const fingerprint = 'f-scan';
const writerType = avroType(schema);

function event(owner: string, n: number): Record<string, unknown> {
  return {
    account: { plan: 'pro', owner },
    email: `${owner}-${n}@example.com`,
    name: n % 3 === 0 ? null : `Name of ${owner} ✓`,
    ip: n % 2 === 0 ? `10.0.0.${n}` : null,
    born: n % 2 === 1 ? 7000 + n : null,
    segment: 'B',
    visits: 2n ** 60n + BigInt(n),
    contacts: Array.from({ length: n % 3 }, (_, i) => ({ email: `c${i}.${owner}@example.com`, label: `label ${i}` })),
    notes: { first: `secret note of ${owner}`, 'we}ird"key': 'other note' },
    devices: [Buffer.from(`device-${owner}`), Buffer.alloc(0)],
    aliases: [`alias-${n}`, null],
    where: n % 3 === 0 ? null : n % 3 === 1 ? { 'com.example.Home': { street: `${n} Main St` } } : { 'com.example.Work': { company: 'ACME', phone: `+33 1 ${n}` } },
    url: '/signup',
  };
}

/** Ciphertexts (random IVs) as their length and key id, so two encryptions of the same values compare equal. */
function masked(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.length >= 33 && value[0] === 1 ? `ciphertext(${value.length}, key ${value.readUInt32BE(1)})` : value.toString('hex');
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return value.map(masked);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v)]));
  return value;
}

async function bothPaths(keys: FakeKeySource, values: Record<string, unknown>[]) {
  const encryptor = new RecordEncryptor({ keys });
  const delivered = encryptor.deliveredSchema(schema);
  const deliveredType = avroType(delivered);
  const bytes = values.map((v) => writerType.toBuffer(v));
  const viaObjects = await encryptor.encryptBatch('signups', bytes.map((b) => ({ record: writerType.fromBuffer(b), schema, fingerprint })));
  const scanned = bytes.map((b) => encryptor.scanEncoded('signups', { bytes: b, schema, fingerprint })!);
  const viaBytes = await encryptor.encryptScanned('signups', scanned);
  return { encryptor, delivered, deliveredType, bytes, viaObjects, viaBytes };
}

describe('encrypting the encoded record (scan + splice) against decoding, encrypting and re-encoding', () => {
  it('gives the same delivered datum: same shape, key ids, stats, and ciphertexts that decrypt to the source values', async () => {
    const keys = new FakeKeySource();
    const values = Array.from({ length: 9 }, (_, n) => event(n % 2 === 0 ? 'alice' : 'bob', n));
    const { delivered, deliveredType, viaObjects, viaBytes } = await bothPaths(keys, values);
    for (let i = 0; i < values.length; i++) {
      const fromBytes = deliveredType.fromBuffer(viaBytes[i]!.payload);
      const fromObjects = deliveredType.fromBuffer(deliveredType.toBuffer(viaObjects[i]!.record));
      expect(masked(fromBytes)).toEqual(masked(fromObjects));
      expect(viaBytes[i]!.stats).toEqual(viaObjects[i]!.stats);
    }
    expect(viaBytes.every((r) => r.stats.encryptedFields > 5)).toBe(true);
    const decryptor = new RecordDecryptor({ keys });
    const { records, stats } = await decryptor.decryptBatch('signups', delivered, viaBytes.map((r) => deliveredType.fromBuffer(r.payload)));
    expect(stats.unreadable).toEqual({});
    expect(masked(records)).toEqual(masked(values));
  });

  it('writes null (and empty bytes for array items) without a key, as the object path does', async () => {
    const keys = new FakeKeySource();
    keys.deletedUsers.add('bob');
    keys.deletedCategories.add('alice/contact');
    const values = [event('alice', 1), event('bob', 2), event('carol', 4)];
    const { deliveredType, viaObjects, viaBytes } = await bothPaths(keys, values);
    for (let i = 0; i < values.length; i++) {
      expect(masked(deliveredType.fromBuffer(viaBytes[i]!.payload))).toEqual(masked(deliveredType.fromBuffer(deliveredType.toBuffer(viaObjects[i]!.record))));
      expect(viaBytes[i]!.stats).toEqual(viaObjects[i]!.stats);
    }
    expect(viaBytes[1]!.stats.encryptedFields).toBe(0);
    expect(viaBytes[1]!.stats.nulledFields).toBeGreaterThan(5);
    expect(viaBytes[0]!.stats.nulledFields).toBeGreaterThan(0);
  });

  it('copies a record without personal data as it is, and refuses bytes that are not one datum', async () => {
    const encryptor = new RecordEncryptor({ keys: new FakeKeySource() });
    const plain: AvroSchemaJson = { type: 'record', name: 'Plain', fields: [{ name: 'a', type: 'string' }] };
    const bytes = avroType(plain).toBuffer({ a: 'x' });
    const [out] = await encryptor.encryptScanned('plain', [encryptor.scanEncoded('plain', { bytes, schema: plain, fingerprint: 'p' })!]);
    expect(out!.payload).toBe(bytes);
    const good = writerType.toBuffer(event('alice', 1));
    expect(() => encryptor.scanEncoded('signups', { bytes: good.subarray(0, good.length - 1), schema, fingerprint })).toThrow();
    expect(() => encryptor.scanEncoded('signups', { bytes: Buffer.concat([good, Buffer.from([0])]), schema, fingerprint })).toThrow();
  });
});
