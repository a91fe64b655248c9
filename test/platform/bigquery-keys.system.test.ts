/**
 * Decrypting in BigQuery, end to end (issue 15, part 3): events with personal
 * fields (a plain field, array elements, map values) go through the real chain
 * (Pub/Sub → ETL with padlock's keys → closed hour → load job into the
 * BigQuery emulator). A consumer fetches its Tink keysets from padlock into a
 * keys table (lib/keys-table), reads the events back with `tabledata.list`,
 * joins them to the keys table and decrypts with tink-crypto under the
 * associated data a SQL user writes, `CONCAT(type, b'\x00', field_path)`.
 * Then padlock deletes one user; after the sync, that user is gone from the
 * keys table and no keyset anywhere (the table, padlock) decrypts their values.
 * A user shredded before their events are transformed still loads: the items
 * of their arrays of personal values are empty BYTES (BigQuery has no null
 * array elements), never nulls that would stop the type's loading.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { createBigQuery, createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { readKeysTable, subjectsOf, syncKeysTable, type KeysTableRow, type KeysTableTarget } from '../../lib/keys-table/index.ts';
import { silentLogger } from '../../lib/logger.ts';
import { createPadlockClient, type PadlockClient } from '../../lib/padlock-client/index.ts';
import { periodOf } from '../../lib/partitions.ts';
import { DEFAULT_KEY_CONTEXT, deriveDeliveredSchema } from '../../lib/privacy/delivered-schema.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { startBigQueryEmulator } from '../../emulators/bigquery/index.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { loadConfig as loadPadlockConfig } from '../../functions/padlock/config.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';
import { mergeSchemas, tableSchemaOf } from '../../etl/bigquery-schema.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { eventTypeRecord, provisionType, publishEvents, waitUntil, writeAudit, type TestEvent } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;
const secrets = { etl: 'etl-secret-bqkeys-0123456789abcdef', analytics: 'analytics-secret-bqkeys-0123456789', privacy: 'privacy-secret-bqkeys-0123456789ab' };

const profileSchema: AvroSchemaJson = {
  type: 'record',
  name: 'Profile',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: ['null', 'string'], default: null, semanticType: 'email' },
    { name: 'phoneNumbers', type: { type: 'array', items: 'string' }, default: [], semanticType: 'phoneNumber' },
    { name: 'lastLogins', type: { type: 'map', values: 'string' }, default: {}, semanticType: 'ipAddress' },
    { name: 'plan', type: 'string' },
  ],
};

/** One loaded row as `tabledata.list` answers it (BYTES as base64; a map as REPEATED RECORD {key, value}). */
interface LoadedRow {
  eventId: string;
  payload: { userId: string; email: string | null; phoneNumbers: string[]; lastLogins: { key: string; value: string }[]; plan: string };
}

/** One encrypted value of a row with its category and the field path a SQL user binds. */
interface Cell {
  userId: string;
  category: string;
  fieldPath: string;
  ciphertext: Buffer;
  plaintext: string;
}

type TinkAead = { decrypt(ciphertext: Uint8Array, ad: Uint8Array): Promise<Uint8Array> };

/** Tink's own parser and primitive (tink-crypto), the independent judge of our keysets. */
async function tinkAead(keyset: Buffer): Promise<TinkAead> {
  (globalThis as { self?: unknown }).self ??= globalThis;
  const tink = (await import('tink-crypto')) as unknown as {
    aead: { register(): void; Aead: unknown };
    binaryInsecure: { deserializeKeyset(b: Uint8Array): { getPrimitive(t: unknown): Promise<TinkAead> } };
  };
  tink.aead.register();
  return tink.binaryInsecure.deserializeKeyset(new Uint8Array(keyset)).getPrimitive(tink.aead.Aead);
}

/** `CONCAT(type, b'\x00', field_path)`, written out as the SQL does, independently of lib/crypto. */
function sqlAssociatedData(type: string, fieldPath: string): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from(type, 'utf8'), Buffer.from([0]), Buffer.from(fieldPath, 'utf8')]));
}

/** The encrypted cells of the rows, with the path a SQL user writes: `email`, `phoneNumbers[<offset>]`, `lastLogins{"<key>"}`. */
function cellsOf(rows: readonly LoadedRow[], accepted: ReadonlyMap<string, TestEvent>): Cell[] {
  const out: Cell[] = [];
  for (const r of rows) {
    const sent = accepted.get(r.eventId)!.payload as { email: string | null; phoneNumbers: string[]; lastLogins: Record<string, string> };
    const userId = r.payload.userId;
    if (r.payload.email !== null) out.push({ userId, category: 'contact', fieldPath: 'email', ciphertext: Buffer.from(r.payload.email, 'base64'), plaintext: sent.email! });
    r.payload.phoneNumbers.forEach((p, i) => out.push({ userId, category: 'contact', fieldPath: `phoneNumbers[${i}]`, ciphertext: Buffer.from(p, 'base64'), plaintext: sent.phoneNumbers[i]! }));
    for (const { key, value } of r.payload.lastLogins) {
      out.push({ userId, category: 'network', fieldPath: `lastLogins{${JSON.stringify(key)}}`, ciphertext: Buffer.from(value, 'base64'), plaintext: sent.lastLogins[key]! });
    }
  }
  return out;
}

async function decrypts(keyset: Buffer, cell: Cell, type: string): Promise<string | undefined> {
  try {
    return Buffer.from(await (await tinkAead(keyset)).decrypt(new Uint8Array(cell.ciphertext), sqlAssociatedData(type, cell.fieldPath))).toString('utf8');
  } catch {
    return undefined;
  }
}

describe('decrypting loaded rows with keysets from padlock, and shredding them from the keys table', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const storage: Storage = createStorage({ projectId, apiEndpoint: inject('gcsUrl') });
  const bq: BigQuery = createBigQuery({ projectId, apiEndpoint: inject('bigqueryUrl') });
  const staging = uniqueName('bqkeys', 'staging');
  const data = uniqueName('bqkeys', 'data');
  const consumerBucket = uniqueName('bqkeys', 'consumer');
  const eventsDataset = uniqueName('bqkeys', 'events').replace(/-/g, '_');
  const type = uniqueName('bqkeys', 'profile').replace(/-/g, '_');
  let padlock: RunningPadlock;
  let workers: EtlWorkers | undefined;
  let analytics: PadlockClient;
  let keysTable: KeysTableTarget;

  beforeAll(async () => {
    await storage.createBucket(staging);
    await storage.createBucket(data);
    await storage.createBucket(consumerBucket);
    padlock = await startPadlock(
      loadPadlockConfig({
        PADLOCK_PORT: '0',
        PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'bqkeys-padlock-')),
        PADLOCK_SERVICES: JSON.stringify([
          serviceEntry('etl', secrets.etl, { contexts: [DEFAULT_KEY_CONTEXT] }),
          serviceEntry('consumer-analytics', secrets.analytics, { contexts: [DEFAULT_KEY_CONTEXT] }),
          serviceEntry('privacy', secrets.privacy, { admin: true }),
        ]),
      }),
      { logger: silentLogger },
    );
    analytics = createPadlockClient({ url: padlock.url, service: 'consumer-analytics', secret: secrets.analytics, context: DEFAULT_KEY_CONTEXT });
    keysTable = { bigquery: bq, dataset: uniqueName('bqkeys', 'consumer').replace(/-/g, '_'), table: 'keysets' };
  });
  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
    await padlock?.close();
  });

  it('a keyset fetched from padlock decrypts the loaded values; after a delete and a sync the user is gone and their values stay unreadable', async () => {
    // Three users' profile events in a past hour, through the ETL (keys from padlock, created at sign-up) into BigQuery.
    const registry = new MemoryRegistryStore();
    await registry.putEventType({ ...eventTypeRecord(type, [profileSchema]), settings: { ...eventTypeRecord(type, [profileSchema]).settings, storage: ['bigquery'] } }, 0);
    const { topic } = await provisionType(pubsub, type);
    const base = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR;
    const users = ['ada', 'bo', 'cy'].map((u) => uniqueName('bqkeys', u));
    const events: TestEvent[] = users.flatMap((userId, u) =>
      [0, 1].map((n) => ({
        eventId: `e-${u}-${n}`,
        receiveTime: base + u * 60_000 + n * 1000,
        payload: {
          userId,
          email: n === 0 ? `${userId}@mail.example` : null,
          phoneNumbers: [`+46 70 ${u}${n}1`, `+46 70 ${u}${n}2`],
          lastLogins: { home: `10.0.${u}.${n}`, 'wifi "café"': `192.168.${u}.${n}` },
          plan: 'FREE',
        },
      })),
    );
    const accepted = new Map(events.map((e) => [e.eventId, e]));
    await publishEvents(topic, type, profileSchema, events);
    await writeAudit(storage, staging, type, events);
    const etlKeys = createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl, context: DEFAULT_KEY_CONTEXT });
    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      logger: silentLogger,
      transform: createEncryptionTransform({ keys: etlKeys }),
      bigQuery: { client: bq, dataset: eventsDataset },
      tuning: {
        flushAgeMs: 300,
        closeCheckIntervalMs: 300,
        closeGraceMs: 500,
        closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
        registryPollMs: 500,
        loadCheckIntervalMs: 300,
        loadJobPollMs: 50,
      },
    });
    const partition = `${type}$${periodOf(base, 'hourly').key.replace(/[-T]/g, '')}`;
    const eventsTable = bq.dataset(eventsDataset).table(type);
    const loadedRows = async (): Promise<LoadedRow[]> => (await eventsTable.getRows({ autoPaginate: true }))[0] as LoadedRow[];
    expect(await waitUntil(async () => (await loadedRows().catch(() => [])).length === events.length, 90_000, 300)).toBe(true);
    const rows = await loadedRows();
    expect(rows.map((r) => r.eventId).sort()).toEqual([...accepted.keys()].sort());
    const cells = cellsOf(rows, accepted);
    expect(cells.length).toBe(3 + 6 * 2 + 6 * 2);
    for (const c of cells) expect(c.ciphertext.includes(Buffer.from(c.plaintext))).toBe(false);

    // The consumer's sync: the users of the loaded partition, their keysets from padlock, into the keys table.
    const subjects = await subjectsOf({ bigquery: bq, dataset: eventsDataset, table: partition }, 'payload.userId');
    expect(subjects).toEqual([...users].sort());
    const first = await syncKeysTable({ target: keysTable, padlock: analytics, storage, stagingBucket: consumerBucket, addUsers: subjects, categories: ['contact', 'network'], jobPollMs: 20 });
    expect(first).toMatchObject({ users: 3, rows: 6, removedUsers: 0 });
    const table1 = await readKeysTable(keysTable);
    expect(table1.map((r) => `${r.user_id}/${r.category}`).sort()).toEqual(users.flatMap((u) => [`${u}/contact`, `${u}/network`]).sort());
    // The keysets only passed through the staging bucket.
    expect((await storage.bucket(consumerBucket).getFiles())[0]).toEqual([]);

    // The join: every value decrypts under its user's keyset for its category, with the SQL's associated data.
    const keysetOf = (table: readonly KeysTableRow[], userId: string, category: string): Buffer | undefined =>
      table.find((r) => r.user_id === userId && r.category === category)?.keyset;
    for (const c of cells) expect(await decrypts(keysetOf(table1, c.userId, c.category)!, c, type)).toBe(c.plaintext);
    // A value bound to another position does not.
    const phone = cells.find((c) => c.fieldPath === 'phoneNumbers[1]')!;
    expect(await decrypts(keysetOf(table1, phone.userId, 'contact')!, { ...phone, fieldPath: 'phoneNumbers[0]' }, type)).toBeUndefined();

    // Privacy deletes one user in padlock; the next sync removes their rows and keeps the others'.
    const [shredded, ...kept] = users as [string, ...string[]];
    const privacy = createPadlockClient({ url: padlock.url, service: 'privacy', secret: secrets.privacy });
    await privacy.deleteUser(shredded);
    // A sync with nothing to add: the tracked users are those the table holds.
    const second = await syncKeysTable({ target: keysTable, padlock: analytics, storage, stagingBucket: consumerBucket, categories: ['contact', 'network'], jobPollMs: 20 });
    expect(second).toMatchObject({ users: 3, rows: 4, removedUsers: 1 });
    const table2 = await readKeysTable(keysTable);
    expect(table2.some((r) => r.user_id === shredded)).toBe(false);
    expect([...new Set(table2.map((r) => r.user_id))].sort()).toEqual([...kept].sort());

    // The shredded user's values stay unreadable: no keyset in the keys table, none from padlock, opens them.
    const theirs = cells.filter((c) => c.userId === shredded);
    expect(theirs.length).toBe(9);
    for (const c of theirs) {
      for (const k of table2) expect(await decrypts(k.keyset, c, type)).toBeUndefined();
      expect(await decrypts(keysetOf(table1, c.userId, c.category)!, c, type)).toBe(c.plaintext); // the old copy was the only key
    }
    expect((await analytics.getKeysets([shredded]))[0]).toEqual({ userId: shredded, status: 'deleted' });
    // The ETL's own client may serve its cached key for its TTL (the documented bound); padlock itself answers deleted.
    const freshEtl = createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl, context: DEFAULT_KEY_CONTEXT, cacheTtlMs: 0 });
    expect(await freshEtl.getKeys([{ userId: shredded, category: 'contact' }])).toEqual([{ status: 'deleted' }]);
    // The others still decrypt from the rewritten table.
    for (const c of cells.filter((x) => x.userId !== shredded)) expect(await decrypts(keysetOf(table2, c.userId, c.category)!, c, type)).toBe(c.plaintext);
  }, 180_000);

  it('a user shredded before their events are transformed loads: their array items are empty BYTES, the hour loads and loading goes on', async () => {
    // The delivered schema's array of personal values maps to the same REPEATED BYTES column as when its items were
    // nullable: a table created from the earlier delivered schema takes the new one without any change.
    const delivered = deriveDeliveredSchema(profileSchema);
    const phones = (delivered.fields as { name: string; type: { items: unknown } }[]).find((f) => f.name === 'phoneNumbers')!;
    expect(Array.isArray(phones.type.items)).toBe(false);
    const earlier = structuredClone(delivered);
    const earlierPhones = (earlier.fields as { name: string; type: { items: unknown } }[]).find((f) => f.name === 'phoneNumbers')!;
    earlierPhones.type.items = ['null', earlierPhones.type.items];
    const column = (fields: ReturnType<typeof tableSchemaOf>) => fields.find((f) => f.name === 'payload')!.fields!.find((f) => f.name === 'phoneNumbers');
    expect(column(tableSchemaOf(delivered))).toEqual({ name: 'phoneNumbers', type: 'BYTES', mode: 'REPEATED' });
    expect(tableSchemaOf(delivered)).toEqual(tableSchemaOf(earlier));
    expect(mergeSchemas(tableSchemaOf(earlier), tableSchemaOf(delivered))).toMatchObject({ added: [], relaxed: [] });

    const stagingBucket = uniqueName('bqshred', 'staging');
    const dataBucket = uniqueName('bqshred', 'data');
    await storage.createBucket(stagingBucket);
    await storage.createBucket(dataBucket);
    const dataset = uniqueName('bqshred', 'events').replace(/-/g, '_');
    const shredType = uniqueName('bqshred', 'profile').replace(/-/g, '_');
    const registry = new MemoryRegistryStore();
    const record = eventTypeRecord(shredType, [profileSchema]);
    await registry.putEventType({ ...record, settings: { ...record.settings, storage: ['bigquery'] } }, 0);
    const { topic } = await provisionType(pubsub, shredType);

    // Both users have keys; privacy deletes one before the ETL sees their events.
    const [gone, stays] = ['gone', 'stays'].map((u) => uniqueName('bqshred', u)) as [string, string];
    const signup = createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl, context: DEFAULT_KEY_CONTEXT, cacheTtlMs: 0 });
    await signup.getKeys([gone, stays].flatMap((userId) => [{ userId, category: 'contact' }, { userId, category: 'network' }]), { createIfAbsent: true });
    await createPadlockClient({ url: padlock.url, service: 'privacy', secret: secrets.privacy }).deleteUser(gone);

    const base = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR;
    const events: TestEvent[] = [gone, stays].map((userId, u) => ({
      eventId: `s-${u}`,
      receiveTime: base + u * 1000,
      payload: { userId, email: `${userId}@mail.example`, phoneNumbers: [`+46 70 ${u}1`, `+46 70 ${u}2`], lastLogins: { home: `10.1.${u}.1` }, plan: 'PRO' },
    }));
    await publishEvents(topic, shredType, profileSchema, events);
    await writeAudit(storage, stagingBucket, shredType, events);
    const own = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket,
      dataBucket,
      registry,
      logger: silentLogger,
      transform: createEncryptionTransform({ keys: createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl, context: DEFAULT_KEY_CONTEXT }) }),
      bigQuery: { client: bq, dataset },
      tuning: {
        flushAgeMs: 300,
        closeCheckIntervalMs: 300,
        closeGraceMs: 500,
        closeDeadlineMs: { high: 5 * 24 * HOUR, normal: 5 * 24 * HOUR, low: 5 * 24 * HOUR },
        registryPollMs: 500,
        loadCheckIntervalMs: 300,
        loadJobPollMs: 50,
      },
    });
    onTestFinished(() => own.close());
    const table = bq.dataset(dataset).table(shredType);
    const loadedRows = async (): Promise<LoadedRow[]> => (await table.getRows({ autoPaginate: true }))[0] as LoadedRow[];
    const stats = () => own.loaderStats()[shredType];
    // The loader counts a partition once its rows are verified and marked: wait for that, not
    // for the rows, which the table shows a moment earlier.
    expect(await waitUntil(async () => stats()?.loadingStopped === 1 || stats()?.partitionsLoaded === 1, 90_000, 300)).toBe(true);
    expect(stats()?.stopped).toBeUndefined();
    expect(stats()).toMatchObject({ loadingStopped: 0, partitionsLoaded: 1, rowsLoaded: 2 });

    const rows = new Map((await loadedRows()).map((r) => [r.payload.userId, r.payload]));
    const shredded = rows.get(gone)!;
    expect(shredded.email).toBeNull();
    expect(shredded.phoneNumbers.map((p) => Buffer.from(p, 'base64'))).toEqual([Buffer.alloc(0), Buffer.alloc(0)]);
    expect(shredded.lastLogins).toEqual([{ key: 'home', value: null }]);
    expect(shredded.plan).toBe('PRO');
    // The other user's items are ciphertexts their keyset opens.
    const [keysets] = await analytics.getKeysets([stays], { categories: ['contact'] });
    const lookup = keysets?.status === 'found' ? keysets.categories.get('contact') : undefined;
    expect(lookup?.status).toBe('found');
    const contact = (lookup as { keyset: Buffer }).keyset;
    const kept = rows.get(stays)!;
    for (const [i, p] of kept.phoneNumbers.entries()) {
      const cell: Cell = { userId: stays, category: 'contact', fieldPath: `phoneNumbers[${i}]`, ciphertext: Buffer.from(p, 'base64'), plaintext: '' };
      expect(await decrypts(contact, cell, shredType)).toBe(`+46 70 1${i + 1}`);
    }
  }, 180_000);

  it('a failed load leaves the keys table as it was and removes its staged keysets; an opted-out category goes at the next sync', async () => {
    // An emulator of its own: the fault below must not hit other test files' jobs.
    const own = await startBigQueryEmulator({ port: 0, gcsEndpoint: inject('gcsUrl') });
    onTestFinished(() => own.close());
    const target: KeysTableTarget = { bigquery: createBigQuery({ projectId, apiEndpoint: own.url }), dataset: uniqueName('bqkeys', 'fail').replace(/-/g, '_'), table: 'keysets' };
    const etl = createPadlockClient({ url: padlock.url, service: 'etl', secret: secrets.etl, context: DEFAULT_KEY_CONTEXT });
    const users = ['p', 'q'].map((u) => uniqueName('bqkeys', u));
    await etl.getKeys(users.map((userId) => ({ userId, category: 'location' })), { createIfAbsent: true });
    await syncKeysTable({ target, padlock: analytics, storage, stagingBucket: consumerBucket, addUsers: users, categories: ['location', 'contact'], jobPollMs: 20 });
    const before = await readKeysTable(target);
    expect(before.length).toBe(4);

    const privacy = createPadlockClient({ url: padlock.url, service: 'privacy', secret: secrets.privacy });
    await privacy.deleteCategory(users[0]!, 'location');
    own.faults.add({ methods: ['POST'], path: '/jobs(\\?|$)', times: 1, status: 400 });
    const failed = await syncKeysTable({ target, padlock: analytics, storage, stagingBucket: consumerBucket, categories: ['location', 'contact'], jobPollMs: 20 }).then(
      () => undefined,
      (err: unknown) => err as { code?: string },
    );
    expect(failed?.code).toBe('BIGQUERY_LOAD_REJECTED');
    expect((await readKeysTable(target)).map((r) => `${r.user_id}/${r.category}`).sort()).toEqual(before.map((r) => `${r.user_id}/${r.category}`).sort());
    expect((await storage.bucket(consumerBucket).getFiles())[0]).toEqual([]);

    const again = await syncKeysTable({ target, padlock: analytics, storage, stagingBucket: consumerBucket, categories: ['location', 'contact'], jobPollMs: 20 });
    expect(again).toMatchObject({ users: 2, rows: 3, removedUsers: 0 });
    expect((await readKeysTable(target)).map((r) => `${r.user_id}/${r.category}`).sort()).toEqual([`${users[0]}/contact`, `${users[1]}/contact`, `${users[1]}/location`].sort());
  }, 60_000);
});
