/**
 * A whole key store migration, PostgreSQL (real server) → Bigtable (emulator)
 * and back, on running padlock instances under a steady load of lookups,
 * creates and deletes from four client processes: primary=postgres → primary=postgres, darkload=bigtable
 * (two instances) + backfill under load → verify (0 differences) → switch
 * (primary=bigtable, darkload=postgres) → verify → roll back (primary=postgres).
 * Every derived key any caller received is checked against what each later
 * configuration serves: none lost, none changed, no deleted user back.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../lib/logger.ts';
import { uniqueName } from '../support/names.ts';
import { startTestPostgres, type TestPostgres } from '../support/setup/postgres.ts';
import { loadStoreConfig } from '../../functions/padlock/config.ts';
import { differenceCount, runJob, type JobStats } from '../../functions/padlock/migrate-jobs.ts';
import { openStore } from '../../functions/padlock/open-store.ts';
import type { RunningPadlock } from '../../functions/padlock/server.ts';
import { isScannable, type ScannableKeyStore, type StoreKind } from '../../functions/padlock/store.ts';
import { clientFor, makeTarget, type Target } from '../support/padlock/harness.ts';

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const LOAD_CLIENT = fileURLToPath(new URL('../support/padlock/load-client.ts', import.meta.url));

describe('migrating padlock from PostgreSQL to Bigtable and back, under load', () => {
  it('loses no key, resurrects no deleted user, never gives one user two keys; verify finds 0 differences before the switch', async () => {
    const target: Target = makeTarget('embedded');
    // One data folder (one local KEK) for every instance; the stores are PostgreSQL and Bigtable.
    const env = {
      ...postgres.env,
      PADLOCK_POSTGRES_SCHEMA: uniqueName('migsys', 'pg').replace(/-/g, '_'),
      BIGTABLE_EMULATOR_HOST: inject('bigtableHost'),
      GCP_PROJECT: inject('projectId'),
      PADLOCK_BIGTABLE_TABLE: uniqueName('migsys', 'bt'),
      PADLOCK_CACHE_TTL_MS: '1',
    };
    const start = (primary: StoreKind, darkload?: StoreKind): Promise<RunningPadlock> =>
      target.start({ env: { ...env, PADLOCK_STORE: primary, ...(darkload ? { PADLOCK_DARKLOAD_STORE: darkload } : {}) } });
    const openJobStore = async (kind: StoreKind): Promise<ScannableKeyStore> => {
      const store = await openStore(loadStoreConfig(kind, { ...target.env, ...env }), 5_000, silentLogger);
      if (!isScannable(store)) throw new Error('not scannable');
      return store;
    };

    /** Every derived key callers received, by `user/category`. */
    const seen = new Map<string, Set<string>>();
    const deletedUsers = new Set<string>();
    const deletedCategories = new Set<string>();
    const failures: string[] = [];
    let lookups = 0;

    /** `rounds` rounds of lookups (creating), sign-ups, deletes and opt-outs, from 4 client processes at once (`load-client.ts`). */
    const load = (urls: string[], prefix: string, rounds: number): { started: Promise<void>; done: Promise<void> } => {
      let started = 0;
      let allStarted!: () => void;
      const startedPromise = new Promise<void>((resolve) => (allStarted = resolve));
      const outputs = Promise.all(
        Array.from({ length: 4 }, (_, worker) =>
          new Promise<string>((resolve, reject) => {
            const child = spawn(process.execPath, ['--import', 'tsx', LOAD_CLIENT], {
              env: { PATH: process.env.PATH ?? '', LOAD_SPEC: JSON.stringify({ urls, prefix, rounds, worker, workers: 4 }) },
              stdio: ['ignore', 'pipe', 'inherit'],
            });
            let out = '';
            let announced = false;
            child.stdout.on('data', (c: Buffer) => {
              out += c.toString();
              if (!announced && out.startsWith('started\n')) {
                announced = true;
                if (++started === 4) allStarted();
              }
            });
            child.on('error', reject);
            child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`load client exited with ${code}`))));
          }),
        ),
      );
      const merged = outputs.then((all) => {
        for (const out of all) {
          const r = JSON.parse(out.slice('started\n'.length)) as { seen: [string, string][]; deletedUsers: string[]; deletedCategories: string[]; failures: string[]; lookups: number };
          for (const [id, hex] of r.seen) {
            const set = seen.get(id) ?? new Set<string>();
            set.add(hex);
            seen.set(id, set);
          }
          for (const u of r.deletedUsers) deletedUsers.add(u);
          for (const c of r.deletedCategories) deletedCategories.add(c);
          failures.push(...r.failures);
          lookups += r.lookups;
        }
      });
      return { started: Promise.race([startedPromise, merged]), done: merged };
    };

    /** Everything callers saw, as the given instance serves it now. */
    const checkServed = async (url: string): Promise<{ keys: number; deleted: number }> => {
      let keys = 0;
      let deleted = 0;
      const ids = [...seen.keys()];
      for (let i = 0; i < ids.length; i += 200) {
        const batch = ids.slice(i, i + 200).map((id) => {
          const cut = id.lastIndexOf('/');
          return { userId: id.slice(0, cut), category: id.slice(cut + 1) };
        });
        const results = await clientFor(url, 'etl').getKeys(batch);
        results.forEach((r, j) => {
          const { userId, category } = batch[j]!;
          if (deletedUsers.has(userId) || deletedCategories.has(`${userId}/${category}`)) {
            expect(r, `${userId}/${category} must stay deleted`).toEqual({ status: 'deleted' });
            deleted++;
          } else {
            expect(r.status === 'found' && r.key.key.toString('hex'), `${userId}/${category} keeps its key`).toBe([...seen.get(`${userId}/${category}`)!][0]);
            keys++;
          }
        });
      }
      return { keys, deleted };
    };

    // 1. primary=postgres alone: the users that exist before the migration.
    const before = await start('postgres');
    await load([before.url], 'before', 12).done;
    await before.close();

    // 2. primary=postgres, darkload=bigtable on two instances; the backfill runs under load.
    const [d1, d2] = await Promise.all([start('postgres', 'bigtable'), start('postgres', 'bigtable')]);
    const [pg1, bt1] = await Promise.all([openJobStore('postgres'), openJobStore('bigtable')]);
    let backfill: JobStats;
    let verify: JobStats;
    try {
      // The backfill starts once the four client processes are sending.
      const during = load([d1.url, d2.url], 'during', 16);
      await during.started;
      [backfill] = await Promise.all([runJob('backfill', { from: pg1, to: bt1, pageSize: 2 }), during.done]);
      // Closing drains the darkload writes in flight.
      await Promise.all([d1.close(), d2.close()]);
      verify = await runJob('verify', { from: pg1, to: bt1, pageSize: 50 });
    } finally {
      await Promise.all([pg1.close(), bt1.close()]);
    }
    expect(backfill.copied).toBeGreaterThan(0);
    expect(verify.differences).toEqual(Object.fromEntries(Object.keys(verify.differences).map((k) => [k, { count: 0, samples: [] }])));
    expect(verify.scannedA).toBeGreaterThan(50);

    // 3. Switch: primary=bigtable, darkload=postgres. Everything served as before; more load; verify the other way.
    const switched = await start('bigtable', 'postgres');
    const afterSwitch = await checkServed(switched.url);
    await load([switched.url], 'switched', 6).done;
    await switched.close();
    const [pg2, bt2] = await Promise.all([openJobStore('postgres'), openJobStore('bigtable')]);
    let verifyBack: JobStats;
    try {
      verifyBack = await runJob('verify', { from: bt2, to: pg2, pageSize: 50 });
    } finally {
      await Promise.all([pg2.close(), bt2.close()]);
    }
    expect(differenceCount(verifyBack)).toBe(0);

    // 4. Roll back: primary=postgres alone serves everything, including what was created after the switch.
    const rolledBack = await start('postgres');
    const afterRollback = await checkServed(rolledBack.url);
    await rolledBack.close();

    const twoKeys = [...seen.values()].filter((s) => s.size > 1).length;
    expect({ failures, twoKeys }).toEqual({ failures: [], twoKeys: 0 });
    expect(afterSwitch.keys).toBeGreaterThan(100);
    expect(afterSwitch.deleted).toBeGreaterThan(10);
    expect(afterRollback.keys + afterRollback.deleted).toBeGreaterThan(afterSwitch.keys + afterSwitch.deleted);
    // The closing note of the run (counts only).
    console.info(
      `migration: ${lookups} lookups, 0 failed; ${seen.size} keys seen, ${twoKeys} users/categories with two keys; backfill copied ${backfill.copied} of ${backfill.scannedA}; ` +
        `verify before switch ${differenceCount(verify)} differences over ${verify.scannedA}+${verify.scannedB}; after switch ${afterSwitch.keys} keys kept, ${afterSwitch.deleted} deletions kept; ` +
        `after rollback ${afterRollback.keys} keys kept, ${afterRollback.deleted} deletions kept`,
    );
  });
  it('DiRT: the darkloaded store goes down mid-run, padlock keeps serving from the primary; once it is back, verify + repair bring it in sync', async () => {
    const darkServer = await startTestPostgres();
    const target: Target = makeTarget('embedded');
    const env = {
      ...darkServer.env,
      PADLOCK_POSTGRES_SCHEMA: 'padlock',
      BIGTABLE_EMULATOR_HOST: inject('bigtableHost'),
      GCP_PROJECT: inject('projectId'),
      PADLOCK_BIGTABLE_TABLE: uniqueName('dirt', 'bt'),
      PADLOCK_CACHE_TTL_MS: '1',
      PADLOCK_STORE: 'bigtable',
      PADLOCK_DARKLOAD_STORE: 'postgres',
    };
    const padlock = await target.start({ env });
    const failures: string[] = [];
    const seen = new Map<string, string>();
    const round = async (prefix: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const userId = `${prefix}-${i}`;
        try {
          const [r] = await clientFor(padlock.url, 'etl').getKeys([{ userId, category: 'contact' }], { createIfAbsent: true });
          if (r?.status === 'found') seen.set(userId, r.key.key.toString('hex'));
          else failures.push(`${userId}: ${r?.status}`);
          if (i % 4 === 1) await clientFor(padlock.url, 'privacy').deleteUser(`${prefix}-${i - 1}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const jobStores = async (): Promise<[ScannableKeyStore, ScannableKeyStore]> => {
      const [a, b] = await Promise.all((['bigtable', 'postgres'] as const).map((k) => openStore(loadStoreConfig(k, { ...target.env, ...env }), 5_000, silentLogger)));
      if (!a || !b || !isScannable(a) || !isScannable(b)) throw new Error('not scannable');
      return [a, b];
    };
    try {
      await round('up', 12);
      await darkServer.kill();
      await round('down', 12);
      expect((await fetch(`${padlock.url}/readyz`)).status).toBe(200);
      await darkServer.restart();
      await round('back', 8);
      await padlock.close();
      expect(failures).toEqual([]);
      expect(target.logs.filter((l) => l.includes('darkload write failed')).length).toBeGreaterThanOrEqual(12);
      const [a, b] = await jobStores();
      try {
        const found = await runJob('verify', { from: a, to: b, pageSize: 10 });
        // The keychains created while PostgreSQL was down (7 categories each), and the deletions made then;
        // a darkload write still in flight when it stopped or just after it came back may add one more.
        expect(found.differences['missing-in-b'].count).toBeGreaterThanOrEqual(9 * 7);
        expect(found.differences['deleted-in-a-only'].count).toBeGreaterThanOrEqual(3);
        const repaired: string[] = [];
        const repair = await runJob('repair', { from: a, to: b, pageSize: 10, onRepair: (id) => repaired.push(id) });
        expect(differenceCount(repair)).toBe(0);
        // Each user written while PostgreSQL was down, repaired once (a difference is counted per category).
        expect(repaired).toEqual(expect.arrayContaining(Array.from({ length: 12 }, (_, i) => `down-${i}`)));
        expect(new Set(repaired).size).toBe(repaired.length);
        expect(differenceCount(await runJob('verify', { from: a, to: b, pageSize: 10 }))).toBe(0);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      // And the repaired store serves the very keys callers got while it was down.
      const { PADLOCK_DARKLOAD_STORE: _, ...alone } = env;
      const fromPostgres = await target.start({ env: { ...alone, PADLOCK_STORE: 'postgres' } });
      try {
        const down = [...seen].filter(([id]) => id.startsWith('down-'));
        const results = await clientFor(fromPostgres.url, 'etl').getKeys(down.map(([userId]) => ({ userId, category: 'contact' })));
        results.forEach((r, i) => {
          const [userId, key] = down[i]!;
          const deleted = Number(userId.split('-')[1]) % 4 === 0;
          expect(deleted ? r.status : r.status === 'found' && r.key.key.toString('hex')).toBe(deleted ? 'deleted' : key);
        });
      } finally {
        await fromPostgres.close();
      }
    } finally {
      await padlock.close();
      await darkServer.stop();
    }
  });
});
