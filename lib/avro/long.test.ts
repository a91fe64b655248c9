import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroType, exactLongType, isAvroLong, parseLongString } from './long.ts';

const schema = {
  type: 'record',
  name: 'R',
  fields: [
    { name: 'n', type: 'long' },
    { name: 'o', type: ['null', 'long'] },
    { name: 't', type: { type: 'long', logicalType: 'timestamp-micros' } },
  ],
};

describe('exact long', () => {
  const edges = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n), -(2n ** 52n) - 1n, 2n ** 52n + 1n];
  it.each(edges)('round-trips %s bit-exactly, and avsc default type would not', (n) => {
    const type = avroType(schema);
    const buf = type.toBuffer({ n, o: n, t: n });
    const back = type.fromBuffer(buf) as { n: bigint | number; o: bigint | number; t: bigint | number };
    expect(BigInt(back.n)).toBe(n);
    expect(BigInt(back.o)).toBe(n);
    expect(BigInt(back.t)).toBe(n);
    // zig-zag varint read independently
    let v = 0n;
    let shift = 0n;
    for (const byte of buf) {
      v |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) break;
    }
    expect((v >> 1n) ^ -(v & 1n)).toBe(n);
  });

  it('the avsc default loses -2^52-1 (the defect this type exists for)', () => {
    const lossy = avro.Type.forSchema({ type: 'long' });
    const exact = avroType({ type: 'long' });
    const n = -(2 ** 52) - 1;
    expect(exact.fromBuffer(lossy.toBuffer(n))).not.toBe(n);
    expect(exact.fromBuffer(exact.toBuffer(n))).toBe(n);
  });

  it('decodes safe values as numbers, unsafe as bigint; validates the range', () => {
    const type = avroType({ type: 'long' });
    expect(type.fromBuffer(type.toBuffer(42))).toBe(42);
    expect(typeof type.fromBuffer(type.toBuffer(2n ** 60n))).toBe('bigint');
    expect(type.isValid(2n ** 63n)).toBe(false);
    expect(type.isValid(1.5)).toBe(false);
    expect(type.isValid(2 ** 53)).toBe(false);
    expect(isAvroLong(-(2n ** 63n))).toBe(true);
  });

  it('parses decimal strings exactly and refuses the rest', () => {
    expect(parseLongString('-9223372036854775808')).toBe(-(2n ** 63n));
    expect(parseLongString('9223372036854775808')).toBeUndefined();
    expect(parseLongString('12')).toBe(12);
    expect(parseLongString('012')).toBeUndefined();
    expect(parseLongString('1e3')).toBeUndefined();
    expect(parseLongString(' 1')).toBeUndefined();
  });
});

describe('avroType with the caller\'s logical types', () => {
  class DateType extends avro.types.LogicalType {
    override _fromValue(value: number | bigint): Date {
      return new Date(Number(value));
    }
    override _toValue(date: unknown): number | undefined {
      return date instanceof Date ? date.getTime() : undefined;
    }
  }
  it('applies a long-based logical type over the exact long', () => {
    const type = avroType({ type: 'record', name: 'R', fields: [{ name: 't', type: { type: 'long', logicalType: 'timestamp-millis' } }, { name: 'n', type: 'long' }] }, { logicalTypes: { 'timestamp-millis': DateType } });
    const at = new Date('2026-11-30T12:00:00.000Z');
    const back = type.fromBuffer(type.toBuffer({ t: at, n: 2n ** 62n })) as { t: Date; n: bigint };
    expect(back.t).toEqual(at);
    expect(back.n).toBe(2n ** 62n);
    // under the logical type, the exact long
    const field = (type as avro.types.RecordType).fields[0]!.type as avro.types.LogicalType;
    expect(field.underlyingType).toBe(exactLongType);
  });
});
