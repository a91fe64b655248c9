import { describe, expect, it } from 'vitest';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { FakeKeySource } from '../lib/privacy/test-keys.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';
import { createEncryptionTransform } from './encryption-transform.ts';
import { clearPersonalData, refusalError } from './personal-guard.ts';
import { SchemaResolver } from './schemas.ts';
import { eventTypeRecord, pageViewSchema } from '../test/support/etl.ts';
import { identityTransform } from './transform.ts';

const signUpSchema: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'contact', type: { type: 'record', name: 'Contact', fields: [{ name: 'phone', type: ['null', 'string'], default: null, semanticType: 'phoneNumber' }] } },
    { name: 'devices', type: { type: 'array', items: 'string' }, semanticType: 'deviceId' },
    { name: 'previous', type: ['null', 'Contact'], default: null },
  ],
};
const version = (schema: AvroSchemaJson, n = 1): SchemaVersion => ({ version: n, fingerprint: schemaFingerprint(schema), schema, createdAt: '2026-01-01T00:00:00.000Z' });
const encryption = createEncryptionTransform({ keys: new FakeKeySource() });

describe('clearPersonalData', () => {
  it('flags a schema with personal fields delivered as is, naming the fields', () => {
    const v = version(signUpSchema);
    const clear = clearPersonalData(v, identityTransform.deliveredSchema(signUpSchema));
    expect(clear).toMatchObject({ fingerprint: v.fingerprint, version: 1, fields: ['email', 'contact.phone', 'devices[]', 'previous.phone'] });
  });
  it('passes the encryption transform’s delivered schema and schemas without personal fields', () => {
    expect(clearPersonalData(version(signUpSchema), encryption.deliveredSchema(signUpSchema))).toBeUndefined();
    expect(clearPersonalData(version(pageViewSchema), pageViewSchema)).toBeUndefined();
  });
  it('refuses a schema whose annotations the catalogue cannot read', () => {
    const odd = { ...pageViewSchema, fields: [...(pageViewSchema.fields as object[]), { name: 'x', type: 'string', semanticType: 'shoeSize' }] };
    expect(clearPersonalData(version(odd), odd)?.message).toContain('cannot be checked');
  });
  it('makes a CONFIG_INVALID error naming the type, fields and the fix', () => {
    const err = refusalError('sign_up', [clearPersonalData(version(signUpSchema), signUpSchema)!]);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/sign_up.*email, contact\.phone.*PADLOCK_URL/);
  });
});

describe('SchemaResolver', () => {
  it('refuses versions with personal fields in clear: not resolvable, reported', async () => {
    const registry = new MemoryRegistryStore();
    const resolver = new SchemaResolver('sign_up', registry, identityTransform, 0);
    const record = eventTypeRecord('sign_up', [pageViewSchema, signUpSchema]);
    const refused = resolver.load(record);
    const [v1, v2] = record.versions as [SchemaVersion, SchemaVersion];
    expect(refused.map((r) => r.fingerprint)).toEqual([v2.fingerprint]);
    expect(resolver.get(v1.fingerprint)).toBeDefined();
    expect(resolver.get(v2.fingerprint)).toBeUndefined();
    expect(resolver.isRefused(v2.fingerprint)).toBe(true);
    expect(resolver.load(record)).toHaveLength(1);
  });
  it('resolves them with the encryption transform', () => {
    const resolver = new SchemaResolver('sign_up', new MemoryRegistryStore(), encryption, 0);
    const record = eventTypeRecord('sign_up', [signUpSchema]);
    expect(resolver.load(record)).toEqual([]);
    expect(resolver.get(record.versions[0]!.fingerprint)).toBeDefined();
  });
});
