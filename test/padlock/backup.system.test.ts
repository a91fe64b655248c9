/**
 * Backups that respect shredding, on real stores (the embedded store on a
 * temporary folder, PostgreSQL 15 on a real server, the Bigtable emulator): a dump, then a user and
 * a category deleted in the live store, then a restore into a fresh store with
 * the live store's deletions → the deleted stay deleted, everyone else has
 * byte-identical wrapped keys. Expired, truncated or edited dumps are refused
 * before anything is written; no root key (and, in CLI output, no wrapped key)
 * ever appears in a dump or the CLI output.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../lib/logger.ts';
import { uniqueName } from '../support/names.ts';
import { startTestPostgres, type TestPostgres } from '../support/setup/postgres.ts';
import { checkDump, dumpKeychains, restoreDump } from '../../functions/padlock/backup.ts';
import { loadStoreConfig } from '../../functions/padlock/config.ts';
import { createEmbeddedStore } from '../../functions/padlock/embedded-store.ts';
import { createLocalKek, wrapAad } from '../../functions/padlock/kek.ts';
import { openStore } from '../../functions/padlock/open-store.ts';
import { isScannable, type ScannableKeyStore, type StoreKind, type StoredKeychain } from '../../functions/padlock/store.ts';

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const tmp = (prefix: string): string => mkdtempSync(path.join(tmpdir(), prefix));

/** Variables of a fresh embedded store and a fresh PostgreSQL schema. */
const freshEnv = (): Record<string, string> => ({
  ...postgres.env,
  BIGTABLE_EMULATOR_HOST: inject('bigtableHost'),
  GCP_PROJECT: inject('projectId'),
  PADLOCK_BIGTABLE_TABLE: uniqueName('backup', 'bt'),
  PADLOCK_POSTGRES_SCHEMA: uniqueName('backup', 'pg').replace(/-/g, '_'),
  PADLOCK_DATA_DIR: tmp('padlock-backup-'),
});

async function open(kind: StoreKind, env: Record<string, string>): Promise<ScannableKeyStore> {
  const store = await openStore(loadStoreConfig(kind, env), 5_000, silentLogger);
  if (!isScannable(store)) throw new Error(`${kind} is not scannable`);
  return store;
}

async function readAll(store: ScannableKeyStore): Promise<Map<string, StoredKeychain>> {
  const out = new Map<string, StoredKeychain>();
  let cursor: string | undefined;
  do {
    const page = await store.scan(cursor, 7);
    for (const [userId, keychain] of page.keychains) out.set(userId, keychain);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

const USERS = 40;
const CATEGORIES = ['contact', 'location', 'payment'];

/**
 * Fills `store` with USERS users whose root keys are wrapped by a real local
 * KEK (plus a user and a category deleted before the dump); returns every
 * unwrapped root key, in the encodings a leak would take.
 */
async function populate(store: ScannableKeyStore): Promise<string[]> {
  const kek = createLocalKek(randomBytes(32));
  const rootKeyForms: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const userId = `user-${i}`;
    const wrapped = new Map<string, Buffer>();
    for (const category of CATEGORIES) {
      const rootKey = randomBytes(32);
      rootKeyForms.push(rootKey.toString('base64'), rootKey.toString('hex'), rootKey.subarray(0, 18).toString('base64'));
      wrapped.set(category, await kek.wrap(rootKey, wrapAad(userId, category)));
    }
    await store.createIfAbsent(userId, wrapped);
  }
  await store.deleteUser('user-0');
  await store.deleteCategory('user-1', 'payment');
  return rootKeyForms;
}

function wrappedKeysOf(k: StoredKeychain | undefined): Map<string, Buffer | 'deleted'> {
  const out = new Map<string, Buffer | 'deleted'>();
  if (k?.state === 'active') for (const [c, s] of k.categories) out.set(c, s.state === 'active' ? s.wrappedRootKey : 'deleted');
  return out;
}

describe.each(['embedded', 'postgres', 'bigtable'] as const)('backup of the %s store', (kind) => {
  it('restores a dump with the deletions made after it: deleted user and category absent, every other wrapped key byte-identical', async () => {
    const live = await open(kind, freshEnv());
    const fresh = await open(kind, freshEnv());
    try {
      const rootKeyForms = await populate(live);
      const atDump = await readAll(live);
      const file = path.join(tmp('padlock-dump-'), 'keychains.jsonl');
      const dumped = await dumpKeychains(live, file, { expiresInDays: 30, pageSize: 7 });
      expect(dumped.keychains).toBe(USERS);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const text = readFileSync(file, 'utf8');
      for (const form of rootKeyForms) expect(text).not.toContain(form);

      // Deletions in the live store after the dump.
      await live.deleteUser('user-2');
      await live.deleteCategory('user-3', 'location');

      const restored = await restoreDump(file, { to: fresh, deletionsFrom: live }, { pageSize: 7 });
      expect(restored.keychains).toBe(USERS);
      expect(restored.deletions).toEqual({ users: 2, categories: 2 });

      const after = await fresh.read([...atDump.keys()]);
      expect(after.get('user-0')).toEqual({ state: 'deleted' });
      expect(after.get('user-2')).toEqual({ state: 'deleted' });
      expect(wrappedKeysOf(after.get('user-1')).get('payment')).toBe('deleted');
      expect(wrappedKeysOf(after.get('user-3')).get('location')).toBe('deleted');
      let compared = 0;
      for (const [userId, before] of atDump) {
        if (userId === 'user-0' || userId === 'user-2') continue;
        const got = wrappedKeysOf(after.get(userId));
        for (const [category, key] of wrappedKeysOf(before)) {
          if (userId === 'user-3' && category === 'location') continue;
          expect(got.get(category), `${userId}/${category}`).toEqual(key);
          if (Buffer.isBuffer(key)) compared++;
        }
      }
      expect(compared).toBe((USERS - 2) * CATEGORIES.length - 2);
      // Restoring again changes nothing: copies never replace a key or lift a tombstone.
      await restoreDump(file, { to: fresh, deletionsFrom: live }, { pageSize: 7 });
      expect(await fresh.read([...atDump.keys()])).toEqual(after);
    } finally {
      await Promise.all([live.close(), fresh.close()]);
    }
  });

  it('refuses an expired dump before writing anything', async () => {
    const live = await open(kind, freshEnv());
    const fresh = await open(kind, freshEnv());
    try {
      await populate(live);
      const file = path.join(tmp('padlock-dump-'), 'keychains.jsonl');
      const now = new Date('2026-01-01T00:00:00.000Z');
      await dumpKeychains(live, file, { expiresInDays: 2, pageSize: 50, now });
      await expect(checkDump(file, new Date('2026-01-02T23:59:59.999Z'))).resolves.toMatchObject({ expiresAt: '2026-01-03T00:00:00.000Z' });
      await expect(restoreDump(file, { to: fresh, deletionsFrom: live }, { pageSize: 50, now: new Date('2026-01-03T00:00:00.000Z') })).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: expect.stringContaining('expired at 2026-01-03T00:00:00.000Z'),
      });
      expect((await readAll(fresh)).size).toBe(0);
    } finally {
      await Promise.all([live.close(), fresh.close()]);
    }
  });
});

describe('dump validation', () => {
  it('refuses a truncated, edited or over-long-lived dump, and never overwrites a file', async () => {
    const dir = tmp('padlock-dump-');
    const store = createEmbeddedStore(tmp('padlock-backup-'));
    const target = createEmbeddedStore(tmp('padlock-backup-'));
    try {
      await populate(store);
      const file = path.join(dir, 'keychains.jsonl');
      await dumpKeychains(store, file, { expiresInDays: 30, pageSize: 10 });
      await expect(dumpKeychains(store, file, { expiresInDays: 30, pageSize: 10 })).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(dumpKeychains(store, path.join(dir, 'long.jsonl'), { expiresInDays: 31, pageSize: 10 })).rejects.toThrow(/EXPIRES_IN_DAYS must be 1\.\.30/);
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');

      const variant = (name: string, content: string[]): string => {
        const f = path.join(dir, name);
        writeFileSync(f, `${content.join('\n')}\n`);
        return f;
      };
      const truncated = variant('truncated.jsonl', lines.slice(0, -2));
      await expect(checkDump(truncated)).rejects.toThrow(/no trailer: the dump is truncated/);
      const dropped = variant('dropped.jsonl', [...lines.slice(0, 3), ...lines.slice(4)]);
      await expect(checkDump(dropped)).rejects.toThrow(/trailer counts 40 keychains, the dump holds 39/);
      const header = JSON.parse(lines[0]!) as { createdAt: string };
      const extended = variant('extended.jsonl', [
        JSON.stringify({ ...header, expiresAt: new Date(Date.parse(header.createdAt) + 31 * 86_400_000).toISOString() }),
        ...lines.slice(1),
      ]);
      await expect(checkDump(extended)).rejects.toThrow(/expiresAt must be within 30 days after createdAt/);
      const badKey = variant('bad-key.jsonl', [lines[0]!, JSON.stringify({ userId: 'x', state: 'active', categories: [{ category: 'c', state: 'active', wrappedRootKey: 'not base64!' }] }), '{"end":true,"keychains":1}']);
      await expect(checkDump(badKey)).rejects.toThrow(/line 2: categories\.0\.wrappedRootKey: expected canonical base64/);
      for (const f of [truncated, dropped, extended, badKey]) {
        await expect(restoreDump(f, { to: target, deletionsFrom: store }, { pageSize: 10 })).rejects.toThrow();
      }
      expect((await readAll(target)).size).toBe(0);
    } finally {
      await Promise.all([store.close(), target.close()]);
    }
  });
});

describe('CLI: npm run padlock -- backup dump|restore', () => {
  const run = (args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'functions/padlock/cli.ts', ...args], {
        env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  it('dumps PostgreSQL, restores into the embedded store with PostgreSQL deletions, refuses an expired dump; no key in any output', async () => {
    const env = freshEnv();
    const live = await open('postgres', env);
    try {
      const rootKeyForms = await populate(live);
      const atDump = await readAll(live);
      const file = path.join(tmp('padlock-dump-'), 'keychains.jsonl');
      const dump = await run(['backup', 'dump', '--from', 'postgres', '--out', file, '--page-size', '9'], env);
      expect(dump.code, dump.stderr).toBe(0);
      const summary = JSON.parse(dump.stdout) as { keychains: number; createdAt: string; expiresAt: string };
      expect(summary.keychains).toBe(USERS);
      expect(Date.parse(summary.expiresAt) - Date.parse(summary.createdAt)).toBe(30 * 86_400_000);
      expect(statSync(file).mode & 0o777).toBe(0o600);

      await live.deleteUser('user-5');
      await live.deleteCategory('user-6', 'contact');
      const restore = await run(['backup', 'restore', '--from', file, '--to', 'embedded', '--deletions-from', 'postgres'], env);
      expect(restore.code, restore.stderr).toBe(0);
      expect(JSON.parse(restore.stdout)).toMatchObject({ keychains: USERS, deletions: { users: 2, categories: 2 } });
      const restored = await open('embedded', env);
      try {
        const after = await restored.read([...atDump.keys()]);
        expect(after.get('user-5')).toEqual({ state: 'deleted' });
        expect(wrappedKeysOf(after.get('user-6')).get('contact')).toBe('deleted');
        expect(wrappedKeysOf(after.get('user-7'))).toEqual(wrappedKeysOf(atDump.get('user-7')));
      } finally {
        await restored.close();
      }

      const [header, ...rest] = readFileSync(file, 'utf8').split('\n');
      const expired = path.join(path.dirname(file), 'expired.jsonl');
      const createdAt = new Date(Date.now() - 3 * 86_400_000);
      writeFileSync(expired, [JSON.stringify({ ...JSON.parse(header!), createdAt: createdAt.toISOString(), expiresAt: new Date(createdAt.getTime() + 86_400_000).toISOString() }), ...rest].join('\n'));
      const refused = await run(['backup', 'restore', '--from', expired, '--to', 'embedded', '--deletions-from', 'postgres'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/padlock backup restore failed: Dump .*expired\.jsonl expired at .*: an expired dump may hold keys deleted since, it must not be restored/);

      const tooLong = await run(['backup', 'dump', '--from', 'postgres', '--out', path.join(path.dirname(file), 'x.jsonl'), '--expires-in-days', '90'], env);
      expect([tooLong.code, tooLong.stderr.includes('EXPIRES_IN_DAYS: expected at most 30')]).toEqual([1, true]);

      const noDeletions = await run(['backup', 'restore', '--from', file, '--to', 'embedded'], env);
      expect([noDeletions.code, noDeletions.stderr.includes('DELETIONS_FROM:')]).toEqual([1, true]);
      const unknownJob = await run(['backup', 'copy', '--from', 'postgres'], env);
      expect([unknownJob.code, unknownJob.stderr.includes("expected 'backup dump|restore'")]).toEqual([1, true]);
      const missingFile = await run(['backup', 'restore', '--from', `${file}.missing`, '--to', 'embedded', '--deletions-from', 'postgres'], env);
      expect([missingFile.code, missingFile.stderr.includes('padlock backup restore failed: ENOENT')]).toEqual([1, true]);

      const wrappedForms = [...atDump.values()].flatMap((k) => [...wrappedKeysOf(k).values()].filter(Buffer.isBuffer).map((b) => b.toString('base64')));
      expect(wrappedForms.length).toBeGreaterThan(0);
      const output = [dump, restore, refused, tooLong].map((r) => r.stdout + r.stderr).join('\n');
      const dumpText = readFileSync(file, 'utf8');
      for (const form of rootKeyForms) {
        expect(output).not.toContain(form);
        expect(dumpText).not.toContain(form);
      }
      for (const form of wrappedForms) expect(output).not.toContain(form);
    } finally {
      await live.close();
    }
  });
});
