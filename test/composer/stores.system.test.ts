/**
 * The registry stores' conditional write under concurrency: file store (two
 * store instances on one folder, as two processes would be) and Firestore
 * (emulator). Of N writers expecting the same revision exactly one wins and the
 * others are refused; retried writers each record their version; nothing is
 * silently lost.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { isAppError } from '../../lib/errors.ts';
import { createFirestore } from '../../lib/gcp/clients.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { FirestoreRegistryStore } from '../../lib/registry/firestore.ts';
import type { EventTypeRecord, RegistryStore } from '../../lib/registry/types.ts';
import { sampleRecord } from '../fixtures/registry-records.ts';
import { uniqueEventType } from '../fixtures/event-type-names.ts';
import { uniqueName } from '../support/names.ts';

/** Appends a version, retrying from a fresh read when the write loses a race (what the composer does). */
async function appendVersion(store: RegistryStore, name: string, tag: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const current = (await store.getEventType(name)) as EventTypeRecord;
    const next = structuredClone(current);
    next.versions.push({ version: current.versions.length + 1, fingerprint: tag, schema: { type: 'record', name: 'R', fields: [] }, createdAt: new Date().toISOString() });
    try {
      await store.putEventType(next, current.revision);
      return;
    } catch (err) {
      if (!(isAppError(err) && err.code === 'CONCURRENT_UPDATE')) throw err;
    }
  }
  throw new Error(`gave up appending ${tag}`);
}

function storeSuite(label: string, makeStores: () => [RegistryStore, RegistryStore]): void {
  describe(label, () => {
    const [a, b] = makeStores();
    afterAll(async () => {
      await a.close?.();
      await b.close?.();
    });

    it('creates once, reads back, lists', async () => {
      const name = uniqueEventType('stores', 'create');
      const stored = await a.putEventType(sampleRecord(name), 0);
      expect(stored.revision).toBe(1);
      expect(await b.getEventType(name)).toEqual(stored);
      expect((await b.listEventTypes()).map((r) => r.settings.name)).toContain(name);
      await expect(b.putEventType(sampleRecord(name), 0)).rejects.toMatchObject({ code: 'EVENT_TYPE_EXISTS' });
      expect(await a.getEventType('no_such_type')).toBeUndefined();
    });

    it('two concurrent updates of one revision: one recorded, the other refused', async () => {
      const name = uniqueEventType('stores', 'race');
      await a.putEventType(sampleRecord(name), 0);
      const results = await Promise.allSettled([a.putEventType(sampleRecord(name, 2), 1), b.putEventType(sampleRecord(name, 3), 1)]);
      const won = results.filter((r): r is PromiseFulfilledResult<EventTypeRecord> => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost.map((r) => (r.reason as { code?: string }).code)).toEqual(['CONCURRENT_UPDATE']);
      expect(await a.getEventType(name)).toEqual(won[0]?.value);
    });

    it('many concurrent writers that retry: every version recorded exactly once', async () => {
      const name = uniqueEventType('stores', 'retry');
      await a.putEventType(sampleRecord(name), 0);
      const tags = Array.from({ length: 8 }, (_, i) => `writer-${i}`);
      await Promise.all(tags.map((t, i) => appendVersion(i % 2 === 0 ? a : b, name, t)));
      const record = (await b.getEventType(name)) as EventTypeRecord;
      expect(record.versions.map((v) => v.fingerprint).slice(1).sort()).toEqual([...tags].sort());
      expect(record.versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(record.revision).toBe(9);
    });
  });
}

storeSuite('FileRegistryStore (two instances on one folder)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'stores-'));
  return [new FileRegistryStore(dir), new FileRegistryStore(dir)];
});

storeSuite('FirestoreRegistryStore (emulator)', () => {
  const collection = uniqueName('stores', 'fs').replace(/-/g, '_');
  const make = () => new FirestoreRegistryStore(createFirestore({ projectId: inject('projectId'), emulatorHost: inject('firestoreHost') }), { collection });
  return [make(), make()];
});
