import { describe, expect, it } from 'vitest';
import { TtlCache } from './ttl-cache.ts';

describe('TtlCache', () => {
  it('expires entries at their time and evicts the least recently used beyond the bound', () => {
    let now = 0;
    const evicted: string[] = [];
    const cache = new TtlCache<string, string>(2, () => now, (v) => evicted.push(v));
    cache.set('a', 'A', 100);
    cache.set('b', 'B', 50);
    expect(cache.get('a')).toBe('A'); // a is now most recent
    cache.set('c', 'C', 100);
    expect(cache.get('b')).toBeUndefined();
    expect(evicted).toEqual(['B']);
    now = 100;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it('caches nothing with a bound of 0 or an expiry in the past', () => {
    const zero = new TtlCache<string, number>(0);
    zero.set('a', 1, Date.now() + 1000);
    expect(zero.get('a')).toBeUndefined();
    const cache = new TtlCache<string, number>(10, () => 10);
    cache.set('a', 1, 10);
    expect(cache.get('a')).toBeUndefined();
  });
});
