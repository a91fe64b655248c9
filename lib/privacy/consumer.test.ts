import { describe, expect, it } from 'vitest';
import { jsonLine } from './consumer.ts';

describe('jsonLine', () => {
  it('writes longs beyond ±2^53 with their exact digits, the rest as JSON.stringify does', () => {
    const value = { a: 2n ** 63n - 1n, b: [-(2n ** 52n) - 1n, 3], c: Buffer.from('hi'), d: null, e: 'x"y', f: undefined };
    expect(jsonLine(value)).toBe('{"a":9223372036854775807,"b":[-4503599627370497,3],"c":"aGk=","d":null,"e":"x\\"y","f":null}');
    expect(jsonLine({ s: 'ok', n: 1.5 })).toBe(JSON.stringify({ s: 'ok', n: 1.5 }));
  });
});
