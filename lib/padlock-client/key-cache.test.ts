import { describe, expect, it } from 'vitest';
import { KeyCache } from './key-cache.ts';

describe('KeyCache', () => {
  it('answers per context and category, each until its own expiry, though its user lives until the latest', () => {
    let now = 1000;
    const cache = new KeyCache<string>(10, () => now);
    cache.set('events', 'u1', 'contact', 'k-contact', 2000);
    cache.set('events', 'u1', 'network', 'k-network', 5000);
    cache.set('analytics', 'u1', 'contact', 'k-analytics', 3000);
    expect(cache.get('events', 'u1', 'contact', now)).toBe('k-contact');
    expect(cache.get('analytics', 'u1', 'contact', now)).toBe('k-analytics');
    expect(cache.get('events', 'u1', 'device', now)).toBeUndefined();
    expect(cache.get('events', 'u2', 'contact', now)).toBeUndefined();
    now = 2000;
    expect(cache.get('events', 'u1', 'contact', now)).toBeUndefined();
    expect(cache.get('events', 'u1', 'network', now)).toBe('k-network');
    now = 5000;
    expect(cache.get('events', 'u1', 'network', now)).toBeUndefined();
  });

  it('holds at most its bound of users, dropping the least recently used, and forgets a user at once', () => {
    const now = 0;
    const cache = new KeyCache<string>(2, () => now);
    cache.set('', 'a', 'contact', 'ka', 100);
    cache.set('', 'b', 'contact', 'kb', 100);
    cache.set('', 'b', 'network', 'kb2', 100); // a second answer for b: still 2 users
    expect(cache.get('', 'a', 'contact', now)).toBe('ka');
    cache.set('', 'c', 'contact', 'kc', 100);
    expect(cache.get('', 'b', 'contact', now)).toBeUndefined();
    expect([cache.get('', 'a', 'contact', now), cache.get('', 'c', 'contact', now)]).toEqual(['ka', 'kc']);
    cache.forget('a');
    expect(cache.get('', 'a', 'contact', now)).toBeUndefined();
  });

  it('caches nothing with a bound of 0 or an expiry already past', () => {
    const off = new KeyCache<string>(0, () => 0);
    off.set('', 'a', 'contact', 'k', 100);
    expect(off.get('', 'a', 'contact', 0)).toBeUndefined();
    const cache = new KeyCache<string>(5, () => 50);
    cache.set('', 'a', 'contact', 'k', 50);
    expect(cache.get('', 'a', 'contact', 50)).toBeUndefined();
  });
});
