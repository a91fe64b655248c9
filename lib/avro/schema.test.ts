import { describe, expect, it } from 'vitest';
import { avroType } from './long.ts';
import { canonicalForm } from './fingerprint.ts';
import { parseSchema, selfReferencingDefaults, type RecordNode } from './schema.ts';

const rec = (name: string, fields: unknown[], extra: Record<string, unknown> = {}) => ({ type: 'record', name, fields, ...extra });

describe('parseSchema: names as the specification defines them', () => {
  it('qualifies names, inherits namespaces from the enclosing named type, resolves references to the same node', () => {
    const s = parseSchema(
      rec(
        'User',
        [
          { name: 'home', type: rec('Place', [{ name: 'city', type: 'string' }]) },
          { name: 'work', type: 'Place' },
          { name: 'other', type: rec('x.Other', [{ name: 'p', type: 'com.example.Place' }, { name: 'q', type: rec('Inner', []) }]) },
          { name: 'nsless', type: rec('Bare', [], { namespace: '' }) },
        ],
        { namespace: 'com.example', aliases: ['Person', 'org.Old'] },
      ),
    );
    const user = s.root as RecordNode;
    expect(user.name).toBe('com.example.User');
    expect(user.aliases).toEqual(['com.example.Person', 'org.Old']);
    expect(user.fields[1]!.type).toBe(user.fields[0]!.type);
    expect([...s.named.keys()]).toEqual(['com.example.User', 'com.example.Place', 'x.Other', 'x.Inner', 'Bare']);
  });

  it('rejects what is not Avro, naming where', () => {
    const cases: [unknown, RegExp][] = [
      [rec('R', [{ name: 'a', type: 'Nope' }]), /fields\[0\]\.type: unknown type "Nope"/],
      [rec('R', [{ name: 'a', type: rec('R', []) }]), /"R" is defined twice/],
      [rec('R', [{ name: 'a', type: 'int' }, { name: 'a', type: 'int' }]), /declared twice/],
      [rec('R', [{ name: 'a', type: ['int', 'int'] }]), /two int branches/],
      [rec('R', [{ name: 'a', type: ['int', ['string']] }]), /directly contain a union/],
      [rec('R', [{ name: 'a', type: 'int', default: 'x' }]), /invalid default: expected a 32-bit integer/],
      [rec('R', [{ name: 'a', type: ['null', 'int'], default: 1 }]), /expected null/],
      [{ type: 'enum', name: 'E', symbols: ['A', 'A'] }, /duplicate symbols/],
      [{ type: 'fixed', name: 'F', size: -1 }, /size/],
      [{ type: 'record', name: '1R', fields: [] }, /invalid name/],
      [{ type: 'record', name: 'long', fields: [] }, /primitive type name/],
      [{ type: { type: 'array', items: 'int' } }, /unknown type/],
    ];
    for (const [schema, message] of cases) expect(() => parseSchema(schema)).toThrow(message);
  });

  it('keeps valid logical types and ignores an invalid decimal', () => {
    const s = parseSchema(
      rec('R', [
        { name: 'd', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
        { name: 'bad', type: { type: 'bytes', logicalType: 'decimal', precision: 2, scale: 3 } },
        { name: 'f', type: { type: 'fixed', name: 'F', size: 2, logicalType: 'decimal', precision: 5 } },
        { name: 't', type: { type: 'long', logicalType: 'timestamp-millis', semanticType: 'x' } },
      ]),
    );
    const [d, bad, f, t] = (s.root as RecordNode).fields.map((x) => x.type);
    expect(d).toMatchObject({ kind: 'primitive', logicalType: 'decimal', decimal: { precision: 10, scale: 2 } });
    expect(bad).toMatchObject({ kind: 'primitive', logicalType: undefined, decimal: undefined });
    expect(f).toMatchObject({ kind: 'fixed', decimal: undefined }); // 2 bytes hold at most 4 digits
    expect(t).toMatchObject({ logicalType: 'timestamp-millis', props: { semanticType: 'x' } });
  });

  it('accepts a default holding the enclosing record (avsc cannot parse it; avroType and the fingerprint still work)', () => {
    const schema = rec('S', [{ name: 'a', type: { type: 'array', items: 'S' }, default: [{ a: [{ a: [] }] }] }, { name: 'n', type: 'int', default: 0 }]);
    const model = parseSchema(schema);
    expect([...selfReferencingDefaults(model)].map((f) => f.name)).toEqual(['a']);
    const type = avroType(schema);
    expect(type.fromBuffer(type.toBuffer({ a: [{ a: [], n: 1 }], n: 2 }))).toEqual({ a: [{ a: [], n: 1 }], n: 2 });
    expect(canonicalForm(schema)).toBe('{"name":"S","type":"record","fields":[{"name":"a","type":{"type":"array","items":"S"}},{"name":"n","type":"int"}]}');
  });
});
