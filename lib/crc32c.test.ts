import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { CRC32C } from '@google-cloud/storage';
import { crc32c, crc32cToBase64, crc32cUpdate } from './crc32c.ts';

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
  });

  it('agrees with the official client on random data, whole and in pieces', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (bytes, cut) => {
        const buf = Buffer.from(bytes);
        const theirs = new CRC32C();
        theirs.update(buf);
        const split = Math.min(cut, buf.length);
        const ours = crc32cUpdate(crc32cUpdate(0, buf.subarray(0, split)), buf.subarray(split));
        expect(crc32cToBase64(ours)).toBe(theirs.toString());
      }),
    );
  });

  it('handles a large buffer', () => {
    const buf = randomBytes(1 << 20);
    const theirs = new CRC32C();
    theirs.update(buf);
    expect(crc32cToBase64(crc32c(buf))).toBe(theirs.toString());
  });
});
