/**
 * User ids at padlock's edge (lib/user-id.ts): one canonical form, so the store
 * key, the wrapping AAD and the URL always name the same user; anything else is
 * a 400 naming the field, on create, lookup and delete, from both stores.
 * Property names every object inherits are ordinary ids, services and
 * categories nobody configured. A user whose stored key does not unwrap is
 * refused alone, non-retryable (issue 23, findings 1 and 5).
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { USER_ID_MAX_BYTES } from '../../lib/user-id.ts';
import { uniqueName } from '../support/names.ts';
import { embeddedKeychainFile } from '../../functions/padlock/embedded-store.ts';
import type { RunningPadlock } from '../../functions/padlock/server.ts';
import { clientFor, makeTarget, rawCall, rejection, type StoreKind, type Target } from '../support/padlock/harness.ts';

const INHERITED = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'] as const;

describe.each<StoreKind>(['embedded', 'bigtable'])('user ids on the %s store', (kind) => {
  let target: Target;
  let padlock: RunningPadlock;

  beforeAll(async () => {
    target = makeTarget(kind, { host: inject('bigtableHost'), projectId: inject('projectId'), table: uniqueName('userids', kind) });
    padlock = await target.start();
  });
  afterAll(async () => {
    await padlock.close();
  });

  const lookup = (userIds: string[], createIfAbsent = true) =>
    rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds, categories: ['contact'], createIfAbsent } });

  it('refuses an id with a lone surrogate on lookup (400), where it used to meet the keychain of its U+FFFD twin (503)', async () => {
    const twin = `${uniqueName('twin', kind)}\uFFFD`;
    expect((await rawCall(padlock.url, 'POST', '/v1/keychains', { service: 'signup', body: { userId: twin } })).status).toBe(201);
    const lone = `${twin.slice(0, -1)}\ud800`;
    for (const createIfAbsent of [true, false]) {
      const res = await lookup([lone], createIfAbsent);
      expect(res).toMatchObject({ status: 400, body: { code: 'BODY_INVALID', details: { field: 'userIds[0]' } } });
      expect(res.body.message).toContain('lone surrogate');
    }
    const users = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: 'ok-user' }, { userId: '\udfff' }] } });
    expect(users).toMatchObject({ status: 400, body: { code: 'BODY_INVALID', details: { field: 'users[1].userId' } } });
    // The twin itself is untouched and served.
    expect((await lookup([twin])).body).toMatchObject({ users: [{ userId: twin, status: 'found' }] });
  });

  it('refuses an id with a lone surrogate on create and on delete', async () => {
    const create = await rawCall(padlock.url, 'POST', '/v1/keychains', { service: 'signup', body: { userId: 'a\ud800b' } });
    expect(create).toMatchObject({ status: 400, body: { code: 'BODY_INVALID', details: { field: 'userId' } } });
    // The UTF-8 of U+D800 in a URL is not a user id either.
    const del = await rawCall(padlock.url, 'DELETE', '/v1/keychains/a%ED%A0%80b', { service: 'privacy' });
    expect(del.status).toBe(400);
    const client = clientFor(padlock.url, 'privacy');
    expect(await rejection(client.deleteUser('a\ud800b'))).toMatchObject({ code: 'BODY_INVALID', status: 400 });
    expect(await rejection(client.deleteCategory('a\ud800b', 'contact'))).toMatchObject({ code: 'BODY_INVALID', status: 400 });
  });

  it(`takes ids up to ${USER_ID_MAX_BYTES} bytes of UTF-8, and refuses longer ones everywhere`, async () => {
    const longest = 'é'.repeat(USER_ID_MAX_BYTES / 2);
    const over = `${longest}x`;
    expect((await lookup([longest])).status).toBe(200);
    expect((await lookup([over])).body).toMatchObject({ code: 'BODY_INVALID', details: { field: 'userIds[0]' } });
    expect((await rawCall(padlock.url, 'POST', '/v1/keychains', { service: 'signup', body: { userId: over } })).status).toBe(400);
    expect((await rawCall(padlock.url, 'DELETE', `/v1/keychains/${encodeURIComponent(over)}`, { service: 'privacy' })).status).toBe(400);
    expect((await rawCall(padlock.url, 'DELETE', `/v1/keychains/${encodeURIComponent(longest)}`, { service: 'privacy' })).status).toBe(200);
  });

  it('serves and shreds a non-ASCII id through its one URL form', async () => {
    const id = `${uniqueName('uni', kind)}-é😀\u0301`;
    const etl = clientFor(padlock.url, 'etl');
    const [before] = await etl.getKeys([{ userId: id, category: 'contact' }], { createIfAbsent: true });
    expect(before?.status).toBe('found');
    expect((await target.wrappedKeys(id)).size).toBeGreaterThan(0);
    await clientFor(padlock.url, 'privacy').deleteUser(id);
    const [after] = await etl.getKeys([{ userId: id, category: 'contact' }]);
    expect(after?.status).toBe('deleted');
  });

  it('forgets a deleted user in the deleting client, also an id holding a NUL', async () => {
    const privacy = clientFor(padlock.url, 'privacy', { cacheTtlMs: 60_000 });
    for (const id of [`${uniqueName('nul', kind)}\u0000x`, uniqueName('plain', kind)]) {
      const [before] = await privacy.getKeys([{ userId: id, category: 'contact' }], { createIfAbsent: true });
      expect(before?.status).toBe('found');
      await privacy.deleteUser(id);
      const [after] = await privacy.getKeys([{ userId: id, category: 'contact' }]);
      expect(after?.status).toBe('deleted');
    }
  });

  it.each(INHERITED)('treats %s as an ordinary user id, with a keychain of its own', async (name) => {
    const etl = clientFor(padlock.url, 'etl');
    const [mine] = await etl.getKeys([{ userId: name, category: 'contact' }], { createIfAbsent: true });
    const [other] = await etl.getKeys([{ userId: `${name}-other-${kind}`, category: 'contact' }], { createIfAbsent: true });
    expect(mine?.status).toBe('found');
    expect(other?.status).toBe('found');
    if (mine?.status === 'found' && other?.status === 'found') expect(mine.key.key.equals(other.key.key)).toBe(false);
    const created = await rawCall(padlock.url, 'POST', '/v1/keychains', { service: 'signup', body: { userId: name } });
    expect(created).toMatchObject({ status: 200, body: { userId: name, status: 'exists' } });
    expect(Object.keys(created.body.categories as object)).toContain('contact');
  });

  it.runIf(kind === 'embedded')('answers KEY_UNREADABLE naming the field, not a retryable 503, for a user whose stored key does not unwrap', async () => {
    // A keychain stored under another user's AAD, as the old code left for a lone-surrogate id and its U+FFFD twin.
    const donor = uniqueName('donor', kind);
    const victim = uniqueName('victim', kind);
    const fine = uniqueName('fine', kind);
    expect((await rawCall(padlock.url, 'POST', '/v1/keychains', { service: 'signup', body: { userId: donor } })).status).toBe(201);
    mkdirSync(path.dirname(embeddedKeychainFile(target.dataDir, victim)), { recursive: true });
    copyFileSync(embeddedKeychainFile(target.dataDir, donor), embeddedKeychainFile(target.dataDir, victim));

    const res = await lookup([fine, victim]);
    expect(res).toMatchObject({ status: 500, body: { code: 'KEY_UNREADABLE', details: { field: 'userIds[1]' } } });
    expect(JSON.stringify(res.body)).not.toContain(victim);
    const users = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { users: [{ userId: victim }] } });
    expect(users).toMatchObject({ status: 500, body: { code: 'KEY_UNREADABLE', details: { field: 'users[0].userId' } } });
    // Not retryable: the client does not fail over or retry, and says so.
    expect(await rejection(clientFor(padlock.url, 'etl').getKeys([{ userId: victim, category: 'contact' }]))).toMatchObject({ code: 'KEY_UNREADABLE', retryable: false });
    // Every other user is served.
    expect((await lookup([fine])).status).toBe(200);
  });

  it.each(INHERITED)('knows no service and no category named %s', async (name) => {
    const asService = await fetch(`${padlock.url}/v1/keys/lookup`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${name}:${name}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userIds: ['u'] }),
    });
    expect(asService.status).toBe(401);
    const category = await rawCall(padlock.url, 'POST', '/v1/keys/lookup', { service: 'etl', body: { userIds: ['u'], categories: [name] } });
    expect(category).toMatchObject({ status: 400, body: { code: 'CATEGORY_UNKNOWN' } });
    const del = await rawCall(padlock.url, 'DELETE', `/v1/keychains/u/categories/${encodeURIComponent(name)}`, { service: 'privacy' });
    expect(del).toMatchObject({ status: 400, body: { code: 'CATEGORY_UNKNOWN' } });
  });
});
