import { describe, expect, it } from 'vitest';
import { deriveDeliveredSchema } from '../lib/privacy/delivered-schema.ts';
import { mergeSchemas, sameSchema, tableSchemaOf, type BigQueryField } from './bigquery-schema.ts';

const payload = {
  type: 'record',
  name: 'Play',
  namespace: 'com.example',
  doc: 'A track played',
  fields: [
    { name: 'trackId', type: 'string', doc: 'Catalogue id of the track' },
    { name: 'plays', type: 'int' },
    { name: 'score', type: 'double' },
    { name: 'skipped', type: 'boolean' },
    { name: 'raw', type: 'bytes' },
    { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 4 } },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'], doc: 'How it was played' } },
    { name: 'note', type: ['null', 'string'], default: null },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'counters', type: { type: 'map', values: 'long' } },
    { name: 'device', type: { type: 'record', name: 'Device', fields: [{ name: 'os', type: 'string' }, { name: 'version', type: ['null', 'int'] }] } },
    { name: 'previous', type: ['null', 'Device'], default: null },
    { name: 'playedOn', type: { type: 'int', logicalType: 'date' } },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'localAt', type: { type: 'long', logicalType: 'local-timestamp-millis' } },
    { name: 'clock', type: { type: 'int', logicalType: 'time-millis' } },
    { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
    { name: 'huge', type: { type: 'bytes', logicalType: 'decimal', precision: 60, scale: 20 } },
    { name: 'id', type: { type: 'string', logicalType: 'uuid' } },
    { name: 'oddLogical', type: { type: 'string', logicalType: 'timestamp-millis' } },
    { name: 'either', type: ['null', 'int', 'string'] },
  ],
};

const field = (fields: BigQueryField[], name: string): BigQueryField => {
  const f = fields.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no column ${name}`);
  return f;
};

describe('tableSchemaOf (BigQuery Avro mapping with useAvroLogicalTypes)', () => {
  const columns = tableSchemaOf(payload);
  const p = field(columns, 'payload').fields!;

  it('has the delivered file envelope, receiveTime a TIMESTAMP to partition on', () => {
    expect(columns.map((c) => [c.name, c.type, c.mode])).toEqual([
      ['eventId', 'STRING', 'REQUIRED'],
      ['receiveTime', 'TIMESTAMP', 'REQUIRED'],
      ['payload', 'RECORD', 'REQUIRED'],
    ]);
    expect(field(columns, 'receiveTime').description).toMatch(/accepted/);
    expect(field(columns, 'payload').description).toBe('A track played');
  });

  it.each([
    ['trackId', 'STRING', 'REQUIRED'],
    ['plays', 'INTEGER', 'REQUIRED'],
    ['score', 'FLOAT', 'REQUIRED'],
    ['skipped', 'BOOLEAN', 'REQUIRED'],
    ['raw', 'BYTES', 'REQUIRED'],
    ['hash', 'BYTES', 'REQUIRED'],
    ['kind', 'STRING', 'REQUIRED'],
    ['note', 'STRING', 'NULLABLE'],
    ['tags', 'STRING', 'REPEATED'],
    ['counters', 'RECORD', 'REPEATED'],
    ['device', 'RECORD', 'REQUIRED'],
    ['previous', 'RECORD', 'NULLABLE'],
    ['playedOn', 'DATE', 'REQUIRED'],
    ['at', 'TIMESTAMP', 'REQUIRED'],
    ['localAt', 'DATETIME', 'REQUIRED'],
    ['clock', 'TIME', 'REQUIRED'],
    ['price', 'NUMERIC', 'REQUIRED'],
    ['huge', 'BIGNUMERIC', 'REQUIRED'],
    ['id', 'STRING', 'REQUIRED'],
    ['oddLogical', 'STRING', 'REQUIRED'],
    ['either', 'RECORD', 'NULLABLE'],
  ])('%s → %s %s', (name, type, mode) => {
    expect(field(p, name)).toMatchObject({ type, mode });
  });

  it('maps maps to key/value records, named-type references to the same columns, unions to one field per branch', () => {
    expect(field(p, 'counters').fields).toEqual([
      { name: 'key', type: 'STRING', mode: 'REQUIRED' },
      { name: 'value', type: 'INTEGER', mode: 'REQUIRED' },
    ]);
    expect(field(p, 'previous').fields).toEqual(field(p, 'device').fields);
    expect(field(p, 'device').fields).toEqual([
      { name: 'os', type: 'STRING', mode: 'REQUIRED' },
      { name: 'version', type: 'INTEGER', mode: 'NULLABLE' },
    ]);
    expect(field(p, 'either').fields).toEqual([
      { name: 'int', type: 'INTEGER', mode: 'NULLABLE' },
      { name: 'string', type: 'STRING', mode: 'NULLABLE' },
    ]);
  });

  it('describes columns with the Avro docs (field doc first, then the named type\'s)', () => {
    expect(field(p, 'trackId').description).toBe('Catalogue id of the track');
    expect(field(p, 'kind').description).toBe('How it was played');
    expect(field(p, 'plays').description).toBeUndefined();
  });

  it('makes encrypted personal fields BYTES, saying how to decrypt them', () => {
    const source = {
      type: 'record',
      name: 'SignUp',
      fields: [
        { name: 'userId', type: 'string', semanticType: 'userId' },
        { name: 'email', type: 'string', semanticType: 'email', doc: 'Contact address' },
      ],
    };
    const cols = field(tableSchemaOf(deriveDeliveredSchema(source)), 'payload').fields!;
    expect(field(cols, 'userId')).toMatchObject({ type: 'STRING', mode: 'REQUIRED' });
    expect(field(cols, 'email')).toMatchObject({ type: 'BYTES', mode: 'NULLABLE' });
    expect(field(cols, 'email').description).toMatch(/^Contact address \[personal: email, category contact; Tink AEAD ciphertext/);
  });

  it('refuses what BigQuery cannot hold, naming the field', () => {
    const nested = { type: 'record', name: 'N', fields: [{ name: 'm', type: { type: 'array', items: { type: 'array', items: 'int' } } }] };
    expect(() => tableSchemaOf(nested)).toThrow(/payload\.m.*array of arrays/);
    const recursive = { type: 'record', name: 'Node', fields: [{ name: 'next', type: ['null', 'Node'] }] };
    expect(() => tableSchemaOf(recursive)).toThrow(/recursive type Node/);
    // Names are looked up in Maps: an Object.prototype member is just an unknown type.
    expect(() => tableSchemaOf({ type: 'record', name: 'R', fields: [{ name: 'c', type: 'constructor' }] })).toThrow(/unknown type constructor/);
  });
});

describe('mergeSchemas', () => {
  const v1 = tableSchemaOf({ type: 'record', name: 'E', fields: [{ name: 'a', type: 'string' }, { name: 'gone', type: 'long' }] });
  const v2 = tableSchemaOf({
    type: 'record',
    name: 'E',
    fields: [
      { name: 'a', type: 'string' },
      { name: 'b', type: 'string', default: '' },
      { name: 'c', type: { type: 'record', name: 'C', fields: [{ name: 'x', type: 'int' }] }, default: { x: 0 } },
    ],
  });

  it('adds new columns as NULLABLE (all the way down) and relaxes columns a version lacks', () => {
    const m = mergeSchemas(v1, v2);
    expect(m.added).toEqual(['payload.b', 'payload.c']);
    expect(m.relaxed).toEqual(['payload.gone']);
    const p = field(m.fields, 'payload').fields!;
    expect(p.map((f) => [f.name, f.mode])).toEqual([
      ['a', 'REQUIRED'],
      ['gone', 'NULLABLE'],
      ['b', 'NULLABLE'],
      ['c', 'NULLABLE'],
    ]);
    expect(field(p, 'c').fields).toEqual([{ name: 'x', type: 'INTEGER', mode: 'NULLABLE' }]);
    expect(sameSchema(mergeSchemas(m.fields, v2).fields, m.fields)).toBe(true);
    expect(sameSchema(m.fields, v1)).toBe(false);
  });

  it('changes nothing for the same version', () => {
    const m = mergeSchemas(v1, v1);
    expect(m).toMatchObject({ added: [], relaxed: [] });
    expect(sameSchema(m.fields, v1)).toBe(true);
  });

  it('refuses a changed column type or repetition (SCHEMA_INCOMPATIBLE), naming the column', () => {
    const bytesA = tableSchemaOf({ type: 'record', name: 'E', fields: [{ name: 'a', type: 'bytes' }] });
    expect(() => mergeSchemas(v1, bytesA)).toThrow(/column 'payload\.a' is STRING in the table but BYTES/);
    const listA = tableSchemaOf({ type: 'record', name: 'E', fields: [{ name: 'a', type: { type: 'array', items: 'string' } }] });
    expect(() => mergeSchemas(v1, listA)).toThrow(expect.objectContaining({ code: 'SCHEMA_INCOMPATIBLE' }));
  });
});
