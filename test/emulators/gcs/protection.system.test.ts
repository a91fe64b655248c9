/**
 * Object holds and Object Retention Lock in the GCS emulator, driven by the
 * official `@google-cloud/storage` client over loopback: a held or retained
 * object cannot be deleted or replaced (403 `forbidden` in GCS's error JSON),
 * metadata edits still work, an Unlocked retention is shortened only with
 * `overrideUnlockedRetention`, a Locked one never, and protection survives a
 * restart of the directory-backed emulator.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorage } from '../../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../../emulators/gcs/index.ts';
import { uniqueName } from '../../support/names.ts';

interface ClientError {
  code?: unknown;
  errors?: { reason?: string; domain?: string; message?: string }[];
  message?: string;
}

/** The client error a call rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<ClientError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as ClientError,
  );
  expect(err, 'expected the call to be refused').toBeDefined();
  return err!;
}

/** Asserts GCS's 403: code 403 and one error with reason `forbidden` in domain `global`. */
async function expectForbidden(p: Promise<unknown>, mentions: RegExp): Promise<void> {
  const err = await rejection(p);
  expect(err.code).toBe(403);
  expect(err.errors?.[0]).toMatchObject({ reason: 'forbidden', domain: 'global' });
  expect(err.message).toMatch(mentions);
}

const inDays = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString();

describe('GCS emulator: holds and object retention (official client)', () => {
  let emulator: GcsEmulator;
  let storage: Storage;
  let plain: Bucket;
  let retaining: Bucket;

  beforeAll(async () => {
    process.env.METADATA_SERVER_DETECTION = 'none';
    emulator = await startGcsEmulator({ port: 0 });
    storage = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url });
    [plain] = await storage.createBucket(uniqueName('gcs-hold', 'plain'));
    [retaining] = await storage.createBucket(uniqueName('gcs-hold', 'ret'), { enableObjectRetention: true });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('a bucket created with enableObjectRetention reports objectRetention Enabled; others do not', async () => {
    expect((await retaining.getMetadata())[0].objectRetention).toEqual({ mode: 'Enabled' });
    expect((await plain.getMetadata())[0].objectRetention).toBeUndefined();
  });

  for (const hold of ['temporaryHold', 'eventBasedHold'] as const) {
    it(`${hold}: no delete, no overwrite (simple or resumable), metadata still editable; released, both work`, async () => {
      const file = plain.file(`held/${hold}`);
      await file.save('original', { resumable: false });
      const [meta] = await file.setMetadata({ [hold]: true });
      expect(meta[hold]).toBe(true);
      const kind = hold === 'temporaryHold' ? /Temporary hold/ : /Event-Based hold/;
      await expectForbidden(file.delete(), kind);
      await expectForbidden(file.save('replaced', { resumable: false }), kind);
      await expectForbidden(file.save('replaced', { resumable: true }), kind);
      await plain.file(`source/${hold}`).save('copied', { resumable: false });
      await expectForbidden(plain.file(`source/${hold}`).copy(file), kind);
      expect((await file.download())[0].toString()).toBe('original');
      const [edited] = await file.setMetadata({ metadata: { note: 'kept' } });
      expect(edited.metadata).toEqual({ note: 'kept' });
      expect(edited[hold]).toBe(true);
      await file.setMetadata({ [hold]: false });
      await file.save('replaced', { resumable: false });
      expect((await file.download())[0].toString()).toBe('replaced');
      await file.delete();
      expect((await file.exists())[0]).toBe(false);
    });
  }

  it('a hold asked for at upload protects the new object', async () => {
    const file = plain.file('held/at-upload');
    await file.save('x', { resumable: false, metadata: { temporaryHold: true } });
    expect((await file.getMetadata())[0].temporaryHold).toBe(true);
    await expectForbidden(file.delete(), /Temporary hold/);
    await file.setMetadata({ temporaryHold: false });
    await file.delete();
  });

  it('Unlocked retention: no delete or overwrite; extending is free; shortening or removing needs overrideUnlockedRetention', async () => {
    const file = retaining.file('kept/unlocked');
    await file.save('original', { resumable: false });
    const first = inDays(30);
    const [meta] = await file.setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: first } });
    expect(meta.retention).toEqual({ mode: 'Unlocked', retainUntilTime: first });
    await expectForbidden(file.delete(), /object retention/);
    await expectForbidden(file.save('replaced', { resumable: false }), /object retention/);
    await expectForbidden(file.save('replaced', { resumable: true }), /object retention/);
    const later = inDays(60);
    expect((await file.setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: later } }))[0].retention?.retainUntilTime).toBe(later);
    await expectForbidden(file.setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: first } }), /overrideUnlockedRetention/);
    await expectForbidden(file.setMetadata({ retention: null }), /overrideUnlockedRetention/);
    await expectForbidden(file.setMetadata({ retention: { mode: 'Locked', retainUntilTime: later } }), /overrideUnlockedRetention/);
    expect((await file.getMetadata())[0].retention?.retainUntilTime).toBe(later);
    const [removed] = await file.setMetadata({ retention: null }, { overrideUnlockedRetention: true });
    expect(removed.retention).toBeUndefined();
    await file.delete();
  });

  it('Locked retention: never shortened or removed, even with overrideUnlockedRetention; only extended', async () => {
    const file = retaining.file('kept/locked');
    await file.save('original', { resumable: false });
    const until = inDays(1);
    await file.setMetadata({ retention: { mode: 'Locked', retainUntilTime: until } });
    await expectForbidden(file.setMetadata({ retention: null }, { overrideUnlockedRetention: true }), /Locked/);
    await expectForbidden(file.setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: until } }, { overrideUnlockedRetention: true }), /Locked/);
    await expectForbidden(file.delete(), /object retention/);
    await file.setMetadata({ retention: { mode: 'Locked', retainUntilTime: inDays(2) } });
  });

  it('bad retention requests are 400 invalid: bucket without object retention, a past time, a bad mode, with an event-based hold', async () => {
    await plain.file('r').save('x', { resumable: false });
    const invalid = async (p: Promise<unknown>, mentions: RegExp): Promise<void> => {
      const err = await rejection(p);
      expect(err.code).toBe(400);
      expect(err.errors?.[0]?.reason).toBe('invalid');
      expect(err.message).toMatch(mentions);
    };
    await invalid(plain.file('r').setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: inDays(1) } }), /not enabled/);
    const file = retaining.file('kept/bad');
    await file.save('x', { resumable: false });
    await invalid(file.setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: inDays(-1) } }), /not in the future/);
    await invalid(file.setMetadata({ retention: { mode: 'Forever', retainUntilTime: inDays(1) } as never }), /retention\.mode/);
    await invalid(file.setMetadata({ eventBasedHold: true, retention: { mode: 'Unlocked', retainUntilTime: inDays(1) } }), /event-based hold/);
    await file.delete();
  });
});

describe('GCS emulator: protection survives a restart (directory mode)', () => {
  let dir: string;
  beforeAll(async () => {
    process.env.METADATA_SERVER_DETECTION = 'none';
    dir = await mkdtemp(path.join(tmpdir(), 'gcs-hold-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a retained and a held object are still protected after the emulator restarts', async () => {
    const name = uniqueName('gcs-hold', 'dir');
    let emulator = await startGcsEmulator({ port: 0, dir });
    let storage = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url });
    const [bucket] = await storage.createBucket(name, { enableObjectRetention: true });
    await bucket.file('a').save('a', { resumable: false });
    await bucket.file('a').setMetadata({ retention: { mode: 'Unlocked', retainUntilTime: inDays(7) } });
    await bucket.file('b').save('b', { resumable: false });
    await bucket.file('b').setMetadata({ temporaryHold: true });
    await emulator.close();
    emulator = await startGcsEmulator({ port: 0, dir });
    try {
      storage = createStorage({ projectId: 'test-project', apiEndpoint: emulator.url });
      const again = storage.bucket(name);
      expect((await again.getMetadata())[0].objectRetention).toEqual({ mode: 'Enabled' });
      await expectForbidden(again.file('a').delete(), /object retention/);
      await expectForbidden(again.file('b').delete(), /Temporary hold/);
    } finally {
      await emulator.close();
    }
  });
});
