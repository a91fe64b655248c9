/**
 * Padlock itself on PostgreSQL: 503 KEY_STORE_UNAVAILABLE (retryable) while
 * the server is down, nothing cached as absent, the same keys once it is
 * back; and a darkloaded PostgreSQL that is down at start does not keep
 * padlock from starting or serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../emulators/google/process.ts';
import { startTestPostgres, type TestPostgres } from '../support/setup/postgres.ts';
import { clientFor, makeTarget, rawCall, rejection } from '../support/padlock/harness.ts';

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

describe('padlock on PostgreSQL', () => {
  it('answers 503 KEY_STORE_UNAVAILABLE while the server is down, caches nothing as absent, and serves the same keys once it is back', async () => {
    const target = makeTarget('embedded');
    const padlock = await target.start({ env: { ...postgres.env, PADLOCK_STORE: 'postgres', PADLOCK_CACHE_TTL_MS: '1', PADLOCK_STORE_DEADLINE_MS: '500' } });
    try {
      const etl = clientFor(padlock.url, 'etl');
      const [before] = await etl.getKeys([{ userId: 'kept', category: 'contact' }], { createIfAbsent: true });
      expect(before?.status).toBe('found');
      await postgres.kill();
      for (const userId of ['kept', 'never-seen']) {
        const err = await rejection(etl.getKeys([{ userId, category: 'contact' }]));
        expect([err.code, err.status, err.retryable]).toEqual(['KEY_STORE_UNAVAILABLE', 503, true]);
      }
      expect((await rawCall(padlock.url, 'GET', '/readyz')).body.code).toBe('KEY_STORE_UNAVAILABLE');
      expect((await rejection(clientFor(padlock.url, 'signup').createKeychain('new-while-down'))).code).toBe('KEY_STORE_UNAVAILABLE');
      await postgres.restart();
      let ready = false;
      for (let i = 0; i < 50 && !ready; i++) ready = (await rawCall(padlock.url, 'GET', '/readyz')).status === 200;
      expect(ready).toBe(true);
      const [after, unseen] = await etl.getKeys([
        { userId: 'kept', category: 'contact' },
        { userId: 'never-seen', category: 'contact' },
      ]);
      expect(after?.status === 'found' && before?.status === 'found' && after.key.key.equals(before.key.key)).toBe(true);
      expect(unseen).toEqual({ status: 'absent' });
    } finally {
      await padlock.close();
    }
  });

  it('starts and serves from the primary when the darkloaded PostgreSQL is down at start', async () => {
    const target = makeTarget('embedded');
    const deadPort = String(await freePort());
    const padlock = await target.start({ env: { ...postgres.env, PADLOCK_POSTGRES_PORT: deadPort, PADLOCK_DARKLOAD_STORE: 'postgres', PADLOCK_STORE_DEADLINE_MS: '300' } });
    try {
      expect((await clientFor(padlock.url, 'signup').createKeychain('dark-down')).status).toBe('created');
      expect((await rawCall(padlock.url, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await padlock.close();
    }
    expect(target.logs.some((l) => l.includes('darkload store not ready at start'))).toBe(true);
    expect(target.logs.some((l) => l.includes('darkload write failed'))).toBe(true);
  });
  it('PADLOCK_CREATES_PAUSED: creates answer 503 (retryable) and mint nothing, lookups and deletes are served', async () => {
    const target = makeTarget('embedded');
    const env = { ...postgres.env, PADLOCK_STORE: 'postgres', PADLOCK_POSTGRES_SCHEMA: 'paused', PADLOCK_CACHE_TTL_MS: '1' };
    const open = await target.start({ env });
    const [existing] = await clientFor(open.url, 'etl').getKeys([{ userId: 'existing', category: 'contact' }], { createIfAbsent: true });
    await open.close();
    const paused = await target.start({ env: { ...env, PADLOCK_CREATES_PAUSED: 'true' } });
    try {
      const etl = clientFor(paused.url, 'etl');
      const [again] = await etl.getKeys([{ userId: 'existing', category: 'contact' }], { createIfAbsent: true });
      expect(again?.status === 'found' && existing?.status === 'found' && again.key.key.equals(existing.key.key)).toBe(true);
      const err = await rejection(etl.getKeys([{ userId: 'new-user', category: 'contact' }], { createIfAbsent: true }));
      expect([err.code, err.status, err.retryable]).toEqual(['KEY_STORE_UNAVAILABLE', 503, true]);
      expect((await rejection(clientFor(paused.url, 'signup').createKeychain('new-user'))).code).toBe('KEY_STORE_UNAVAILABLE');
      expect(await etl.getKeys([{ userId: 'new-user', category: 'contact' }])).toEqual([{ status: 'absent' }]);
      await clientFor(paused.url, 'privacy').deleteUser('existing');
      expect(await etl.getKeys([{ userId: 'existing', category: 'contact' }])).toEqual([{ status: 'deleted' }]);
    } finally {
      await paused.close();
    }
  });
});
