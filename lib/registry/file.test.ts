import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileRegistryStore } from './file.ts';
import type { EventTypeRecord } from './types.ts';
import { sampleRecord } from '../../test/fixtures/registry-records.ts';

describe('FileRegistryStore', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'registry-'));
  const store = new FileRegistryStore(dir);

  it('writes one JSON file per type, conditional on the revision', async () => {
    const r1 = await store.putEventType(sampleRecord('alpha'), 0);
    expect(r1.revision).toBe(1);
    await expect(store.putEventType(sampleRecord('alpha'), 0)).rejects.toMatchObject({ code: 'EVENT_TYPE_EXISTS' });
    await expect(store.putEventType(sampleRecord('alpha', 2), 5)).rejects.toMatchObject({ code: 'CONCURRENT_UPDATE' });
    const r2 = await store.putEventType(sampleRecord('alpha', 2), 1);
    expect(r2.revision).toBe(2);
    expect(JSON.parse(readFileSync(path.join(dir, 'alpha.json'), 'utf8'))).toEqual(r2);
    expect(await new FileRegistryStore(dir).getEventType('alpha')).toEqual(r2);
    expect(readdirSync(dir)).toEqual(['alpha.json']);
  });

  it('concurrent writers with the same expected revision: exactly one wins, nothing lost', async () => {
    await store.putEventType(sampleRecord('beta'), 0);
    const writers = Array.from({ length: 10 }, (_, i) => store.putEventType(sampleRecord('beta', i + 2), 1));
    const results = await Promise.allSettled(writers);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.code === 'CONCURRENT_UPDATE')).toBe(true);
    const stored = await store.getEventType('beta');
    expect(stored).toEqual((won[0] as PromiseFulfilledResult<EventTypeRecord>).value);
  });

  it('lists types sorted and ignores foreign files; rejects bad names', async () => {
    expect((await store.listEventTypes()).map((r) => r.settings.name)).toEqual(['alpha', 'beta']);
    expect(await store.getEventType('../etc')).toBeUndefined();
    await expect(store.putEventType(sampleRecord('../x'), 0)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(await new FileRegistryStore(path.join(dir, 'missing')).listEventTypes()).toEqual([]);
  });
});
