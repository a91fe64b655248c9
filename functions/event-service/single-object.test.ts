import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fingerprintToSingleObjectBytes, schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { checkDatum, parseSingleObject, toSingleObject } from './single-object.ts';
import { MAX_NESTING_DEPTH } from './datum-limits.ts';
import { parseSchema } from './validation.ts';

const schema = {
  type: 'record',
  name: 'R',
  fields: [
    { name: 's', type: 'string' },
    { name: 'a', type: { type: 'array', items: 'null' } },
    { name: 'm', type: { type: 'map', values: ['null', 'long'] } },
    { name: 'e', type: { type: 'enum', name: 'E', symbols: ['X', 'Y'] } },
  ],
};
const type = parseSchema(schema);

describe('single-object encoding', () => {
  it('round-trips the header', () => {
    const fp = schemaFingerprint(schema);
    const datum = type.toBuffer({ s: 'x', a: [null], m: { k: { long: 3 } }, e: 'Y' });
    const parsed = parseSingleObject(toSingleObject(fingerprintToSingleObjectBytes(fp), datum));
    expect(parsed?.fingerprint).toBe(fp);
    expect(parsed?.datum.equals(datum)).toBe(true);
    expect(checkDatum(type, datum)).toBeUndefined();
  });

  it('rejects bodies without the magic or a full fingerprint', () => {
    expect(parseSingleObject(Buffer.from([0xc3, 0x01, 1, 2]))).toBeUndefined();
    expect(parseSingleObject(Buffer.from('{"events":[]}'))).toBeUndefined();
  });

  it('refuses a datum declaring a huge array of zero-width items', () => {
    // s = "" (0), a = block of 2^40 nulls
    const huge = Buffer.from([0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x00, 0x00]);
    expect(checkDatum(type, huge)).toMatch(/more than/);
  });

  it('answers every random datum quickly with a verdict, and accepted ones decode', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const datum = Buffer.from(bytes);
        const problem = checkDatum(type, datum);
        if (problem === undefined) {
          try {
            type.fromBuffer(datum);
          } catch {
            // UTF-8 or value-level problems are the decoder's to find; bounds were safe.
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('single-object datum checks: only values stored exactly and accepted by Pub/Sub', () => {
  const fields = parseSchema({
    type: 'record',
    name: 'V',
    fields: [
      { name: 'count', type: 'int' },
      { name: 'n', type: 'long' },
      { name: 'name', type: 'string' },
      { name: 'flag', type: 'boolean' },
      { name: 'attrs', type: { type: 'map', values: 'int' } },
    ],
  });
  const zigzag = (n: bigint): Buffer => {
    let z = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
    const out: number[] = [];
    do {
      let b = Number(z & 0x7fn);
      z >>= 7n;
      if (z > 0n) b |= 0x80;
      out.push(b);
    } while (z > 0n);
    return Buffer.from(out);
  };
  const str = (bytes: Buffer): Buffer => Buffer.concat([zigzag(BigInt(bytes.length)), bytes]);
  const datum = (o: { count?: bigint; n?: bigint; name?: Buffer; flag?: number; key?: Buffer }): Buffer =>
    Buffer.concat([
      zigzag(o.count ?? 1n),
      zigzag(o.n ?? 2n),
      str(o.name ?? Buffer.from('ok')),
      Buffer.from([o.flag ?? 1]),
      o.key === undefined ? Buffer.from([0]) : Buffer.concat([zigzag(1n), str(o.key), zigzag(7n), Buffer.from([0])]),
    ]);

  it('accepts the extremes of int and long', () => {
    expect(checkDatum(fields, datum({ count: 2n ** 31n - 1n, n: 2n ** 63n - 1n }))).toBeUndefined();
    expect(checkDatum(fields, datum({ count: -(2n ** 31n), n: -(2n ** 63n) }))).toBeUndefined();
    expect(fields.fromBuffer(datum({ n: -(2n ** 52n) - 1n }))).toMatchObject({ n: -4503599627370497 });
  });

  it('refuses an int of 2^31 and of 2^40, naming the field', () => {
    expect(checkDatum(fields, datum({ count: 2n ** 31n }))).toBe('payload.count: int beyond the 32-bit range of an Avro int');
    expect(checkDatum(fields, datum({ count: 2n ** 40n }))).toBe('payload.count: int beyond the 32-bit range of an Avro int');
    expect(checkDatum(fields, datum({ count: -(2n ** 31n) - 1n }))).toMatch(/^payload\.count: int beyond/);
    // 1 written in 6 bytes (not minimal): a valid value, but Pub/Sub's decoder refuses an int varint longer than 5 bytes.
    const sixBytes = Buffer.concat([Buffer.from([0x82, 0x80, 0x80, 0x80, 0x80, 0x00]), datum({}).subarray(1)]);
    expect(checkDatum(fields, sixBytes)).toBe('payload.count: int written in 6 bytes (an Avro int takes at most 5)');
  });

  it('refuses a long varint beyond 64 bits', () => {
    const tooBig = Buffer.concat([zigzag(1n), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), str(Buffer.from('x')), Buffer.from([0, 0])]);
    expect(checkDatum(fields, tooBig)).toBe('payload.n: long beyond the 64-bit range');
  });

  it('refuses malformed varints (read with lib/avro/binary.ts), naming the field', () => {
    const ten = Buffer.from([...Array<number>(10).fill(0x80), 0x00]);
    expect(checkDatum(fields, Buffer.concat([zigzag(1n), ten]))).toBe('payload.n: long varint longer than 10 bytes');
    expect(checkDatum(fields, Buffer.concat([zigzag(1n), Buffer.from([0x80, 0x80])]))).toBe('payload.n: datum truncated');
    expect(checkDatum(fields, Buffer.concat([zigzag(1n), zigzag(2n), zigzag(-1n)]))).toBe('payload.name: string length out of range');
    expect(checkDatum(fields, Buffer.concat([zigzag(1n), zigzag(2n), zigzag(2n ** 60n)]))).toBe('payload.name: string length out of range');
    expect(checkDatum(fields, Buffer.concat([zigzag(1n), zigzag(2n), zigzag(5n), Buffer.from('ab')]))).toBe('payload.name: datum truncated');
  });

  it('refuses invalid UTF-8 in strings and map keys, and booleans other than 0 and 1', () => {
    expect(checkDatum(fields, datum({ name: Buffer.from([0xed, 0xa0, 0x80]) }))).toBe('payload.name: string is not valid UTF-8');
    expect(checkDatum(fields, datum({ name: Buffer.from([0x61, 0xff]) }))).toBe('payload.name: string is not valid UTF-8');
    expect(checkDatum(fields, datum({ name: Buffer.from([0xc0, 0x80]) }))).toBe('payload.name: string is not valid UTF-8');
    expect(checkDatum(fields, datum({ key: Buffer.from([0xff]) }))).toBe('payload.attrs: map key is not valid UTF-8');
    expect(checkDatum(fields, datum({ key: Buffer.from('k') }))).toBeUndefined();
    expect(checkDatum(fields, datum({ key: Buffer.from('__proto__') }))).toBe('payload.attrs: map key "__proto__" would be dropped by JavaScript readers downstream');
    expect(checkDatum(fields, datum({ flag: 2 }))).toBe('payload.flag: boolean byte 2 (must be 0 or 1)');
  });

  it(`refuses a recursive record nested deeper than ${MAX_NESTING_DEPTH} levels (Pub/Sub refuses ~600)`, () => {
    const list = parseSchema({ type: 'record', name: 'Node', fields: [{ name: 'next', type: ['null', 'Node'] }] });
    // Each level: union branch 1 (a Node), the innermost: branch 0 (null).
    const nested = (levels: number): Buffer => Buffer.concat([Buffer.alloc(levels, 2), Buffer.from([0])]);
    expect(checkDatum(list, nested(49))).toBeUndefined();
    expect(checkDatum(list, nested(1000))).toMatch(/nested deeper than 100 levels/);
  });
});
