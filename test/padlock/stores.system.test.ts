/**
 * Store conformance over every store against its real backend: the embedded
 * store on a temporary folder, Bigtable on the emulator, PostgreSQL on a real
 * PostgreSQL 15 server started for this file. Then what only PostgreSQL has:
 * one round trip per multi-get, and failing fast (never "absent") while the
 * server is down, serving again once it is back.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../emulators/google/process.ts';
import { createBigtable } from '../../lib/gcp/clients.ts';
import { startTestPostgres, type TestPostgres } from '../support/setup/postgres.ts';
import { uniqueName } from '../support/names.ts';
import { createBigtableStore, ensureKeychainTable } from '../../functions/padlock/bigtable-store.ts';
import { createEmbeddedStore } from '../../functions/padlock/embedded-store.ts';
import { createPostgresStore, type PostgresKeyStore } from '../../functions/padlock/postgres-store.ts';
import { storeConformance } from '../support/padlock/store-conformance.ts';

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

/** A PostgreSQL store on a fresh schema of the test server. */
export async function openPostgresStore(server: TestPostgres, opts: { deadlineMs?: number; poolSize?: number } = {}): Promise<PostgresKeyStore> {
  const store = createPostgresStore({
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.user,
    schema: uniqueName('padlock', 'store').replace(/-/g, '_'),
    poolSize: opts.poolSize ?? 10,
    deadlineMs: opts.deadlineMs ?? 2_000,
  });
  await store.ensureSchema();
  return store;
}

describe('embedded store conformance', () => {
  storeConformance('embedded', { open: async () => createEmbeddedStore(mkdtempSync(path.join(tmpdir(), 'padlock-conf-'))) });
});

describe('bigtable store conformance (emulator)', () => {
  storeConformance('bigtable', {
    open: async () => {
      const bigtable = createBigtable({ projectId: inject('projectId'), emulatorHost: inject('bigtableHost') });
      const tableId = uniqueName('keychains', 'conf');
      await ensureKeychainTable(bigtable, 'padlock', tableId);
      return createBigtableStore(bigtable, { instanceId: 'padlock', tableId, deadlineMs: 5_000 });
    },
  });
});

describe('postgres store conformance (PostgreSQL 15)', () => {
  storeConformance('postgres', { open: () => openPostgresStore(postgres) });
});

describe('postgres store', () => {
  it('answers a multi-get of 500 users in one statement', async () => {
    const store = await openPostgresStore(postgres);
    const ids = Array.from({ length: 500 }, (_, i) => `multi-${i}`);
    await Promise.all(ids.slice(0, 50).map((id) => store.createIfAbsent(id, new Map([['contact', Buffer.from(id)]]))));
    const query = pg.Pool.prototype.query;
    let statements = 0;
    pg.Pool.prototype.query = function (this: pg.Pool, ...args: unknown[]) {
      statements++;
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      const got = await store.read(ids);
      expect(got.size).toBe(500);
      expect([...got.values()].filter((k) => k.state === 'active').length).toBe(50);
    } finally {
      pg.Pool.prototype.query = query;
      await store.close();
    }
    expect(statements).toBe(1);
  });

  it('creates its schema once when several instances start together', async () => {
    const schema = uniqueName('padlock', 'schema').replace(/-/g, '_');
    const stores = Array.from({ length: 4 }, () =>
      createPostgresStore({ host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user, schema, poolSize: 2, deadlineMs: 5_000 }),
    );
    try {
      await Promise.all(stores.map((s) => s.ensureSchema()));
      await stores[0]!.createIfAbsent('u', new Map([['contact', Buffer.from('k')]]));
      expect((await stores[3]!.read(['u'])).get('u')?.state).toBe('active');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('fails fast when no server listens, without caching anything as absent', async () => {
    const port = await freePort();
    const store = createPostgresStore({ host: '127.0.0.1', port, database: 'postgres', user: 'padlock', schema: 'padlock', poolSize: 2, deadlineMs: 500 });
    try {
      await expect(store.read(['u'])).rejects.toThrow();
      await expect(store.createIfAbsent('u', new Map([['contact', Buffer.from('k')]]))).rejects.toThrow();
      await expect(store.deleteUser('u')).rejects.toThrow();
      await expect(store.ping()).rejects.toThrow();
    } finally {
      await store.close();
    }
  });

  it('rejects calls while the server is down, and serves the same data once it is back', async () => {
    const server = await startTestPostgres();
    const errors: Error[] = [];
    const store = createPostgresStore({
      host: server.host,
      port: server.port,
      database: server.database,
      user: server.user,
      schema: 'padlock',
      poolSize: 4,
      deadlineMs: 1_000,
      onIdleError: (err) => errors.push(err),
    });
    try {
      await store.ensureSchema();
      const key = Buffer.from('wrapped-key-bytes');
      await store.createIfAbsent('kept', new Map([['contact', key]]));
      await server.kill();
      await expect(store.read(['kept'])).rejects.toThrow();
      await expect(store.ping()).rejects.toThrow();
      await server.restart();
      let back = false;
      for (let i = 0; i < 50 && !back; i++) back = await store.ping().then(() => true, () => false);
      expect(back).toBe(true);
      const kept = (await store.read(['kept'])).get('kept');
      expect(kept?.state === 'active' && kept.categories.get('contact')).toEqual({ state: 'active', wrappedRootKey: key });
    } finally {
      await store.close();
      await server.stop();
    }
  });
});
