import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../lib/logger.ts';
import { loadConfig } from './config.ts';
import { createEmbeddedStore } from './embedded-store.ts';
import { createMigratingStore } from './migrating-store.ts';
import { copyKeychain, differences } from './migration.ts';
import type { KeyStore, StoredKeychain } from './store.ts';

const embedded = (): KeyStore => createEmbeddedStore(mkdtempSync(path.join(tmpdir(), 'padlock-mig-')));
const keys = (...categories: string[]): Map<string, Buffer> => new Map(categories.map((c) => [c, randomBytes(48)]));

/** A store whose every call fails, as one that is down. */
const down: KeyStore = {
  kind: 'postgres',
  read: () => Promise.reject(new Error('connect ECONNREFUSED')),
  createIfAbsent: () => Promise.reject(new Error('connect ECONNREFUSED')),
  deleteUser: () => Promise.reject(new Error('connect ECONNREFUSED')),
  deleteCategory: () => Promise.reject(new Error('connect ECONNREFUSED')),
  ping: () => Promise.reject(new Error('connect ECONNREFUSED')),
  close: () => Promise.resolve(),
};

const active = (entries: Record<string, Buffer | 'deleted'>): StoredKeychain => ({
  state: 'active',
  categories: new Map(Object.entries(entries).map(([c, v]) => [c, v === 'deleted' ? { state: 'deleted' } : { state: 'active', wrappedRootKey: v }])),
});

describe('darkload (migrating store)', () => {
  it('mirrors the key the primary stored, not the request`s, so both stores hold one key', async () => {
    const [a, b] = [embedded(), embedded()];
    const first = keys('contact');
    await a.createIfAbsent('u', first);
    const store = createMigratingStore(a, b, { logger: silentLogger });
    const stored = await store.createIfAbsent('u', keys('contact', 'ads'));
    await store.drain();
    const [inA, inB] = [(await a.read(['u'])).get('u')!, (await b.read(['u'])).get('u')!];
    expect(stored).toEqual(inA);
    expect(differences(inA, inB)).toEqual([]);
    expect(inB.state === 'active' && inB.categories.get('contact')).toEqual({ state: 'active', wrappedRootKey: first.get('contact') });
    expect(store.darkloadStats()).toEqual({ applied: 1, failed: 0, skipped: 0 });
  });

  it('mirrors deletes of users and categories', async () => {
    const [a, b] = [embedded(), embedded()];
    const store = createMigratingStore(a, b, { logger: silentLogger });
    await store.createIfAbsent('u', keys('contact', 'ads'));
    await store.deleteCategory('u', 'ads');
    await store.createIfAbsent('v', keys('contact'));
    await store.deleteUser('v');
    await store.drain();
    expect((await b.read(['v'])).get('v')).toEqual({ state: 'deleted' });
    expect(differences((await a.read(['u'])).get('u')!, (await b.read(['u'])).get('u')!)).toEqual([]);
  });

  it('never returns the darkload`s failures: logged and counted, the primary answers', async () => {
    const lines: string[] = [];
    const store = createMigratingStore(embedded(), down, { logger: createLogger({ component: 't', sink: (l) => lines.push(l) }) });
    const created = await store.createIfAbsent('u', keys('contact'));
    await store.deleteCategory('u', 'ads');
    await store.deleteUser('w');
    await store.ping();
    await store.drain();
    expect(created.state).toBe('active');
    expect(store.darkloadStats()).toEqual({ applied: 0, failed: 3, skipped: 0 });
    expect(lines.filter((l) => l.includes('darkload write failed')).length).toBe(3);
    expect(lines.join('\n')).not.toContain('"u"');
  });

  it('bounds pending darkload writes: beyond the bound they are skipped and counted', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: KeyStore = { ...embedded(), deleteUser: () => gate };
    const store = createMigratingStore(embedded(), slow, { logger: silentLogger, maxInFlight: 2 });
    await Promise.all(['a', 'b', 'c', 'd'].map((u) => store.deleteUser(u)));
    release();
    await store.drain();
    expect(store.darkloadStats()).toEqual({ applied: 2, failed: 0, skipped: 2 });
  });

  it('does not pass the primary`s failures to the darkload', async () => {
    const b = embedded();
    const store = createMigratingStore(down, b, { logger: silentLogger });
    await expect(store.createIfAbsent('u', keys('contact'))).rejects.toThrow();
    await store.drain();
    expect((await b.read(['u'])).get('u')).toEqual({ state: 'absent' });
  });
});

describe('migration rules', () => {
  const k1 = randomBytes(8);
  const k2 = randomBytes(8);
  it.each<[string, StoredKeychain, StoredKeychain, unknown[]]>([
    ['equal', active({ contact: k1, ads: 'deleted' }), active({ contact: k1, ads: 'deleted' }), []],
    ['both deleted', { state: 'deleted' }, { state: 'deleted' }, []],
    ['missing in B', active({ contact: k1 }), { state: 'absent' }, [{ kind: 'missing-in-b', category: 'contact' }]],
    ['missing in A', { state: 'absent' }, active({ contact: k1 }), [{ kind: 'missing-in-a', category: 'contact' }]],
    ['different key', active({ contact: k1 }), active({ contact: k2 }), [{ kind: 'different-wrapped-key', category: 'contact' }]],
    ['user deleted in A only', { state: 'deleted' }, active({ contact: k1 }), [{ kind: 'deleted-in-a-only' }]],
    ['user deleted in B only', active({}), { state: 'deleted' }, [{ kind: 'deleted-in-b-only' }]],
    ['category deleted in A only', active({ ads: 'deleted' }), active({ ads: k1 }), [{ kind: 'deleted-in-a-only', category: 'ads' }]],
    ['category tombstone missing in B', active({ ads: 'deleted' }), { state: 'absent' }, [{ kind: 'deleted-in-a-only', category: 'ads' }]],
  ])('differences: %s', (_, a, b, expected) => {
    expect(differences(a, b)).toEqual(expected);
  });

  it('copyKeychain never replaces a key the target holds, and copies tombstones', async () => {
    const b = embedded();
    await b.createIfAbsent('u', new Map([['contact', k2]]));
    await copyKeychain(b, 'u', active({ contact: k1, device: k1, ads: 'deleted' }));
    expect(differences((await b.read(['u'])).get('u')!, active({ contact: k2, device: k1, ads: 'deleted' }))).toEqual([]);
    await copyKeychain(b, 'u', { state: 'deleted' });
    expect((await b.read(['u'])).get('u')).toEqual({ state: 'deleted' });
  });
});

describe('store configuration', () => {
  const base = { PADLOCK_SERVICES: JSON.stringify([{ name: 'etl', secretSha256: 'a'.repeat(64) }]), PADLOCK_DATA_DIR: '/tmp/x' };
  it('selects PostgreSQL with its connection variables, and a darkload store', () => {
    const c = loadConfig({ ...base, PADLOCK_STORE: 'postgres', PADLOCK_POSTGRES_HOST: '/cloudsql/p:r:i', PADLOCK_POSTGRES_SCHEMA: 'keys_v2', PADLOCK_DARKLOAD_STORE: 'embedded' });
    expect(c.store).toEqual({ kind: 'postgres', host: '/cloudsql/p:r:i', port: 5432, database: 'padlock', user: 'padlock', schema: 'keys_v2', poolSize: 10 });
    expect(c.darkload).toEqual({ kind: 'embedded', dataDir: '/tmp/x' });
  });
  it.each([
    [{ PADLOCK_STORE: 'postgres', PADLOCK_DARKLOAD_STORE: 'postgres' }, 'PADLOCK_DARKLOAD_STORE'],
    [{ PADLOCK_STORE: 'mysql' }, 'PADLOCK_STORE'],
    [{ PADLOCK_STORE: 'postgres', PADLOCK_POSTGRES_SCHEMA: 'Keys; DROP' }, 'PADLOCK_POSTGRES_SCHEMA'],
    [{ PADLOCK_STORE: 'postgres', PADLOCK_POSTGRES_POOL_SIZE: '0' }, 'PADLOCK_POSTGRES_POOL_SIZE'],
    [{ PADLOCK_MODE: 'production', PADLOCK_KMS_KEY: 'projects/p/locations/l/keyRings/r/cryptoKeys/k', PADLOCK_STORE: 'postgres', PADLOCK_DARKLOAD_STORE: 'embedded' }, 'PADLOCK_DARKLOAD_STORE'],
  ])('rejects %j naming %s', (env, variable) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(`${variable}:`);
  });
  it('accepts PostgreSQL in production', () => {
    const c = loadConfig({ ...base, PADLOCK_MODE: 'production', PADLOCK_KMS_KEY: 'projects/p/locations/l/keyRings/r/cryptoKeys/k', PADLOCK_STORE: 'postgres' });
    expect(c.store.kind).toBe('postgres');
  });
});
