/**
 * The store conformance suite: what every `KeyStore` must guarantee, run over
 * each implementation against its real backend (`stores.system.test.ts`).
 * Wrapped keys here are random bytes: stores never look inside them.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { uniqueName } from '../names.ts';
import { isScannable, type KeyStore, type StoredKeychain } from '../../../functions/padlock/store.ts';

export interface ConformanceTarget {
  /** A store over a fresh, empty namespace (folder, table or schema). */
  open(): Promise<KeyStore>;
}

const wrappedKeys = (...categories: string[]): Map<string, Buffer> => new Map(categories.map((c) => [c, randomBytes(60)]));

/** `category → base64 key | 'deleted'` of an active keychain, or its state. */
export function describeKeychain(k: StoredKeychain | undefined): string | Record<string, string> {
  if (k === undefined || k.state !== 'active') return k?.state ?? 'missing';
  return Object.fromEntries([...k.categories].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, v]) => [c, v.state === 'active' ? v.wrappedRootKey.toString('base64') : 'deleted']));
}

export function storeConformance(name: string, target: ConformanceTarget): void {
  let store: KeyStore;
  const user = (t: string): string => uniqueName(`conf-${name}`, t);
  const readOne = async (id: string): Promise<StoredKeychain> => (await store.read([id])).get(id)!;

  beforeAll(async () => {
    store = await target.open();
  });
  afterAll(async () => {
    await store.close();
  });

  it('reads unknown users as absent, every id asked in the answer', async () => {
    const ids = [user('a'), user('b'), user('c')];
    const got = await store.read(ids);
    expect([...got.keys()]).toEqual(ids);
    expect([...got.values()].map((k) => k.state)).toEqual(['absent', 'absent', 'absent']);
    await store.ping();
  });

  it('creates if absent, keeps the first key of a category, adds missing categories, and returns what is stored', async () => {
    const u = user('create');
    const first = wrappedKeys('contact', 'location');
    const created = await store.createIfAbsent(u, first);
    expect(describeKeychain(created)).toEqual(describeKeychain({ state: 'active', categories: new Map([...first].map(([c, w]) => [c, { state: 'active', wrappedRootKey: w }])) }));
    const second = wrappedKeys('contact', 'device');
    const again = await store.createIfAbsent(u, second);
    const expected = { contact: first.get('contact')!.toString('base64'), device: second.get('device')!.toString('base64'), location: first.get('location')!.toString('base64') };
    expect(describeKeychain(again)).toEqual(expected);
    expect(describeKeychain(await readOne(u))).toEqual(expected);
  });

  it('leaves one key per category under 40 concurrent creates with different keys, and every create returns it', async () => {
    const u = user('race');
    const results = await Promise.all(Array.from({ length: 40 }, () => store.createIfAbsent(u, wrappedKeys('contact', 'ads'))));
    const stored = describeKeychain(await readOne(u));
    expect(Object.keys(stored)).toEqual(['ads', 'contact']);
    for (const r of results) expect(describeKeychain(r)).toEqual(stored);
  });

  it('multi-gets users in every state at once, in any mix', async () => {
    const [active, deleted, optedOut, absent] = [user('m-active'), user('m-deleted'), user('m-optout'), user('m-absent')];
    const keys = wrappedKeys('contact');
    await store.createIfAbsent(active, keys);
    await store.createIfAbsent(deleted, wrappedKeys('contact'));
    await store.deleteUser(deleted);
    await store.deleteCategory(optedOut, 'ads');
    const got = await store.read([absent, optedOut, deleted, active, active]);
    expect(describeKeychain(got.get(active))).toEqual({ contact: keys.get('contact')!.toString('base64') });
    expect(got.get(deleted)?.state).toBe('deleted');
    expect(describeKeychain(got.get(optedOut))).toEqual({ ads: 'deleted' });
    expect(got.get(absent)?.state).toBe('absent');
  });

  it('deletes a user: no key left, deleted stays deleted, never recreated; unknown users can be deleted too', async () => {
    const u = user('delete');
    await store.createIfAbsent(u, wrappedKeys('contact', 'location'));
    await store.deleteUser(u);
    expect(await readOne(u)).toEqual({ state: 'deleted' });
    expect(await store.createIfAbsent(u, wrappedKeys('contact'))).toEqual({ state: 'deleted' });
    await store.deleteUser(u);
    expect(await readOne(u)).toEqual({ state: 'deleted' });
    const never = user('delete-unknown');
    await store.deleteUser(never);
    expect(await store.createIfAbsent(never, wrappedKeys('contact'))).toEqual({ state: 'deleted' });
  });

  it('deletes one category: its key goes, the others stay, it is never recreated, also before sign-up', async () => {
    const u = user('optout');
    const keys = wrappedKeys('contact', 'location');
    await store.createIfAbsent(u, keys);
    await store.deleteCategory(u, 'location');
    const after = await store.createIfAbsent(u, wrappedKeys('contact', 'location', 'ads'));
    expect(describeKeychain(after)).toMatchObject({ contact: keys.get('contact')!.toString('base64'), location: 'deleted' });
    expect(describeKeychain(await readOne(u))).toEqual(describeKeychain(after));
    const early = user('optout-early');
    await store.deleteCategory(early, 'ads');
    expect(describeKeychain(await store.createIfAbsent(early, wrappedKeys('ads', 'contact')))).toMatchObject({ ads: 'deleted' });
  });

  it('a deletion racing creates always wins: no key survives a concurrent deleteUser', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => user(`race-delete-${i}`));
    await Promise.all(
      ids.flatMap((u) => [
        store.createIfAbsent(u, wrappedKeys('contact', 'ads')),
        store.deleteUser(u),
        store.createIfAbsent(u, wrappedKeys('contact', 'location')),
        store.createIfAbsent(u, wrappedKeys('device')),
      ]),
    );
    const got = await store.read(ids);
    expect([...got.values()].map((k) => k.state)).toEqual(ids.map(() => 'deleted'));
  });

  it('scans every user once, page by page, with the keychain as stored (the migration jobs walk stores this way)', async () => {
    if (!isScannable(store)) throw new Error(`the ${name} store cannot be scanned`);
    const ids = [user('scan-a'), `${user('scan-b')}-\u0000-é`, user('scan-c'), user('scan-d')];
    await store.createIfAbsent(ids[0]!, wrappedKeys('contact'));
    await store.deleteUser(ids[1]!);
    await store.deleteCategory(ids[2]!, 'ads');
    await store.createIfAbsent(ids[3]!, wrappedKeys('contact', 'device'));
    const seen = new Map<string, StoredKeychain>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.scan(cursor, 3);
      expect(page.keychains.length).toBeLessThanOrEqual(3);
      for (const [id, k] of page.keychains) {
        expect(seen.has(id)).toBe(false);
        seen.set(id, k);
      }
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined && pages < 1_000);
    expect(cursor).toBeUndefined();
    expect(pages).toBeGreaterThan(1);
    const stored = await store.read([...seen.keys()]);
    for (const [id, k] of seen) expect(describeKeychain(k)).toEqual(describeKeychain(stored.get(id)));
    for (const id of ids) expect(seen.has(id)).toBe(true);
  });

  it('keeps user ids exact: beyond ASCII, U+0000, 256 UTF-8 bytes, and no Unicode normalisation', async () => {
    const base = user('ids');
    const ids = [`${base}-é`, `${base}-e\u0301`, `${base}-\u0000-nul`, `${base}-😀`, `${base}-${'x'.repeat(256 - Buffer.byteLength(base, 'utf8') - 1)}`];
    expect(Buffer.byteLength(ids[4]!, 'utf8')).toBe(256);
    const keys = ids.map(() => wrappedKeys('contact'));
    for (const [i, id] of ids.entries()) await store.createIfAbsent(id, keys[i]!);
    const got = await store.read(ids);
    expect([...got.keys()]).toEqual(ids);
    for (const [i, id] of ids.entries()) expect(describeKeychain(got.get(id))).toEqual({ contact: keys[i]!.get('contact')!.toString('base64') });
  });
}
