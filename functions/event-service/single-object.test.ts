import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fingerprintToSingleObjectBytes, schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { checkDatumBounds, parseSingleObject, toSingleObject } from './single-object.ts';
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
    expect(checkDatumBounds(type, datum)).toBeUndefined();
  });

  it('rejects bodies without the magic or a full fingerprint', () => {
    expect(parseSingleObject(Buffer.from([0xc3, 0x01, 1, 2]))).toBeUndefined();
    expect(parseSingleObject(Buffer.from('{"events":[]}'))).toBeUndefined();
  });

  it('refuses a datum declaring a huge array of zero-width items', () => {
    // s = "" (0), a = block of 2^40 nulls
    const huge = Buffer.from([0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x00, 0x00]);
    expect(checkDatumBounds(type, huge)).toMatch(/more than/);
  });

  it('answers every random datum quickly with a verdict, and accepted ones decode', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const datum = Buffer.from(bytes);
        const problem = checkDatumBounds(type, datum);
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
