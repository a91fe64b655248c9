/**
 * The migration jobs from PostgreSQL (A, a real server) to Bigtable (B, the
 * emulator): backfill, its races, verify's statistics, repair, resuming from
 * a checkpoint, and the CLI.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../lib/logger.ts';
import { uniqueName } from '../support/names.ts';
import { startTestPostgres, type TestPostgres } from '../support/setup/postgres.ts';
import { loadStoreConfig } from '../../functions/padlock/config.ts';
import { differenceCount, runJob, type JobOptions } from '../../functions/padlock/migrate-jobs.ts';
import { createMigratingStore } from '../../functions/padlock/migrating-store.ts';
import { copyKeychain, differences } from '../../functions/padlock/migration.ts';
import { openStore } from '../../functions/padlock/open-store.ts';
import { isScannable, type KeychainPage, type ScannableKeyStore, type StoredKeychain } from '../../functions/padlock/store.ts';

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const keys = (...categories: string[]): Map<string, Buffer> => new Map(categories.map((c) => [c, randomBytes(60)]));

/** Fresh A (PostgreSQL schema) and B (Bigtable table), and the environment that names them. */
async function freshStores(): Promise<{ a: ScannableKeyStore; b: ScannableKeyStore; env: Record<string, string>; close: () => Promise<void> }> {
  const env = {
    ...postgres.env,
    PADLOCK_POSTGRES_SCHEMA: uniqueName('mig', 'a').replace(/-/g, '_'),
    BIGTABLE_EMULATOR_HOST: inject('bigtableHost'),
    GCP_PROJECT: inject('projectId'),
    PADLOCK_BIGTABLE_TABLE: uniqueName('mig', 'b'),
  };
  const a = await openStore(loadStoreConfig('postgres', env), 5_000, silentLogger);
  const b = await openStore(loadStoreConfig('bigtable', env), 5_000, silentLogger);
  if (!isScannable(a) || !isScannable(b)) throw new Error('stores must scan');
  return { a, b, env, close: async () => void (await Promise.all([a.close(), b.close()])) };
}

/** `store` whose scan calls `after(page)` before returning it (the moment between the backfill's read of A and its copy). */
function onScan(store: ScannableKeyStore, after: (page: KeychainPage, n: number) => Promise<void>): ScannableKeyStore {
  let n = 0;
  return {
    ...store,
    kind: store.kind,
    scan: async (cursor, limit) => {
      const page = await store.scan(cursor, limit);
      await after(page, n++);
      return page;
    },
  };
}

const one = async (store: ScannableKeyStore, id: string): Promise<StoredKeychain> => (await store.read([id])).get(id)!;

describe('migration jobs, PostgreSQL → Bigtable', () => {
  it('backfill copies every keychain B lacks, with its tombstones, and verify then finds 0 differences', async () => {
    const { a, b, close } = await freshStores();
    try {
      const ids = Array.from({ length: 25 }, (_, i) => `user-${i}-${randomBytes(2).toString('hex')}`);
      for (const [i, id] of ids.entries()) {
        await a.createIfAbsent(id, keys('contact', 'location'));
        if (i % 5 === 1) await a.deleteUser(id);
        if (i % 5 === 2) await a.deleteCategory(id, 'location');
      }
      await a.deleteCategory('opted-out-before-signup', 'ads');
      // One user B already has (the darkload got there first): left as is.
      await copyKeychain(b, ids[0]!, await one(a, ids[0]!));
      const backfill = await runJob('backfill', { from: a, to: b, pageSize: 4 });
      expect([backfill.scannedA, backfill.copied]).toEqual([26, 25]);
      const verify = await runJob('verify', { from: a, to: b, pageSize: 7 });
      expect([verify.scannedA, verify.scannedB, differenceCount(verify)]).toEqual([26, 26, 0]);
      for (const id of [...ids, 'opted-out-before-signup']) expect(differences(await one(a, id), await one(b, id))).toEqual([]);
    } finally {
      await close();
    }
  });

  it('race: a user deleted in A while the backfill copies them does not reappear in B, even if the darkload missed the delete', async () => {
    const { a, b, close } = await freshStores();
    try {
      const victims = ['victim-1', 'victim-2'];
      for (const id of [...victims, 'bystander']) await a.createIfAbsent(id, keys('contact'));
      await a.deleteCategory('bystander', 'ads');
      // Deleted in A after the backfill read them, before it copies them; no darkload delivers the delete to B.
      const from = onScan(a, async (page) => {
        for (const [id] of page.keychains) if (victims.includes(id)) await a.deleteUser(id);
      });
      const stats = await runJob('backfill', { from, to: b, pageSize: 10 });
      expect(stats.recheckDeletes).toBe(2);
      for (const id of victims) expect(await one(b, id)).toEqual({ state: 'deleted' });
      expect(differenceCount(await runJob('verify', { from: a, to: b, pageSize: 10 }))).toBe(0);
    } finally {
      await close();
    }
  });

  it('race: a keychain created during the backfill (through the darkload) has the same key in A and B, never two', async () => {
    const { a, b, close } = await freshStores();
    try {
      const serving = createMigratingStore(a, b, { logger: silentLogger });
      for (let i = 0; i < 20; i++) await a.createIfAbsent(`old-${i}`, keys('contact'));
      const created: string[] = [];
      // While the backfill walks A, padlock keeps creating: new users, and new categories of users in the page being copied.
      const from = onScan(a, async (page, n) => {
        const writes = page.keychains.map(([id]) => serving.createIfAbsent(id, keys('contact', 'device')));
        writes.push(...Array.from({ length: 3 }, (_, i) => serving.createIfAbsent(`new-${n}-${i}`, keys('contact', 'ads'))));
        created.push(...Array.from({ length: 3 }, (_, i) => `new-${n}-${i}`));
        await Promise.all(writes);
      });
      await runJob('backfill', { from, to: b, pageSize: 5 });
      await serving.drain();
      expect(serving.darkloadStats().failed).toBe(0);
      const ids = [...Array.from({ length: 20 }, (_, i) => `old-${i}`), ...created];
      const [inA, inB] = [await a.read(ids), await b.read(ids)];
      for (const id of ids) {
        expect(inA.get(id)?.state).toBe('active');
        expect(differences(inA.get(id)!, inB.get(id)!)).toEqual([]);
      }
      expect(differenceCount(await runJob('verify', { from: a, to: b, pageSize: 50 }))).toBe(0);
    } finally {
      await close();
    }
  });

  it('verify counts each kind of difference with sample ids; repair merges all but two different keys, each reported', async () => {
    const { a, b, close } = await freshStores();
    try {
      const k = keys('contact');
      await a.createIfAbsent('only-in-a', k);
      await b.createIfAbsent('only-in-b', k);
      await a.createIfAbsent('two-keys', keys('contact'));
      await b.createIfAbsent('two-keys', keys('contact'));
      await a.createIfAbsent('deleted-in-a', k);
      await b.createIfAbsent('deleted-in-a', k);
      await a.deleteUser('deleted-in-a');
      await a.createIfAbsent('optout-in-b', keys('contact', 'ads'));
      await b.deleteCategory('optout-in-b', 'ads');
      const verify = await runJob('verify', { from: a, to: b, pageSize: 2 });
      const summary = Object.fromEntries(Object.entries(verify.differences).map(([kind, d]) => [kind, [d.count, d.samples]]));
      expect(summary).toEqual({
        'missing-in-b': [2, ['only-in-a', 'optout-in-b']],
        'missing-in-a': [1, ['only-in-b']],
        'different-wrapped-key': [1, ['two-keys']],
        'deleted-in-a-only': [1, ['deleted-in-a']],
        'deleted-in-b-only': [1, ['optout-in-b']],
      });
      // optout-in-b: A has contact and ads, B has only the ads tombstone.
      const repaired: string[] = [];
      const repair = await runJob('repair', { from: a, to: b, pageSize: 2, onRepair: (id) => repaired.push(id) });
      expect(repaired.sort()).toEqual(['deleted-in-a', 'only-in-a', 'only-in-b', 'optout-in-b', 'two-keys']);
      expect(repair.differences['different-wrapped-key'].count).toBe(1);
      expect(differenceCount(repair)).toBe(1);
      expect(await one(b, 'deleted-in-a')).toEqual({ state: 'deleted' });
      expect(differences(await one(a, 'only-in-b'), await one(b, 'only-in-b'))).toEqual([]);
      const optout = await one(a, 'optout-in-b');
      expect(optout.state === 'active' && optout.categories.get('ads')).toEqual({ state: 'deleted' });
      const after = await runJob('verify', { from: a, to: b, pageSize: 100 });
      expect([differenceCount(after), after.differences['different-wrapped-key'].samples]).toEqual([1, ['two-keys']]);
    } finally {
      await close();
    }
  });

  it('resumes from its checkpoint after a crash, without scanning a page twice', async () => {
    const { a, b, close } = await freshStores();
    try {
      for (let i = 0; i < 30; i++) await a.createIfAbsent(`u-${String(i).padStart(2, '0')}`, keys('contact'));
      const checkpointFile = path.join(mkdtempSync(path.join(tmpdir(), 'padlock-ckpt-')), 'backfill.json');
      const crashing = onScan(a, async (_, n) => {
        if (n === 3) throw new Error('crash');
      });
      const opts: JobOptions = { from: crashing, to: b, pageSize: 5, checkpointFile };
      await expect(runJob('backfill', opts)).rejects.toThrow('crash');
      expect(existsSync(checkpointFile)).toBe(true);
      const resumed = await runJob('backfill', { ...opts, from: a });
      expect([resumed.scannedA, resumed.copied]).toEqual([30, 30]);
      expect(existsSync(checkpointFile)).toBe(false);
      // A checkpoint of another job is refused, not misread.
      const crashingAgain = onScan(a, async (_, n) => {
        if (n === 1) throw new Error('crash');
      });
      await expect(runJob('verify', { from: crashingAgain, to: b, pageSize: 5, checkpointFile })).rejects.toThrow('crash');
      await expect(runJob('backfill', { from: a, to: b, pageSize: 5, checkpointFile })).rejects.toThrow(/is for verify postgres → bigtable/);
    } finally {
      await close();
    }
  });

  it('CLI: npm run padlock -- migrate verify|backfill, exit 2 while differences remain, 1 naming a bad option', async () => {
    const { a, close, env } = await freshStores();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'padlock-cli-'));
    const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'functions/padlock/cli.ts', ...args], {
          env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', PADLOCK_DATA_DIR: dataDir, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('exit', (code) => resolve({ code, stdout, stderr }));
      });
    try {
      await a.createIfAbsent('cli-user', keys('contact'));
      const before = await run(['migrate', 'verify', '--from', 'postgres', '--to', 'bigtable']);
      expect(before.code).toBe(2);
      expect(JSON.parse(before.stdout).differences['missing-in-b']).toEqual({ count: 1, samples: ['cli-user'] });
      const backfill = await run(['migrate', 'backfill', '--from', 'postgres', '--to', 'bigtable', '--page-size', '10']);
      expect(backfill.code).toBe(0);
      expect(backfill.stderr).toMatch(/backfill \[done\] scanned 1 in postgres/);
      const after = await run(['migrate', 'verify', '--from', 'postgres', '--to', 'bigtable']);
      expect([after.code, JSON.parse(after.stdout).scannedA]).toEqual([0, 1]);
      const bad = await run(['migrate', 'verify', '--from', 'postgres', '--to', 'mysql']);
      expect([bad.code, bad.stderr.includes('TO:')]).toEqual([1, true]);
      const stored = await one(a, 'cli-user');
      const wrapped = stored.state === 'active' && stored.categories.get('contact')?.state === 'active' ? (stored.categories.get('contact') as { wrappedRootKey: Buffer }).wrappedRootKey : Buffer.alloc(0);
      expect(wrapped.length).toBe(60);
      const output = [before, backfill, after].map((r) => r.stdout + r.stderr).join('\n');
      for (const form of [wrapped.toString('base64'), wrapped.toString('hex'), wrapped.subarray(0, 24).toString('base64')]) expect(output).not.toContain(form);
    } finally {
      await close();
    }
  });
});
