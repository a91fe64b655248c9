/**
 * `POST /v1/keys/keysets`: a consumer's derived keys as Tink keysets, for a
 * BigQuery keys table. Tink itself (tink-crypto) judges the keysets: one
 * fetched here decrypts what the ETL encrypted in the shared context. The
 * route is authorised like a lookup, never creates keys, and answers a shred
 * as `deleted`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { associatedData, encrypt, tinkKeyset } from '../../lib/crypto/aead.ts';
import { KEYSETS_PATH } from '../../lib/padlock-client/protocol.ts';
import { personalCategories } from '../../lib/semantic-types.ts';
import { uniqueName } from '../support/names.ts';
import type { RunningPadlock } from '../../functions/padlock/server.ts';
import { clientFor, makeTarget, rawCall, rejection, type Target } from '../support/padlock/harness.ts';

interface TinkAead {
  decrypt(ciphertext: Uint8Array, ad: Uint8Array): Promise<Uint8Array>;
}

/** Tink's own keyset parser and AEAD primitive. */
async function tinkAead(keyset: Buffer): Promise<TinkAead> {
  (globalThis as { self?: unknown }).self ??= globalThis;
  const tink = (await import('tink-crypto')) as unknown as {
    aead: { register(): void; Aead: unknown };
    binaryInsecure: { deserializeKeyset(b: Uint8Array): { getPrimitive(t: unknown): Promise<TinkAead> } };
  };
  tink.aead.register();
  return tink.binaryInsecure.deserializeKeyset(new Uint8Array(keyset)).getPrimitive(tink.aead.Aead);
}

describe('padlock keysets', () => {
  let target: Target;
  let padlock: RunningPadlock;
  const user = (t: string): string => uniqueName('keysets', t);
  /** Every keyset a test received, for the log check at the end. */
  const seen: Buffer[] = [];

  beforeAll(async () => {
    target = makeTarget('embedded');
    padlock = await target.start({ env: { PADLOCK_MAX_USERS_PER_REQUEST: '5' } });
  });
  afterAll(async () => {
    await padlock.close();
  });

  it('answers many users in one request, each found key as the Tink keyset that decrypts what the ETL encrypted', async () => {
    const users = [user('a'), user('b'), user('c')];
    const etl = clientFor(padlock.url, 'etl');
    const etlKeys = await etl.getKeys(users.map((userId) => ({ userId, category: 'contact' })), { createIfAbsent: true, context: 'dataset-plays' });
    const consumer = clientFor(padlock.url, 'consumer-analytics');
    const before = consumer.stats.requests;
    const keysets = await consumer.getKeysets(users, { categories: ['contact', 'location'], context: 'dataset-plays' });
    expect(consumer.stats.requests - before).toBe(1);
    expect(keysets.map((k) => k.userId)).toEqual(users);
    for (const [i, entry] of keysets.entries()) {
      const etlKey = etlKeys[i]!;
      if (entry.status !== 'found' || etlKey.status !== 'found') throw new Error('expected keys');
      expect([...entry.categories.keys()].sort()).toEqual(['contact', 'location']);
      const contact = entry.categories.get('contact')!;
      if (contact.status !== 'found') throw new Error('expected a contact keyset');
      seen.push(contact.keyset);
      // The consumer's keyset is the shared context's derived key, byte for byte as lib/crypto serializes it.
      expect(contact.keyId).toBe(etlKey.key.keyId);
      expect(contact.keyset.equals(tinkKeyset(etlKey.key))).toBe(true);
      const ad = associatedData('track_played', 'email');
      const ciphertext = encrypt(etlKey.key, Buffer.from(`mail of ${users[i]}`), ad);
      const plaintext = await (await tinkAead(contact.keyset)).decrypt(new Uint8Array(ciphertext), new Uint8Array(ad));
      expect(Buffer.from(plaintext).toString()).toBe(`mail of ${users[i]}`);
    }
  });

  it('serves the caller\'s own derived keys only: another context is 403, a keyset of its own context is not the ETL\'s key', async () => {
    const u = user('ctx');
    const [etlOwn] = await clientFor(padlock.url, 'etl').getKeys([{ userId: u, category: 'contact' }], { createIfAbsent: true, context: 'etl' });
    const forbidden = await rejection(clientFor(padlock.url, 'consumer-analytics').getKeysets([u], { context: 'etl' }));
    expect(forbidden.code).toBe('CONTEXT_FORBIDDEN');
    const [own] = await clientFor(padlock.url, 'consumer-analytics').getKeysets([u], { categories: ['contact'] });
    if (own?.status !== 'found' || etlOwn?.status !== 'found') throw new Error('expected keys');
    const c = own.categories.get('contact');
    if (c?.status !== 'found') throw new Error('expected a keyset');
    expect(c.keyset.equals(tinkKeyset(etlOwn.key))).toBe(false);
    expect(c.keyset.includes(etlOwn.key.key)).toBe(false);

    const wrongSecret = await rawCall(padlock.url, 'POST', KEYSETS_PATH, { service: 'consumer-analytics', secret: 'not-the-secret-0123456789', body: { userIds: [u] } });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.code).toBe('SERVICE_UNKNOWN');
  });

  it('never creates keys: an unknown user is absent before and after, and createIfAbsent is refused', async () => {
    const u = user('unknown');
    const consumer = clientFor(padlock.url, 'consumer-analytics');
    expect((await consumer.getKeysets([u]))[0]).toEqual({ userId: u, status: 'absent' });
    const refused = await rawCall(padlock.url, 'POST', KEYSETS_PATH, { service: 'consumer-analytics', body: { userIds: [u], createIfAbsent: true } });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'BODY_INVALID', details: { field: 'createIfAbsent' } });
    expect((await consumer.getKeysets([u]))[0]).toEqual({ userId: u, status: 'absent' });
    expect((await target.wrappedKeys(u)).size).toBe(0);
  });

  it('answers a shredded user as deleted and an opted-out category as deleted, right after the delete', async () => {
    const gone = user('gone');
    const optedOut = user('optout');
    const etl = clientFor(padlock.url, 'etl');
    await etl.getKeys([gone, optedOut].map((userId) => ({ userId, category: 'contact' })), { createIfAbsent: true });
    const consumer = clientFor(padlock.url, 'consumer-analytics');
    expect((await consumer.getKeysets([gone]))[0]!.status).toBe('found');
    const privacy = clientFor(padlock.url, 'privacy');
    await privacy.deleteUser(gone);
    await privacy.deleteCategory(optedOut, 'location');
    const [g, o] = await consumer.getKeysets([gone, optedOut]);
    expect(g).toEqual({ userId: gone, status: 'deleted' });
    if (o?.status !== 'found') throw new Error('expected the other categories');
    expect(o.categories.get('location')).toEqual({ status: 'deleted' });
    expect(o.categories.get('contact')?.status).toBe('found');
    expect([...o.categories.keys()].sort()).toEqual([...personalCategories()].sort());
  });

  it('rejects bad input naming the field, and splits a large set into requests within the server\'s limit', async () => {
    const bad = await rawCall(padlock.url, 'POST', KEYSETS_PATH, { service: 'consumer-analytics', body: { userIds: ['ok', ''] } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'BODY_INVALID', details: { field: 'userIds[1]' } });
    const unknownCategory = await rawCall(padlock.url, 'POST', KEYSETS_PATH, { service: 'consumer-analytics', body: { userIds: ['ok'], categories: ['nope'] } });
    expect(unknownCategory.status).toBe(400);
    expect(unknownCategory.body.code).toBe('CATEGORY_UNKNOWN');
    const tooMany = await rawCall(padlock.url, 'POST', KEYSETS_PATH, { service: 'consumer-analytics', body: { userIds: Array.from({ length: 6 }, (_, i) => `u${i}`) } });
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.details).toMatchObject({ field: 'userIds' });

    const many = Array.from({ length: 12 }, (_, i) => user(`many-${i}`));
    const consumer = clientFor(padlock.url, 'consumer-analytics', { maxUsersPerRequest: 5 });
    const before = consumer.stats.requests;
    const answer = await consumer.getKeysets(many);
    expect(consumer.stats.requests - before).toBe(3);
    expect(answer.map((a) => a.userId)).toEqual(many);
    expect(await rejection(consumer.getKeysets(['ok', '']))).toMatchObject({ code: 'BODY_INVALID', details: { field: 'userIds[1]' } });
  });

  it('never logs a keyset or a user id', () => {
    const text = target.logs.join('\n');
    expect(text).toContain('keysets served');
    expect(text).not.toMatch(/keysets-[a-z0-9]+-/);
    expect(seen.length).toBe(3);
    for (const k of seen) expect(text).not.toContain(k.toString('base64'));
  });
});
