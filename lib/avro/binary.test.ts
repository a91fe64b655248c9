import { describe, expect, it } from 'vitest';
import { avroType } from './long.ts';
import { schemaFingerprint } from './fingerprint.ts';
import { AvroBinaryError, encodeBytes, encodeLong, encodeVarint, longLength, parseSingleObject, readBytes, readLength, readLong, singleObjectHeader, writeLong } from './binary.ts';

const exact = avroType('long');
const edges = [0n, 1n, -1n, 63n, -64n, 64n, 2n ** 31n, -(2n ** 31n), 2n ** 52n - 1n, -(2n ** 52n), -(2n ** 52n) - 1n, 2n ** 52n + 1n, 2n ** 53n - 1n, -(2n ** 53n) + 1n, 2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)];
const js = (n: bigint): number | bigint => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n);

describe('Avro binary primitives', () => {
  it('longLength is the size writeLong writes for a length, at every varint width', () => {
    for (const n of [0, 1, 63, 64, 8191, 8192, 2 ** 20, 2 ** 27, 2 ** 34, 2 ** 41, 2 ** 48, 2 ** 52 - 1]) {
      expect(longLength(n), String(n)).toBe(encodeLong(n).length);
    }
  });

  it.each(edges)('long %s: encodes as avsc with the exact long type, reads back exactly', (n) => {
    const bytes = encodeLong(js(n));
    expect(bytes).toEqual(exact.toBuffer(js(n)));
    expect(encodeLong(n)).toEqual(bytes);
    const buf = Buffer.alloc(12);
    expect(writeLong(buf, 1, js(n))).toBe(1 + bytes.length);
    expect(buf.subarray(1, 1 + bytes.length)).toEqual(bytes);
    expect(readLong(bytes, 0)).toEqual({ value: js(n), offset: bytes.length });
    expect(bytes.length).toBeLessThanOrEqual(10);
  });

  it('refuses longs that are truncated, longer than 10 bytes or wider than 64 bits', () => {
    expect(() => readLong(Buffer.from([0x80, 0x80]), 0)).toThrow(AvroBinaryError);
    expect(() => readLong(Buffer.from([...Array(10).fill(0x80), 0x00]), 0)).toThrow(/longer than 10 bytes/);
    expect(() => readLong(Buffer.from([...Array(9).fill(0xff), 0x02]), 0)).toThrow(/wider than 64 bits/);
    expect(readLong(Buffer.from([...Array(9).fill(0xff), 0x01]), 0).value).toBe(-(2n ** 63n));
  });

  it('lengths must be non-negative safe integers; bytes must fit', () => {
    expect(() => readLength(encodeLong(-1), 0)).toThrow(/invalid length/);
    expect(() => readLength(encodeLong(2n ** 60n), 0)).toThrow(/invalid length/);
    const b = encodeBytes(Buffer.from('héllo'));
    expect(readBytes(b, 0).value.toString()).toBe('héllo');
    expect(() => readBytes(b.subarray(0, b.length - 1), 0)).toThrow(/truncated/);
  });

  it('unsigned varints (protobuf uses the same) up to 2^64-1', () => {
    expect(encodeVarint(300)).toEqual(Buffer.from([0xac, 0x02]));
    expect(encodeVarint(2n ** 64n - 1n)).toEqual(Buffer.from([...Array(9).fill(0xff), 0x01]));
    expect(() => encodeVarint(-1)).toThrow(RangeError);
  });

  it('single-object header: C3 01 then the fingerprint little-endian', () => {
    const fp = schemaFingerprint('long');
    const body = Buffer.concat([singleObjectHeader(fp), encodeLong(5)]);
    expect(body.subarray(0, 2)).toEqual(Buffer.from([0xc3, 0x01]));
    expect(parseSingleObject(body)).toEqual({ fingerprint: fp, datum: encodeLong(5) });
    expect(parseSingleObject(body.subarray(0, 9))).toBeUndefined();
  });
});
