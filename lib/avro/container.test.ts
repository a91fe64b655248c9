import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import avro from 'avsc';
import fc from 'fast-check';
import { readLong, encodeLong } from './binary.ts';
import { decodeRecords, readContainer, writeContainer } from './container.ts';

const schema = { type: 'record', name: 'R', fields: [{ name: 'id', type: 'string' }, { name: 'n', type: 'long' }] };
const type = avro.Type.forSchema(schema as avro.Schema);
const sync = Buffer.alloc(16, 7);

function avscRead(bytes: Buffer): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const out: unknown[] = [];
    Readable.from([bytes]).pipe(new avro.streams.BlockDecoder()).on('data', (r: unknown) => out.push(r)).on('end', () => resolve(out)).on('error', reject);
  });
}

describe('Avro container files', () => {
  it('encodes longs as Avro does', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), (n) => {
        expect(encodeLong(n)).toEqual(avro.Type.forSchema('long').toBuffer(n));
        expect(readLong(encodeLong(n), 0)).toEqual({ value: n, offset: encodeLong(n).length });
      }),
    );
  });

  it('writes files avsc reads, and reads them back, across blocks and codecs', async () => {
    const records = Array.from({ length: 1000 }, (_, i) => ({ id: `id-${i}`, n: i * 1_000_003 }));
    for (const codec of ['null', 'deflate'] as const) {
      const bytes = writeContainer(records.map((r) => type.toBuffer(r)), { schema, syncMarker: sync, codec, blockBytes: 1000, metadata: { 'x.k': 'v' } });
      expect(await avscRead(bytes)).toEqual(records);
      const contents = readContainer(bytes);
      expect(contents.blocks.length).toBeGreaterThan(1);
      expect(contents.metadata).toEqual({ 'x.k': 'v' });
      expect(decodeRecords(contents, (b, p) => type.decode(b, p))).toEqual(records);
    }
  });

  it('is deterministic: same records and sync marker, same bytes', () => {
    const recs = [type.toBuffer({ id: 'a', n: 1 })];
    expect(writeContainer(recs, { schema, syncMarker: sync, metadata: { b: '1', a: '2' } })).toEqual(writeContainer(recs, { schema, syncMarker: sync, metadata: { a: '2', b: '1' } }));
  });

  it('rejects corrupt files', () => {
    const bytes = writeContainer([type.toBuffer({ id: 'a', n: 1 })], { schema, syncMarker: sync });
    expect(() => readContainer(bytes.subarray(0, bytes.length - 3))).toThrow();
    expect(() => readContainer(Buffer.from('nope'))).toThrow();
  });
});

describe('malformed container files', () => {
  it('are refused with DECODE_FAILED, never a crash or a hang', () => {
    const good = writeContainer([type.toBuffer({ id: 'a', n: 1 })], { schema, syncMarker: sync, codec: 'deflate' });
    const overlong = Buffer.concat([good.subarray(0, 4), Buffer.from([...Array(11).fill(0xff)])]);
    for (const bad of [overlong, good.subarray(0, good.length - 3), Buffer.concat([good.subarray(0, 4), Buffer.from([0x02, 0x08])])]) {
      expect(() => readContainer(bad)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
    }
  });
});
