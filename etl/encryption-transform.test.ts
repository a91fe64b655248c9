import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { AppError } from '../lib/errors.ts';
import { avroType } from '../lib/avro/long.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { FakeKeySource } from '../lib/privacy/test-keys.ts';
import type { AvroSchemaJson, SchemaVersion } from '../lib/registry/types.ts';
import { createEncryptionTransform } from './encryption-transform.ts';
import { notOneDatum } from './transform.ts';

const schema: AvroSchemaJson = {
  type: 'record',
  name: 'Play',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'ip', type: ['null', 'string'], default: null, semanticType: 'ipAddress' },
    { name: 'track', type: 'string' },
  ],
};
const version: SchemaVersion = { version: 1, fingerprint: schemaFingerprint(schema), schema, createdAt: '2026-01-01T00:00:00.000Z' };
const writer = avro.Type.forSchema(schema as avro.Schema);
const input = (userId: string, i: number) => ({
  record: writer.fromBuffer(writer.toBuffer({ userId, email: `${userId}@x.example`, ip: '10.1.2.3', track: `t${i}` })),
  version,
  eventId: `e${i}`,
});

describe('createEncryptionTransform', () => {
  it('implements RecordTransform: records valid against deliveredSchema, stats per record', async () => {
    const keys = new FakeKeySource();
    keys.deletedCategories.add('bob/network');
    const transform = createEncryptionTransform({ keys });
    const delivered = avro.Type.forSchema(transform.deliveredSchema(schema) as avro.Schema);
    const out = await transform.transformBatch('plays', [input('alice', 0), input('bob', 1)]);
    expect(out.map((o) => o.stats)).toEqual([
      { encryptedFields: 2, nulledFields: 0 },
      { encryptedFields: 1, nulledFields: 1 },
    ]);
    for (const o of out) {
      const bytes = delivered.toBuffer(o.record);
      expect(bytes.includes(Buffer.from('@x.example'))).toBe(false);
      expect(bytes.includes(Buffer.from('10.1.2.3'))).toBe(false);
    }
    expect((out[1]!.record as { ip: unknown }).ip).toBeNull();
    expect(keys.calls).toHaveLength(1);
  });

  it('keeps a schema without personal fields as it is (the pipeline then keeps the original bytes)', () => {
    const plain: AvroSchemaJson = { type: 'record', name: 'P', fields: [{ name: 'track', type: 'string' }] };
    expect(createEncryptionTransform({ keys: new FakeKeySource() }).deliveredSchema(plain)).toBe(plain);
  });

  it('throws a retryable AppError when padlock is down, so the ETL backs off without acking', async () => {
    const keys = new FakeKeySource();
    keys.failWith = new AppError('KEY_STORE_UNAVAILABLE');
    await expect(createEncryptionTransform({ keys }).transformBatch('plays', [input('a', 0)])).rejects.toMatchObject({ retryable: true });
    // The real client against a closed port: UNAVAILABLE, retryable.
    const unreachable = createPadlockClient({ url: 'http://127.0.0.1:9', service: 'etl', secret: 's', deadlineMs: 500 });
    await expect(createEncryptionTransform({ keys: unreachable }).transformBatch('plays', [input('a', 0)])).rejects.toMatchObject({ retryable: true, code: 'UNAVAILABLE' });
  });

  it('rejects message bytes that are not exactly one datum (the pipeline leaves that check to it), on the byte scan and on the object path', async () => {
    const marks = { name: 'marks', type: { type: 'array', items: 'null' }, default: [] };
    const scanned: AvroSchemaJson = { ...schema, fields: [...(schema.fields as object[]), marks] } as AvroSchemaJson;
    // A subject inside a nullable record is not on the byte scan's path: such records are decoded into objects.
    const viaObjects: AvroSchemaJson = {
      type: 'record',
      name: 'Nested',
      fields: [
        { name: 'user', type: ['null', { type: 'record', name: 'User', fields: [{ name: 'id', type: 'string', semanticType: 'userId' }] }], default: null },
        { name: 'email', type: 'string', semanticType: 'email' },
        marks,
      ],
    } as AvroSchemaJson;
    const transform = createEncryptionTransform({ keys: new FakeKeySource() });
    expect(transform.checksEncoded).toBe(true);
    for (const [typeSchema, value] of [
      [scanned, { userId: 'alice', email: 'alice@x.example', ip: '10.1.2.3', track: 't', marks: [null] }],
      [viaObjects, { user: { id: 'alice' }, email: 'alice@x.example', marks: [null] }],
    ] as const) {
      const writerType = avroType(typeSchema);
      const deliveredType = avroType(transform.deliveredSchema(typeSchema));
      const v: SchemaVersion = { version: 1, fingerprint: schemaFingerprint(typeSchema), schema: typeSchema, createdAt: '2026-01-01T00:00:00.000Z' };
      const good = writerType.toBuffer(value);
      // `marks` ends the record: [1 item, end]. 2^52 nulls in the same place take 9 bytes.
      const hostile = Buffer.concat([good.subarray(0, good.length - 2), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00])]);
      const bytes = [good, good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])]), Buffer.from([0x01]), hostile];
      const out = await transform.transformEncodedBatch!('plays', bytes.map((b, i) => ({ bytes: b, version: v, eventId: `e${i}`, writerType, deliveredType })));
      expect(out[0]!.rejected).toBeUndefined();
      expect(deliveredType.fromBuffer(out[0]!.payload!)).toMatchObject({ marks: [null] });
      expect(out[0]!.payload!.includes(Buffer.from('alice@x.example'))).toBe(false);
      expect(out.slice(1)).toEqual(bytes.slice(1).map(() => ({ rejected: notOneDatum })));
    }
  });
});
