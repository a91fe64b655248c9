import { describe, expect, it } from 'vitest';
import { avroType } from './long.ts';
import { compileSkipper, decodeExactDatum, isExactDatum, MalformedDatumError, MAX_DATUM_ITEMS } from './skip.ts';

const schema = {
  type: 'record',
  name: 'Everything',
  fields: [
    { name: 'n', type: 'null' },
    { name: 'b', type: 'boolean' },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'f', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 's', type: 'string' },
    { name: 'by', type: 'bytes' },
    { name: 'fx', type: { type: 'fixed', name: 'Three', size: 3 } },
    { name: 'e', type: { type: 'enum', name: 'Color', symbols: ['RED', 'GREEN'] } },
    { name: 'a', type: { type: 'array', items: ['null', 'string'] } },
    { name: 'm', type: { type: 'map', values: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'int' }] } } },
    { name: 'u', type: ['null', 'Inner', 'string'] },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'next', type: ['null', 'Everything'], default: null },
  ],
};
const type = avroType(schema);

function value(depth = 1): Record<string, unknown> {
  return {
    n: null,
    b: true,
    i: -123456,
    l: -(2n ** 63n),
    f: 1.5,
    d: Math.PI,
    s: 'héllo',
    by: Buffer.from([0, 255, 7]),
    fx: Buffer.from('abc'),
    e: 'GREEN',
    a: ['x', null, 'y'],
    m: { k1: { x: 1 }, k2: { x: -2 } },
    u: { x: 42 },
    ts: 1_700_000_000_000,
    next: depth > 0 ? value(depth - 1) : null,
  };
}

describe('compileSkipper', () => {
  const skip = compileSkipper(type);
  const bytes = type.toBuffer(value());

  it('steps over exactly one datum of every Avro type, recursive records included', () => {
    expect(skip(bytes, 0)).toBe(bytes.length);
    expect(isExactDatum(skip, bytes)).toBe(true);
    for (let k = 0; k < 20; k++) {
      const random = type.toBuffer(type.random());
      expect(skip(random, 0)).toBe(random.length);
    }
  });

  it('refuses every truncation and trailing bytes', () => {
    for (let n = 0; n < bytes.length; n++) expect(isExactDatum(skip, bytes.subarray(0, n))).toBe(false);
    expect(isExactDatum(skip, Buffer.concat([bytes, Buffer.from([0])]))).toBe(false);
  });

  it('refuses an enum or union index out of range, a boolean other than 0/1, a negative length, a varint wider than 64 bits', () => {
    const at = (schema: unknown, buf: number[]): string => {
      try {
        compileSkipper(avroType(schema))(Buffer.from(buf), 0);
        return 'accepted';
      } catch (err) {
        return err instanceof MalformedDatumError ? err.problem : String(err);
      }
    };
    expect(at({ type: 'enum', name: 'E', symbols: ['A', 'B'] }, [4])).toBe('invalid union or enum index');
    expect(at(['null', 'string'], [4, 0])).toBe('invalid union or enum index');
    expect(at(['null', 'string'], [1])).toBe('invalid union or enum index');
    expect(at('boolean', [2])).toBe('invalid boolean');
    expect(at('string', [1])).toBe('invalid length');
    expect(at('long', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])).toBe('wider than 64 bits');
    expect(at('long', [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])).toBe('wider than 64 bits');
    expect(at('long', [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).toBe('accepted');
  });

  describe('a datum of zero-width items', () => {
    const nulls = compileSkipper(avroType({ type: 'record', name: 'Nulls', fields: [{ name: 'a', type: { type: 'array', items: 'null' } }, { name: 'b', type: { type: 'array', items: 'null' } }] }));
    /** An array block of `count` items (zero-width: nothing follows the count), then the end of the array. */
    const block = (...counts: number[]): number[] => [...counts.flatMap((c) => [...zigzagVarint(c)]), 0];

    it('is refused in no time when it declares more than MAX_DATUM_ITEMS items: 2^52 nulls fit in 9 bytes', () => {
      expect(isExactDatum(nulls, Buffer.from([...block(2 ** 52), ...block()]))).toBe(false);
      expect(() => nulls(Buffer.from([...block(MAX_DATUM_ITEMS + 1), ...block()]), 0)).toThrow(expect.objectContaining({ problem: 'too many items' }));
    });

    it('counts every block of every array of one datum together, and starts again at the next datum', () => {
      const half = MAX_DATUM_ITEMS / 2;
      expect(isExactDatum(nulls, Buffer.from([...block(half), ...block(half)]))).toBe(true);
      expect(isExactDatum(nulls, Buffer.from([...block(half, 1), ...block(half)]))).toBe(false);
      expect(isExactDatum(nulls, Buffer.from([...block(half), ...block(half, 1)]))).toBe(false);
      expect(isExactDatum(nulls, Buffer.from([...block(MAX_DATUM_ITEMS), ...block()]))).toBe(true);
    });

    it('is never handed to the decoder: decodeExactDatum walks first', () => {
      const type = avroType({ type: 'array', items: 'null' });
      expect(decodeExactDatum(type, Buffer.from(block(2 ** 52)))).toBeUndefined();
      expect(decodeExactDatum(type, Buffer.from(block(3)))).toEqual({ value: [null, null, null] });
      expect(decodeExactDatum(type, Buffer.from([...block(3), 0]))).toBeUndefined();
    });
  });
});

/** Avro's zig-zag varint of a non-negative safe integer. */
function zigzagVarint(n: number): number[] {
  let raw = 2 * n;
  const out: number[] = [];
  while (raw >= 128) {
    out.push((raw % 128) | 128);
    raw = Math.floor(raw / 128);
  }
  out.push(raw);
  return out;
}
