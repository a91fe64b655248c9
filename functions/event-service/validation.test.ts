import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH } from './datum-limits.ts';
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

  it('refuses a map key named __proto__, which JavaScript Avro readers downstream would drop', () => {
    const payload = JSON.parse('{"url":"/a","count":1,"ts":1,"attrs":{"__proto__":5}}') as unknown;
    expect(reason(payload)).toBe('payload.attrs: map key "__proto__" would be dropped by JavaScript readers downstream');
  });

  it('reports deep nesting of a recursive schema as a mismatch, not a crash', () => {
    const list = parseSchema({ type: 'record', name: 'Node', fields: [{ name: 'next', type: ['null', 'Node'] }] });
    const d = compilePayloadDecoder(list);
    let deep: unknown = null;
    for (let i = 0; i < 100_000; i++) deep = { next: deep };
    expect(() => d(deep)).toThrow(PayloadMismatch);
  });
});

describe('JSON payload decoder: values that cannot be stored exactly are refused', () => {
  it('refuses lone surrogates in strings and map keys, naming the field', () => {
    expect(reason({ ...base, url: 'a\ud800b' })).toBe('payload.url: expected string, got a string with a lone surrogate (not valid Unicode, it has no UTF-8 form)');
    expect(reason({ ...base, tags: ['ok', '\udc00'] })).toMatch(/^payload\.tags\[1\]: expected string, got a string with a lone surrogate/);
    expect(reason({ ...base, attrs: { 'k\ud800': 1 } })).toMatch(/^payload\.attrs\["k\ufffd"\]: map key is a string with a lone surrogate/);
    expect(reason({ ...base, referrer: '\ud83d' })).toMatch(/^payload\.referrer: expected string, got a string with a lone surrogate/);
    // A well-formed pair (an emoji) is fine.
    expect(roundTrip({ ...base, url: '\ud83d\ude00' }).url).toBe('😀');
  });

  it('refuses a float beyond the float range and a double beyond the double range', () => {
    const floats = parseSchema({ type: 'record', name: 'F', fields: [{ name: 'f', type: 'float' }, { name: 'd', type: 'double' }] });
    const d = compilePayloadDecoder(floats);
    expect(() => d({ f: 1e39, d: 0 })).toThrow('payload.f: expected float, got a number beyond the float range (it would be stored as Infinity)');
    expect(() => d(JSON.parse('{"f": 0, "d": 1e400}'))).toThrow('payload.d: expected double, got a number beyond the double range');
    expect(floats.fromBuffer(floats.toBuffer(d({ f: 3.4e38, d: 1e308 })))).toEqual({ f: Math.fround(3.4e38), d: 1e308 });
  });
});

describe('JSON payload decoder: longs over the full 64-bit range', () => {
  const longs = parseSchema({
    type: 'record',
    name: 'L',
    fields: [
      { name: 'n', type: 'long' },
      { name: 'maybe', type: ['null', 'long'], default: null },
      { name: 'either', type: ['null', 'string', 'long'], default: null },
    ],
  });
  const d = compilePayloadDecoder(longs);
  const exact = (payload: unknown): unknown => longs.fromBuffer(longs.toBuffer(d(payload)));

  it('takes safe integers as numbers and decimal strings for the whole range, exactly', () => {
    expect(exact({ n: -(2 ** 52) - 1 })).toMatchObject({ n: -4503599627370497 });
    expect(exact({ n: '9223372036854775807' })).toMatchObject({ n: 9223372036854775807n });
    expect(exact({ n: '-9223372036854775808' })).toMatchObject({ n: -9223372036854775808n });
    expect(exact({ n: '9007199254740992' })).toMatchObject({ n: 9007199254740992n });
    expect(exact({ n: '-12' })).toMatchObject({ n: -12 });
    // Bytes on the wire: zig-zag varint of 2^63-1 is ten bytes ending in 0x01.
    expect(longs.toBuffer(d({ n: '9223372036854775807' })).subarray(0, 10).toString('hex')).toBe('feffffffffffffffff01');
  });

  it('refuses a JSON number beyond ±(2^53-1), saying to send a decimal string', () => {
    expect(reason2({ n: 2 ** 53 })).toBe(
      'payload.n: expected long, got a JSON number beyond ±(2^53-1), which JSON numbers cannot carry exactly; send it as a decimal string',
    );
    expect(reason2({ n: '9223372036854775808' })).toBe('payload.n: expected long, got a string that is not a decimal integer within the 64-bit range');
    expect(reason2({ n: '1e3' })).toMatch(/not a decimal integer/);
    expect(reason2({ n: ' 1' })).toMatch(/not a decimal integer/);
  });

  it('reads a decimal string in a union as a long only when no string-like branch takes it', () => {
    expect(exact({ n: 0, maybe: '9223372036854775807' })).toMatchObject({ maybe: { long: 9223372036854775807n } });
    expect(exact({ n: 0, either: '123' })).toMatchObject({ either: { string: '123' } });
    expect(exact({ n: 0, either: { long: '-9223372036854775808' } })).toMatchObject({ either: { long: -9223372036854775808n } });
    expect(reason2({ n: 0, maybe: 'x' })).toMatch(/^payload\.maybe: expected one of \[null, long\], got a string none of them accepts/);
  });

  function reason2(payload: unknown): string {
    try {
      d(payload);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected a mismatch');
  }
});

describe('JSON payload decoder: work is linear in the payload and depth is bounded', () => {
  // Two same-shaped records in one union: without memoising, every level doubles the work.
  const twins = parseSchema({
    type: 'record',
    name: 'Root',
    fields: [
      {
        name: 'next',
        type: [
          'null',
          {
            type: 'record',
            name: 'A',
            fields: [{ name: 'next', type: ['null', 'A', { type: 'record', name: 'B', fields: [{ name: 'next', type: ['null', 'A', 'B'] }] }] }],
          },
          'B',
        ],
      },
    ],
  });
  const d = compilePayloadDecoder(twins);
  const nested = (levels: number, bottom: unknown): unknown => {
    let v = bottom;
    for (let i = 0; i < levels; i++) v = { next: v };
    return v;
  };

  it.each([
    ['ambiguous all the way down', null],
    ['invalid at the bottom', 5],
  ])('answers a payload nested 90 deep in a union of two same-shaped records (%s) with bounded work', (_name, bottom) => {
    const work = { steps: 0 };
    expect(() => d(nested(90, bottom), work)).toThrow(PayloadMismatch);
    // Each level: two unions (A's and B's field) decide once, each trying two records.
    expect(work.steps).toBeGreaterThan(0);
    expect(work.steps).toBeLessThanOrEqual(10 * 91);
  });

  it('reads each part of the payload a bounded number of times (counted on the payload itself)', () => {
    // Proxies count every read of the payload, whatever the decoder's internals.
    let reads = 0;
    const counted = (v: unknown): unknown => {
      if (v === null || typeof v !== 'object') return v;
      const target = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, counted(x)]));
      return new Proxy(target, {
        get: (t, k) => (reads++, Reflect.get(t, k)),
        has: (t, k) => (reads++, Reflect.has(t, k)),
        ownKeys: (t) => (reads++, Reflect.ownKeys(t)),
        getOwnPropertyDescriptor: (t, k) => (reads++, Reflect.getOwnPropertyDescriptor(t, k)),
      });
    };
    const levels = 20;
    expect(() => d(counted(nested(levels, 5)))).toThrow(PayloadMismatch);
    // A few reads per level and union; trying every branch at every level read it ~2^20 times.
    expect(reads).toBeLessThanOrEqual(40 * (levels + 1));
  });

  it('accepts the same nesting written in Avro JSON form, with work linear in depth', () => {
    let v: unknown = null;
    for (let i = 0; i < 45; i++) v = { A: { next: v } };
    const work = { steps: 0 };
    const value = d({ next: v }, work);
    expect(twins.isValid(value)).toBe(true);
    expect(work.steps).toBeLessThanOrEqual(4 * 46);
  });

  it(`refuses nesting deeper than ${MAX_NESTING_DEPTH} objects and arrays, whatever the branch being tried`, () => {
    expect(() => d(nested(MAX_NESTING_DEPTH, null))).toThrow(/none of them accepts \(as A: \.next: /);
    const err = (() => {
      try {
        d(nested(MAX_NESTING_DEPTH + 1, null));
      } catch (e) {
        return e as PayloadMismatch;
      }
      return undefined;
    })();
    expect(err?.problem).toBe(`nested deeper than ${MAX_NESTING_DEPTH} levels of objects and arrays`);
    const list = compilePayloadDecoder(parseSchema({ type: 'record', name: 'N', fields: [{ name: 'next', type: ['null', 'N'] }] }));
    expect(list(nested(MAX_NESTING_DEPTH, null))).toBeDefined();
    expect(() => list(nested(MAX_NESTING_DEPTH + 1, null))).toThrow(/nested deeper than/);
  });
});
