import { describe, expect, it } from 'vitest';
import { compilePayloadDecoder, parseSchema, PayloadMismatch } from './validation.ts';

const schema = {
  type: 'record',
  name: 'PageView',
  namespace: 'com.acme',
  fields: [
    { name: 'url', type: 'string' },
    { name: 'count', type: 'int' },
    { name: 'ts', type: 'long' },
    { name: 'ratio', type: 'double', default: 0.5 },
    { name: 'blob', type: 'bytes', default: '' },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] }, default: 'A' },
    { name: 'tags', type: { type: 'array', items: 'string' }, default: [] },
    { name: 'attrs', type: { type: 'map', values: 'int' }, default: {} },
    { name: 'referrer', type: ['null', 'string'], default: null },
    {
      name: 'user',
      type: ['null', { type: 'record', name: 'User', fields: [{ name: 'country', type: 'string' }, { name: 'age', type: ['null', 'int'], default: null }] }],
      default: null,
    },
    { name: 'num', type: ['null', 'int', 'double'], default: null },
    { name: 'sb', type: ['null', 'string', 'bytes'], default: null },
  ],
};

const type = parseSchema(schema);
const decode = compilePayloadDecoder(type);
const base = { url: '/a', count: 1, ts: 1700000000000 };

function reason(payload: unknown): string {
  try {
    decode(payload);
  } catch (err) {
    expect(err).toBeInstanceOf(PayloadMismatch);
    return (err as PayloadMismatch).message;
  }
  throw new Error('expected a mismatch');
}

function roundTrip(payload: unknown): Record<string, unknown> {
  const buf = type.toBuffer(decode(payload));
  return type.fromBuffer(buf) as Record<string, unknown>;
}

describe('JSON payload decoder', () => {
  it('accepts a valid payload, filling defaults, and encodes it', () => {
    const out = roundTrip(base);
    expect(out.url).toBe('/a');
    expect(out.ratio).toBe(0.5);
    expect(out.kind).toBe('A');
    expect(out.referrer).toBeNull();
  });

  it('accepts plain values for unambiguous unions and the Avro JSON form', () => {
    expect(roundTrip({ ...base, referrer: 'x' }).referrer).toEqual({ string: 'x' });
    expect(roundTrip({ ...base, referrer: { string: 'y' } }).referrer).toEqual({ string: 'y' });
    expect((roundTrip({ ...base, user: { country: 'FR' } }).user as Record<string, unknown>)['com.acme.User']).toMatchObject({ country: 'FR' });
    expect((roundTrip({ ...base, user: { User: { country: 'FR', age: 3 } } }).user as Record<string, unknown>)['com.acme.User']).toMatchObject({
      age: { int: 3 },
    });
  });

  it('takes the first numeric branch for a number several branches accept', () => {
    expect(roundTrip({ ...base, num: 3 }).num).toEqual({ int: 3 });
    expect(roundTrip({ ...base, num: 3.5 }).num).toEqual({ double: 3.5 });
  });

  it('rejects an ambiguous plain string and accepts the wrapped form', () => {
    expect(reason({ ...base, sb: 'x' })).toMatch(/^payload\.sb: ambiguous value for union/);
    expect(roundTrip({ ...base, sb: { bytes: 'x' } }).sb).toEqual({ bytes: Buffer.from('x') });
  });

  it('names the offending field path', () => {
    expect(reason({ ...base, user: { country: 7 } })).toBe('payload.user.country: expected string, got number');
    expect(reason({ ...base, count: 'x' })).toBe('payload.count: expected int, got string');
    expect(reason({ ...base, count: 1.5 })).toBe('payload.count: expected int, got a non-integer number');
    expect(reason({ ...base, count: 2 ** 31 })).toMatch(/^payload\.count: expected int/);
    expect(reason({ ...base, ts: 2 ** 60 })).toMatch(/^payload\.ts: expected long/);
    expect(reason({ ...base, tags: ['a', 1] })).toBe('payload.tags[1]: expected string, got number');
    expect(reason({ ...base, attrs: { 'a b': 'x' } })).toBe('payload.attrs["a b"]: expected int, got string');
    expect(reason({ ...base, kind: 'C' })).toBe('payload.kind: expected one of [A, B], got "C"');
    expect(reason({ url: '/a', count: 1 })).toBe('payload.ts: required field missing');
    expect(reason({ ...base, extra: 1 })).toBe('payload.extra: field not in the schema of com.acme.PageView');
    expect(reason({ ...base, referrer: 5 })).toBe('payload.referrer: expected one of [null, string], got number');
    expect(reason({ ...base, referrer: { string: 5 } })).toBe('payload.referrer["string"]: expected string, got number');
    expect(reason({ ...base, blob: '\u0100' })).toMatch(/^payload\.blob: expected bytes/);
    expect(reason([])).toBe('payload: expected record com.acme.PageView (an object), got array');
    expect(reason(null)).toMatch(/^payload: expected record/);
  });

  it('maps bytes as one code point per byte', () => {
    expect(roundTrip({ ...base, blob: '\u0000\u00ff' }).blob).toEqual(Buffer.from([0, 255]));
  });

  it('does not let a map key named __proto__ change the prototype', () => {
    const payload = JSON.parse('{"url":"/a","count":1,"ts":1,"attrs":{"__proto__":5}}') as unknown;
    const value = decode(payload) as { attrs: Record<string, unknown> };
    expect(Object.keys(value.attrs)).toEqual(['__proto__']);
    expect(type.toBuffer(value).includes(Buffer.from('__proto__'))).toBe(true);
  });

  it('reports deep nesting of a recursive schema as a mismatch, not a crash', () => {
    const list = parseSchema({ type: 'record', name: 'Node', fields: [{ name: 'next', type: ['null', 'Node'] }] });
    const d = compilePayloadDecoder(list);
    let deep: unknown = null;
    for (let i = 0; i < 100_000; i++) deep = { next: deep };
    expect(() => d(deep)).toThrow(PayloadMismatch);
  });
});
