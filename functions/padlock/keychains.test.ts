import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.ts';
import { createEmbeddedStore } from './embedded-store.ts';
import { createLocalKek } from './kek.ts';
import { KeychainService } from './keychains.ts';
import type { KeyStore } from './store.ts';

/** The embedded store, counting reads; `hold()` makes the next reads wait until released. */
function watchedStore(): { store: KeyStore; reads: () => number; hold: () => () => void } {
  const inner = createEmbeddedStore(mkdtempSync(path.join(tmpdir(), 'padlock-keychains-')));
  let reads = 0;
  let gate: Promise<void> | undefined;
  const store: KeyStore = {
    ...inner,
    kind: inner.kind,
    read: async (userIds) => {
      reads++;
      await gate;
      return inner.read(userIds);
    },
  };
  const hold = (): (() => void) => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    return () => {
      gate = undefined;
      release();
    };
  };
  return { store, reads: () => reads, hold };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

describe('KeychainService cache', () => {
  const TTL = 2_000;
  const setup = () => {
    let now = 1_700_000_000_000;
    const watched = watchedStore();
    const service = new KeychainService({
      store: watched.store,
      kek: createLocalKek(randomBytes(32)),
      categories: ['contact', 'location'],
      cacheTtlMs: TTL,
      cacheMaxUsers: 100,
      storeDeadlineMs: 1_000,
      logger: silentLogger,
      clock: () => now,
    });
    return { ...watched, service, advance: (ms: number) => (now += ms) };
  };
  const users = [{ userId: 'hot-user', categories: ['contact', 'location'] }];

  it('reads a hot keychain again in the background halfway through its TTL: lookups never wait for the store', async () => {
    const { service, reads, hold, advance } = setup();
    await service.lookup('etl', users, true);
    const first = service.lookupCachedJson('etl', users, false);
    expect(first).toBeDefined();
    const readsBefore = reads();

    advance(TTL / 2);
    const release = hold();
    // Due: answered from the cache while the store read waits.
    expect(service.lookupCachedJson('etl', users, false)).toEqual(first);
    expect(reads()).toBe(readsBefore + 1);
    // One refresh per entry, however many lookups see it due.
    expect(service.lookupCachedJson('etl', users, false)).toEqual(first);
    expect(reads()).toBe(readsBefore + 1);
    release();
    await settle();

    // At the first entry's expiry: still cached, since the refresh read restarted its TTL
    // (and due again: a second refresh).
    advance(TTL / 2);
    const later = service.lookupCachedJson('etl', users, false);
    // Unchanged in the store: the same cached element, not derived again.
    expect(later?.[0]).toBe(first?.[0]);
    expect(reads()).toBe(readsBefore + 2);
  });

  it('takes a change seen by the refresh, and never outlives TTL after its read started', async () => {
    const { service, store, hold, advance } = setup();
    await service.lookup('etl', users, true);
    advance(TTL / 2);
    // Another instance deletes a category; this one's refresh sees it.
    await store.deleteCategory('hot-user', 'location');
    expect(service.lookupCachedJson('etl', users, false)?.[0]).toContain('"location":{"status":"found"');
    await settle();
    expect(service.lookupCachedJson('etl', users, false)?.[0]).toContain('"location":{"status":"deleted"}');

    // A refresh that never completes does not extend the entry: it expires TTL after the last read.
    advance(TTL / 2);
    const release = hold();
    expect(service.lookupCachedJson('etl', users, false)).toBeDefined();
    advance(TTL / 2);
    expect(service.lookupCachedJson('etl', users, false)).toBeUndefined();
    release();
  });
});
