import { connect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AppError } from '../../lib/errors.ts';
import { createBigtable } from '../../lib/gcp/clients.ts';
import { silentLogger } from '../../lib/logger.ts';
import { freePort } from '../../emulators/google/process.ts';
import { personalCategories } from '../../lib/semantic-types.ts';
import { uniqueName } from '../support/names.ts';
import { createBigtableStore } from '../../functions/padlock/bigtable-store.ts';
import { loadConfig } from '../../functions/padlock/config.ts';
import { deriveKey, keyIdOf } from '../../functions/padlock/derive.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { clientFor, makeTarget, rawCall, rejection, secrets, type StoreKind, type Target } from '../support/padlock/harness.ts';

const categories = personalCategories();

describe.each<StoreKind>(['embedded', 'bigtable'])('padlock on the %s store', (kind) => {
  let target: Target;
  let padlock: RunningPadlock;
  /** Every derived key a client received, for the log check at the end. */
  const seenKeys: Buffer[] = [];
  const user = (t: string): string => uniqueName(`user-${kind}`, t);

  beforeAll(async () => {
    target = makeTarget(kind, { host: inject('bigtableHost'), projectId: inject('projectId'), table: uniqueName('keychains', kind) });
    padlock = await target.start();
  });
  afterAll(async () => {
    await padlock.close();
  });

  const found = async (service: 'etl' | 'consumer-analytics' | 'signup', userId: string, category: string, context?: string) => {
    const [r] = await clientFor(padlock.url, service).getKeys([{ userId, category }], { createIfAbsent: true, ...(context ? { context } : {}) });
    if (r?.status !== 'found') throw new Error(`expected a key, got ${r?.status}`);
    seenKeys.push(r.key.key);
    return r.key;
  };

  it('serves health and readiness', async () => {
    expect(await rawCall(padlock.url, 'GET', '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await rawCall(padlock.url, 'GET', '/readyz')).status).toBe(200);
  });

  it('derives per-service keys: different for two services, equal twice for one, equal in a shared context', async () => {
    const u = user('derive');
    const etl1 = await found('etl', u, 'contact');
    const etl2 = await found('etl', u, 'contact');
    const consumer = await found('consumer-analytics', u, 'contact');
    expect(etl1.key.length).toBe(32);
    expect(etl1.key.equals(etl2.key)).toBe(true);
    expect(etl1.keyId).toBe(etl2.keyId);
    expect(etl1.key.equals(consumer.key)).toBe(false);
    expect(etl1.keyId).not.toBe(consumer.keyId);
    expect(Number.isInteger(etl1.keyId) && etl1.keyId >= 0 && etl1.keyId <= 0xffffffff).toBe(true);
    expect(etl1.keyId).toBe(keyIdOf(etl1.key));
    // The ETL and the consumers entitled to a dataset share its context.
    const shared1 = await found('etl', u, 'contact', 'dataset-plays');
    const shared2 = await found('consumer-analytics', u, 'contact', 'dataset-plays');
    expect(shared1.key.equals(shared2.key)).toBe(true);
    // Categories have independent keys.
    expect((await found('etl', u, 'location')).key.equals(etl1.key)).toBe(false);
  });

  it('stores only wrapped root keys and derives HKDF-SHA256(root, context ‖ category ‖ user)', async () => {
    const u = user('hkdf');
    const key = await found('etl', u, 'contact');
    const wrapped = await target.wrappedKeys(u);
    expect([...wrapped.keys()].sort()).toEqual(categories);
    const root = await target.unwrap(u, 'contact', wrapped.get('contact')!);
    expect(root.length).toBe(32);
    expect(wrapped.get('contact')!.includes(root)).toBe(false);
    expect(deriveKey(root, { context: 'etl', category: 'contact', userId: u }).key.equals(key.key)).toBe(true);
    seenKeys.push(root);
  });

  it('resolves each user of a multi-get independently: found, absent, deleted, and per category', async () => {
    const [a, b, c] = [user('multi-a'), user('multi-b'), user('multi-c')];
    const signup = clientFor(padlock.url, 'signup');
    expect((await signup.createKeychain(a)).status).toBe('created');
    expect((await signup.createKeychain(a)).status).toBe('exists');
    await signup.createKeychain(c);
    const privacy = clientFor(padlock.url, 'privacy');
    await privacy.deleteCategory(a, 'location');
    await privacy.deleteUser(c);
    const res = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', {
      service: 'etl',
      body: { users: [{ userId: a, categories: ['contact', 'location'] }, { userId: b }, { userId: c, categories: ['contact'] }] },
    });
    expect(res.status).toBe(200);
    const users = res.body.users as { userId: string; status: string; categories?: Record<string, { status: string }> }[];
    expect(res.body.context).toBe('etl');
    expect(users.map((x) => [x.userId, x.status])).toEqual([[a, 'found'], [b, 'absent'], [c, 'deleted']]);
    expect(users[0]?.categories?.contact?.status).toBe('found');
    expect(users[0]?.categories?.location).toEqual({ status: 'deleted' });
    // Through the client, in items order.
    const keys = await clientFor(padlock.url, 'etl').getKeys([
      { userId: c, category: 'contact' },
      { userId: a, category: 'location' },
      { userId: b, category: 'contact' },
      { userId: a, category: 'contact' },
    ]);
    expect(keys.map((k) => k.status)).toEqual(['deleted', 'deleted', 'absent', 'found']);
  });

  it('answers the same from the store and from its cache: ids beyond ASCII, shared and differing category lists', async () => {
    const ids = [`${user('unicode')}-é-😀`, `${user('quoted')}-"q"\\`, user('plain')];
    const body = {
      createIfAbsent: true,
      users: [
        { userId: ids[0], categories: ['contact', 'location'] },
        { userId: ids[1], categories: ['contact', 'location'] },
        { userId: ids[2], categories: ['location', 'contact', 'location'] },
        { userId: ids[0], categories: ['contact'] },
      ],
    };
    const first = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body });
    const cached = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { ...body, createIfAbsent: false } });
    expect(first.status).toBe(200);
    expect(cached).toEqual(first);
    const users = first.body.users as { userId: string; status: string; categories: Record<string, { key: string }> }[];
    expect(users.map((u) => u.userId)).toEqual([ids[0], ids[1], ids[2], ids[0]]);
    expect(users.map((u) => Object.keys(u.categories))).toEqual([['contact', 'location'], ['contact', 'location'], ['location', 'contact'], ['contact']]);
    expect(users[3]!.categories.contact!.key).toBe(users[0]!.categories.contact!.key);
    const viaClient = await clientFor(padlock.url, 'etl').getKeys([{ userId: ids[0]!, category: 'contact' }]);
    expect(viaClient[0]?.status === 'found' && viaClient[0].key.key.toString('base64')).toBe(users[0]!.categories.contact!.key);
    // The userIds form answers exactly as the users form does.
    const shared = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds: [ids[0], ids[1], ids[0]], categories: ['contact', 'location'] } });
    expect(shared.status).toBe(200);
    expect(shared.body.users).toEqual([users[0], users[1], users[0]]);
    const allCategories = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds: [ids[2]] } });
    const perUser = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: ids[2] }] } });
    expect(allCategories.body).toEqual(perUser.body);
  });

  it('creates one root key per category under 50 concurrent creates for one user', async () => {
    const u = user('race');
    const second = kind === 'bigtable' ? await target.start() : padlock;
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          i % 2 === 0
            ? clientFor(i % 4 === 0 ? padlock.url : second.url, 'signup').createKeychain(u)
            : clientFor(i % 4 === 1 ? padlock.url : second.url, 'etl').getKeys([{ userId: u, category: 'contact' }], { createIfAbsent: true }),
        ),
      );
      expect(results.length).toBe(50);
      const wrapped = await target.wrappedKeys(u);
      expect([...wrapped.keys()].sort()).toEqual(categories);
      // Every caller, through either instance, gets the key derived from that one root.
      const keys = await Promise.all([padlock.url, second.url].map((url) => clientFor(url, 'etl').getKeys([{ userId: u, category: 'contact' }])));
      const hexes = new Set(keys.flat().map((k) => (k.status === 'found' ? k.key.key.toString('hex') : k.status)));
      expect(hexes.size).toBe(1);
      const root = await target.unwrap(u, 'contact', wrapped.get('contact')!);
      expect([...hexes][0]).toBe(deriveKey(root, { context: 'etl', category: 'contact', userId: u }).key.toString('hex'));
    } finally {
      if (second !== padlock) await second.close();
    }
  });

  it('deletes a user: no wrapped key left in the store, reported deleted, never recreated', async () => {
    const u = user('shred');
    const before = await found('etl', u, 'contact');
    const wrappedBefore = await target.wrappedKeys(u);
    expect(wrappedBefore.size).toBe(categories.length);
    const privacy = clientFor(padlock.url, 'privacy');
    expect(await privacy.deleteUser(u)).toEqual({ userId: u, status: 'deleted' });
    expect((await target.wrappedKeys(u)).size).toBe(0);
    const raw = await target.rawRecord(u);
    for (const w of wrappedBefore.values()) {
      expect(raw).not.toContain(w.toString('base64'));
      expect(raw).not.toContain(w.toString('hex'));
    }
    const etl = clientFor(padlock.url, 'etl');
    expect(await etl.getKeys([{ userId: u, category: 'contact' }])).toEqual([{ status: 'deleted' }]);
    expect(await etl.getKeys([{ userId: u, category: 'contact' }], { createIfAbsent: true })).toEqual([{ status: 'deleted' }]);
    const err = await rejection(clientFor(padlock.url, 'signup').createKeychain(u));
    expect(err.code).toBe('KEYCHAIN_DELETED');
    expect((await target.wrappedKeys(u)).size).toBe(0);
    expect(before.key.length).toBe(32);
  });

  it('deletes one category (opt-out): its wrapped key is gone, the others stay', async () => {
    const u = user('optout');
    const contact = await found('etl', u, 'contact');
    await clientFor(padlock.url, 'privacy').deleteCategory(u, 'location');
    const wrapped = await target.wrappedKeys(u);
    expect(wrapped.has('location')).toBe(false);
    expect(wrapped.size).toBe(categories.length - 1);
    const etl = clientFor(padlock.url, 'etl');
    const [loc, con] = await etl.getKeys([{ userId: u, category: 'location' }, { userId: u, category: 'contact' }], { createIfAbsent: true });
    expect(loc).toEqual({ status: 'deleted' });
    expect(con?.status === 'found' && con.key.key.equals(contact.key)).toBe(true);
    expect((await target.wrappedKeys(u)).has('location')).toBe(false);
    // An opt-out before sign-up sticks too.
    const early = user('optout-early');
    await clientFor(padlock.url, 'privacy').deleteCategory(early, 'ads');
    const created = await clientFor(padlock.url, 'signup').createKeychain(early);
    expect(created.categories.ads).toBe('deleted');
    expect((await target.wrappedKeys(early)).has('ads')).toBe(false);
  });

  it('rejects bad callers and bad input with the right status and a named field', async () => {
    const url = padlock.url;
    const body = { users: [{ userId: 'u1' }] };
    expect((await rawCall(url, 'POST', '/v1/keys/lookup', { body })).body.code).toBe('SERVICE_UNKNOWN');
    const unknown = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', secret: 'x', body });
    expect([unknown.status, unknown.body.code]).toEqual([401, 'SERVICE_UNKNOWN']);
    const nobody = await fetch(`${url}/v1/keys/lookup`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('nobody:whatever').toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(nobody.status).toBe(401);
    const forbidden = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'signup', body: { ...body, context: 'dataset-plays' } });
    expect([forbidden.status, forbidden.body.code]).toEqual([403, 'CONTEXT_FORBIDDEN']);
    const cat = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: 'u1', categories: ['contact', 'shoe-size'] }] } });
    expect([cat.status, cat.body.code, cat.body.details?.field]).toEqual([400, 'CATEGORY_UNKNOWN', 'users[0].categories[1]']);
    const field = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: 'u1' }, { userId: 42 }] } });
    expect([field.status, field.body.code, field.body.details?.field]).toEqual([400, 'BODY_INVALID', 'users[1].userId']);
    expect((await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: '{not json' })).status).toBe(400);
    expect((await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: 'x', contentType: 'text/plain' })).status).toBe(415);
    expect((await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [] } })).body.details?.field).toBe('users');
    const sharedCat = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds: ['u1'], categories: ['contact', 'shoe-size'] } });
    expect([sharedCat.status, sharedCat.body.code, sharedCat.body.details?.field]).toEqual([400, 'CATEGORY_UNKNOWN', 'categories[1]']);
    expect((await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds: ['u1', 3] } })).body.details?.field).toBe('userIds[1]');
    const many = Array.from({ length: 1001 }, (_, i) => `u${i}`);
    const tooMany = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds: many } });
    expect([tooMany.status, tooMany.body.code, tooMany.body.details?.field]).toEqual([413, 'PAYLOAD_TOO_LARGE', 'userIds']);
    const tooManyUsers = await rawCall(url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: many.map((userId) => ({ userId })) } });
    expect([tooManyUsers.status, tooManyUsers.body.details?.field]).toEqual([413, 'users']);
    expect((await rawCall(url, 'POST', '/v1/keychains', { service: 'signup', body: { userId: '' } })).body.details?.field).toBe('userId');
    const notAdmin = await rawCall(url, 'DELETE', '/v1/keychains/u1', { service: 'etl' });
    expect([notAdmin.status, notAdmin.body.code]).toEqual([403, 'FORBIDDEN']);
    const badCat = await rawCall(url, 'DELETE', '/v1/keychains/u1/categories/nope', { service: 'privacy' });
    expect([badCat.status, badCat.body.code]).toEqual([400, 'CATEGORY_UNKNOWN']);
    expect((await rawCall(url, 'GET', '/v1/nothing', { service: 'etl' })).status).toBe(404);
    // Through the client: a bad category fails only its own caller in a coalesced batch.
    const etl = clientFor(url, 'etl');
    const [bad, good] = await Promise.allSettled([
      etl.getKeys([{ userId: 'u1', category: 'shoe-size' }]),
      etl.getKeys([{ userId: 'u1', category: 'contact' }]),
    ]);
    expect(bad.status === 'rejected' && (bad.reason as AppError).code).toBe('CATEGORY_UNKNOWN');
    expect(good.status).toBe('fulfilled');
    // Still serving after all of that.
    expect((await rawCall(url, 'GET', '/healthz')).status).toBe(200);
  });

  it('keeps serving when callers hang up in the middle of a lookup body', async () => {
    const { port } = new URL(padlock.url);
    const head = `POST /v1/keys/lookup HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Basic ${Buffer.from(`etl:${secrets.etl}`).toString('base64')}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`;
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.write(`${head}{"users":[{"userId":"cut`, () => socket.destroy()));
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
    }
    const after = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: user('after-cut') }] } });
    expect([after.status, (after.body.users as { status: string }[])[0]?.status]).toEqual([200, 'absent']);
  });

  it('coalesces concurrent lookups of one tick into one multi-get and caches them', async () => {
    const etl = clientFor(padlock.url, 'etl', { cacheTtlMs: 60_000 });
    const items = Array.from({ length: 40 }, (_, i) => ({ userId: user(`co-${i % 20}`), category: i % 2 ? 'contact' : 'device' }));
    const results = await Promise.all(items.map((item) => etl.getKeys([item], { createIfAbsent: true })));
    expect(results.every(([r]) => r?.status === 'found')).toBe(true);
    expect(etl.stats.requests).toBe(1);
    const again = await etl.getKeys(items);
    expect(etl.stats.requests).toBe(1);
    expect(again.map((r) => r.status === 'found' && r.key.key.toString('hex'))).toEqual(results.map(([r]) => r?.status === 'found' && r.key.key.toString('hex')));
  });

  it('propagates a deletion to every cache within service TTL + client TTL', async () => {
    let now = 1_700_000_000_000;
    const clock = (): number => now;
    const serviceTtl = 3_000;
    const clientTtl = 2_000;
    const a = await target.start({ clock, cacheTtlMs: serviceTtl });
    // Bigtable: deletion through another instance, as in production; embedded: one process by design.
    const b = kind === 'bigtable' ? await target.start({ clock, cacheTtlMs: serviceTtl }) : a;
    try {
      const u = user('bound');
      const consumer = clientFor(a.url, 'consumer-analytics', { cacheTtlMs: clientTtl, clock });
      const item = [{ userId: u, category: 'contact' }];
      expect((await consumer.getKeys(item, { createIfAbsent: true }))[0]?.status).toBe('found');
      now += 1_000;
      // The service's cache entry was read 1 s before the delete; the client's request too.
      expect((await clientFor(a.url, 'consumer-analytics').getKeys(item))[0]?.status).toBe('found');
      await clientFor(b.url, 'privacy').deleteUser(u);
      const deletedAt = now;
      if (kind === 'bigtable') {
        // Within the bound, caches may still serve the key: that is what the bound is for.
        expect((await consumer.getKeys(item))[0]?.status).toBe('found');
        expect((await clientFor(a.url, 'consumer-analytics').getKeys(item))[0]?.status).toBe('found');
      }
      now = deletedAt + serviceTtl + clientTtl;
      expect(await consumer.getKeys(item)).toEqual([{ status: 'deleted' }]);
      expect(await clientFor(a.url, 'consumer-analytics').getKeys(item)).toEqual([{ status: 'deleted' }]);
    } finally {
      if (b !== a) await b.close();
      await a.close();
    }
  });

  if (kind === 'embedded') {
    it('keeps keychains across a restart (file-backed, atomic writes)', async () => {
      const u = user('restart');
      const before = await found('etl', u, 'contact');
      const again = await target.start();
      try {
        const [after] = await clientFor(again.url, 'etl').getKeys([{ userId: u, category: 'contact' }]);
        expect(after?.status === 'found' && after.key.key.equals(before.key)).toBe(true);
      } finally {
        await again.close();
      }
    });
  }

  it('never writes key material to its logs (checked last, over the whole run)', async () => {
    expect(target.logs.length).toBeGreaterThan(10);
    expect(seenKeys.length).toBeGreaterThan(5);
    // Root keys of every user touched, read from the store.
    const text = target.logs.join('\n');
    for (const key of seenKeys) {
      for (const form of [key.toString('hex'), key.toString('base64'), key.toString('base64url')]) expect(text).not.toContain(form);
    }
  });
});

describe('padlock fails fast', () => {
  it('answers 503 KEY_STORE_UNAVAILABLE when Bigtable is down, and the client says retryable', async () => {
    const deadPort = await freePort();
    const bigtable = createBigtable({ projectId: inject('projectId'), emulatorHost: `127.0.0.1:${deadPort}` });
    const target = makeTarget('embedded');
    const config = loadConfig(target.env);
    const padlock = await startPadlock(
      { ...config, storeDeadlineMs: 500 },
      { logger: silentLogger, store: createBigtableStore(bigtable, { instanceId: 'padlock', tableId: 'keychains', deadlineMs: 500 }) },
    );
    try {
      const err = await rejection(clientFor(padlock.url, 'etl').getKeys([{ userId: 'u', category: 'contact' }]));
      expect([err.code, err.status, err.retryable]).toEqual(['KEY_STORE_UNAVAILABLE', 503, true]);
      expect((await rawCall(padlock.url, 'GET', '/readyz')).body.code).toBe('KEY_STORE_UNAVAILABLE');
    } finally {
      await padlock.close();
    }
  });

  it('answers 503 within its store deadline when the store accepts connections but never answers', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const bigtable = createBigtable({ projectId: inject('projectId'), emulatorHost: `127.0.0.1:${port}` });
    const config = loadConfig(makeTarget('embedded').env);
    const padlock = await startPadlock({ ...config, storeDeadlineMs: 300 }, { logger: silentLogger, store: createBigtableStore(bigtable, { instanceId: 'padlock', tableId: 'keychains', deadlineMs: 300 }) });
    try {
      const res = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: 'u' }] } });
      expect([res.status, res.body.code]).toEqual([503, 'KEY_STORE_UNAVAILABLE']);
    } finally {
      await padlock.close();
      silent.close();
    }
  });

  it('client: UNAVAILABLE (retryable) when padlock is down or exceeds the deadline', async () => {
    const port = await freePort();
    const down = await rejection(clientFor(`http://127.0.0.1:${port}`, 'etl').getKeys([{ userId: 'u', category: 'contact' }]));
    expect([down.code, down.retryable, down.details?.reason]).toEqual(['UNAVAILABLE', true, 'unreachable']);
    const hanging = (await import('node:http')).createServer(() => {});
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hanging.address() as { port: number }).port}`;
    try {
      const late = await rejection(clientFor(url, 'etl', { deadlineMs: 200 }).getKeys([{ userId: 'u', category: 'contact' }]));
      expect([late.code, late.retryable, late.details?.reason]).toEqual(['UNAVAILABLE', true, 'deadline']);
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
  });
});

describe('main.ts', () => {
  const runMain = async (env: Record<string, string>): Promise<{ code: number | null; stderr: string }> => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', 'functions/padlock/main.ts'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    return { code, stderr };
  };

  it.each([
    [{}, 'PADLOCK_SERVICES'],
    [{ PADLOCK_SERVICES: '[]' }, 'PADLOCK_SERVICES'],
    [{ PADLOCK_SERVICES: JSON.stringify([{ name: 'etl', secretSha256: 'a'.repeat(64) }]), PADLOCK_MODE: 'production', PADLOCK_STORE: 'bigtable' }, 'PADLOCK_KMS_KEY'],
    [{ PADLOCK_SERVICES: JSON.stringify([{ name: 'etl', secretSha256: 'a'.repeat(64) }]), PADLOCK_PORT: 'eighty' }, 'PADLOCK_PORT'],
  ])('exits 1 on bad configuration %j, naming the variable', async (env, variable) => {
    const { code, stderr } = await runMain(env);
    expect(code).toBe(1);
    expect(stderr).toContain(`${variable}:`);
  });
});
