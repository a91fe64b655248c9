import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { compileEncryptionPlan, deriveDeliveredSchema, ENCRYPTION_FORMAT, type EncryptionAnnotation } from './delivered-schema.ts';
import type { AvroSchemaJson } from '../registry/types.ts';

const encrypted = (over: Partial<EncryptionAnnotation>): unknown => [
  'null',
  {
    type: 'bytes',
    encryption: { format: ENCRYPTION_FORMAT, keyContext: 'events', plaintext: 'utf8', sourceType: 'string', ...over },
  },
];

function record(fields: object[], extra: object = {}): AvroSchemaJson {
  return { type: 'record', name: 'Ev', namespace: 'com.example', fields: [{ name: 'userId', type: 'string', semanticType: 'userId' }, ...fields], ...extra };
}

function fieldsOf(schema: AvroSchemaJson): Record<string, Record<string, unknown>> {
  return Object.fromEntries((schema.fields as Record<string, unknown>[]).map((f) => [f.name as string, f]));
}

describe('deriveDeliveredSchema', () => {
  it('turns a personal string field into nullable bytes with default null, subject and others in clear', () => {
    const source = record([
      { name: 'email', type: 'string', semanticType: 'email' },
      { name: 'country', type: 'string', semanticType: 'country' },
      { name: 'url', type: 'string' },
    ]);
    const f = fieldsOf(deriveDeliveredSchema(source));
    expect(f.email).toEqual({ name: 'email', semanticType: 'email', type: encrypted({ semanticType: 'email', category: 'contact' }), default: null });
    expect(f.userId).toEqual({ name: 'userId', type: 'string', semanticType: 'userId' });
    expect(f.country).toEqual({ name: 'country', type: 'string', semanticType: 'country' });
    expect(f.url).toEqual({ name: 'url', type: 'string' });
  });

  it('turns a nullable union ["null","string"] into ["null","bytes"]', () => {
    const f = fieldsOf(deriveDeliveredSchema(record([{ name: 'phone', type: ['null', 'string'], default: null, semanticType: 'phoneNumber' }])));
    expect(f.phone?.type).toEqual(encrypted({ semanticType: 'phoneNumber', category: 'contact' }));
    expect(f.phone?.default).toBeNull();
  });

  it('encrypts a personal field in each element of an array of records', () => {
    const source = record([
      {
        name: 'contacts',
        type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }, { name: 'label', type: 'string' }] } },
      },
    ]);
    const items = (fieldsOf(deriveDeliveredSchema(source)).contacts?.type as { items: AvroSchemaJson }).items;
    const f = fieldsOf(items);
    expect(f.email?.type).toEqual(encrypted({ semanticType: 'email', category: 'contact' }));
    expect(f.label).toEqual({ name: 'label', type: 'string' });
  });

  it('encrypts every item of an annotated array (as non-null bytes) and every value of an annotated map', () => {
    const source = record([
      { name: 'emails', type: { type: 'array', items: 'string' }, semanticType: 'email' },
      { name: 'devices', type: { type: 'map', values: 'string' }, semanticType: 'deviceId' },
      { name: 'ips', type: { type: 'array', items: { type: 'string', semanticType: 'ipAddress' } } },
    ]);
    const f = fieldsOf(deriveDeliveredSchema(source));
    // Array items are not nullable: BigQuery has no null array elements (a keyless item is empty bytes).
    expect(f.emails?.type).toEqual({ type: 'array', items: (encrypted({ semanticType: 'email', category: 'contact' }) as unknown[])[1] });
    expect(f.devices?.type).toEqual({ type: 'map', values: encrypted({ semanticType: 'deviceId', category: 'device' }) });
    expect(f.ips?.type).toEqual({ type: 'array', items: (encrypted({ semanticType: 'ipAddress', category: 'network' }) as unknown[])[1] });
    const plan = compileEncryptionPlan(source);
    expect(plan.root).toMatchObject({
      kind: 'record',
      fields: [
        { name: 'emails', node: { kind: 'array', items: { kind: 'personal', withoutKey: 'empty' } } },
        { name: 'devices', node: { kind: 'map', values: { kind: 'personal', withoutKey: 'null' } } },
        { name: 'ips', node: { kind: 'array', items: { kind: 'personal', withoutKey: 'empty' } } },
      ],
    });
  });

  it('keeps the items of an array nullable only where the source items are', () => {
    const source = record([
      { name: 'phones', type: { type: 'array', items: ['null', 'string'] }, semanticType: 'phoneNumber' },
      { name: 'ids', type: ['null', { type: 'array', items: ['string', 'long'] }], default: null, semanticType: 'deviceId' },
    ]);
    const f = fieldsOf(deriveDeliveredSchema(source));
    expect(f.phones?.type).toEqual({ type: 'array', items: encrypted({ semanticType: 'phoneNumber', category: 'contact' }) });
    const ids = f.ids?.type as unknown[];
    expect(ids[0]).toBe('null');
    expect((ids[1] as { items: unknown }).items).toEqual((encrypted({ semanticType: 'deviceId', category: 'device', plaintext: 'avro', sourceType: ['string', 'long'] }) as unknown[])[1]);
  });

  it('handles nested records, nullable records and named references', () => {
    const address = { type: 'record', name: 'Address', fields: [{ name: 'street', type: 'string', semanticType: 'postalAddress' }, { name: 'city', type: 'string' }] };
    const source = record([
      { name: 'home', type: address },
      { name: 'work', type: ['null', 'Address'], default: null },
    ]);
    const delivered = deriveDeliveredSchema(source);
    const f = fieldsOf(delivered);
    expect(fieldsOf(f.home?.type as AvroSchemaJson).street?.type).toEqual(encrypted({ semanticType: 'postalAddress', category: 'contact' }));
    expect(f.work?.type).toEqual(['null', 'Address']);
    expect(() => avro.Type.forSchema(delivered as avro.Schema)).not.toThrow();
    const plan = compileEncryptionPlan(source);
    expect(plan.root).toMatchObject({ kind: 'record', fields: [{ name: 'home' }, { name: 'work', node: { kind: 'union', single: true } }] });
  });

  it('uses Avro binary for non-string leaves and writes named types out in full', () => {
    const source = record([
      { name: 'born', type: { type: 'int', logicalType: 'date' }, semanticType: 'birthDate' },
      { name: 'lat', type: ['null', 'double'], default: null, semanticType: 'location' },
      { name: 'segment', type: { type: 'enum', name: 'Segment', symbols: ['A', 'B'] }, semanticType: 'adsProfile' },
      { name: 'raw', type: 'bytes', semanticType: 'deviceId' },
    ]);
    const f = fieldsOf(deriveDeliveredSchema(source));
    expect(f.born?.type).toEqual(encrypted({ semanticType: 'birthDate', category: 'demographics', plaintext: 'avro', sourceType: { type: 'int', logicalType: 'date' } }));
    expect(f.lat?.type).toEqual(encrypted({ semanticType: 'location', category: 'location', plaintext: 'avro', sourceType: 'double' }));
    expect(f.segment?.type).toEqual(
      encrypted({ semanticType: 'adsProfile', category: 'ads', plaintext: 'avro', sourceType: { type: 'enum', name: 'com.example.Segment', symbols: ['A', 'B'] } }),
    );
    expect(f.raw?.type).toEqual(encrypted({ semanticType: 'deviceId', category: 'device', plaintext: 'raw', sourceType: 'bytes' }));
  });

  it('returns the source itself when nothing is personal', () => {
    const source = record([{ name: 'url', type: 'string' }]);
    expect(deriveDeliveredSchema(source)).toBe(source);
    expect(compileEncryptionPlan(source).root).toBeUndefined();
  });

  it('is deterministic and pure (same JSON every time, source untouched)', () => {
    const source = record([{ name: 'email', type: ['null', 'string'], semanticType: 'email', default: null }, { name: 'm', type: { type: 'map', values: 'string' }, semanticType: 'freeText' }]);
    const before = JSON.stringify(source);
    const a = JSON.stringify(deriveDeliveredSchema(source));
    const b = JSON.stringify(deriveDeliveredSchema(JSON.parse(before) as AvroSchemaJson));
    expect(a).toBe(b);
    expect(JSON.stringify(source)).toBe(before);
  });

  it('records the configured key context and the categories and subject path', () => {
    const source = record([{ name: 'email', type: 'string', semanticType: 'email' }, { name: 'ip', type: 'string', semanticType: 'ipAddress' }]);
    const plan = compileEncryptionPlan(source, { keyContext: 'analytics' });
    expect(plan.categories).toEqual(['contact', 'network']);
    expect(plan.subjectPath).toEqual(['userId']);
    expect(JSON.stringify(plan.delivered)).toContain('"keyContext":"analytics"');
  });

  it('fails closed on an unknown semantic type or a personal annotation on a record', () => {
    expect(() => deriveDeliveredSchema(record([{ name: 'x', type: 'string', semanticType: 'nope' }]))).toThrow(/unknown semantic type/);
    expect(() =>
      deriveDeliveredSchema(record([{ name: 'x', type: { type: 'record', name: 'X', fields: [{ name: 'a', type: 'string' }] }, semanticType: 'email' }])),
    ).toThrow(/on a record/);
  });
});
