/**
 * Privacy by design, end to end: events with personal fields posted to the
 * real event service → real Pub/Sub emulator → ETL with the encryption
 * transform (keys from the real padlock on loopback) → closed partitions in
 * the GCS emulator → a consumer decrypts them (library and CLI) → a user is
 * deleted and another opts out of one category → their values become
 * undecryptable (after the cache bound) while everyone else's stay readable,
 * with no file rewritten → no object in any bucket holds a plaintext value.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Storage } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { silentLogger } from '../../lib/logger.ts';
import { periodOf, partitionPrefix, successObjectName, parseManifest, type Period } from '../../lib/partitions.ts';
import { createPadlockClient, type PadlockClient } from '../../lib/padlock-client/index.ts';
import { decryptPartition } from '../../lib/privacy/consumer.ts';
import { RecordDecryptor, type EncryptedMarker } from '../../lib/privacy/decryptor.ts';
import { gcsPartitionSource, localPartitionSource } from '../../lib/privacy/partition-reader.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { readContainer } from '../../lib/avro/container.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { eventTypeRecord, provisionType, waitUntil } from '../support/etl.ts';
import { loadConfig as loadPadlockConfig } from '../../functions/padlock/config.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { startEventService, type RunningEventService } from '../../functions/event-service/server.ts';
import { uniqueName } from '../support/names.ts';

const run = promisify(execFile);
const HOUR = 3_600_000;
/** Client and service key caches: the deletion bound is their sum. */
const CACHE_TTL_MS = 300;

const secrets = { etl: 'etl-secret-0123456789', analytics: 'analytics-secret-0123456789', marketing: 'marketing-secret-0123456789', privacy: 'privacy-secret-0123456789' };

const schema: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  namespace: 'com.example',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'phone', type: ['null', 'string'], default: null, semanticType: 'phoneNumber' },
    { name: 'ip', type: 'string', semanticType: 'ipAddress' },
    {
      name: 'contacts',
      type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }, { name: 'label', type: 'string' }] } },
    },
    { name: 'plan', type: 'string' },
  ],
};

interface Payload {
  userId: string;
  email: string;
  phone: string | null;
  ip: string;
  contacts: { email: string; label: string }[];
  plan: string;
}

const users = ['alice', 'bob', 'carol', 'dave'];
const payload = (user: string, n: number): Payload => ({
  userId: user,
  email: `${user}.${n}@mail.example`,
  phone: n % 2 === 0 ? `+33-6-${user}-${n}` : null,
  ip: `203.0.113.${users.indexOf(user) * 10 + n}`,
  contacts: [{ email: `friend-of-${user}-${n}@mail.example`, label: 'friend' }],
  plan: n % 2 === 0 ? 'pro' : 'free',
});

describe('privacy: encryption in the ETL, decryption for consumers, crypto-shredding', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const type = uniqueName('priv', 'signup').replace(/-/g, '_').slice(0, 60);
  const staging = uniqueName('priv', 'staging');
  const data = uniqueName('priv', 'data');
  let gcs: GcsEmulator;
  let storage: Storage;
  let padlock: RunningPadlock;
  let eventService: RunningEventService | undefined;
  let workers: EtlWorkers | undefined;
  const client = (service: keyof typeof secrets, extra: { cacheTtlMs?: number } = {}): PadlockClient =>
    createPadlockClient({ url: padlock.url, service, secret: secrets[service], cacheTtlMs: CACHE_TTL_MS, ...extra });

  const sent: Payload[] = [];
  let period: Period;

  beforeAll(async () => {
    const services = [
      // The ETL and the entitled consumer share the `events` key context; marketing has its own.
      serviceEntry('etl', secrets.etl, { contexts: ['events'] }),
      serviceEntry('analytics', secrets.analytics, { contexts: ['events'] }),
      serviceEntry('marketing', secrets.marketing, { contexts: ['marketing'] }),
      serviceEntry('privacy', secrets.privacy, { admin: true }),
    ];
    padlock = await startPadlock(
      loadPadlockConfig({
        PADLOCK_PORT: '0',
        PADLOCK_SERVICES: JSON.stringify(services),
        PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'privacy-padlock-')),
        PADLOCK_CACHE_TTL_MS: String(CACHE_TTL_MS),
      }),
      { logger: silentLogger },
    );
    gcs = await startGcsEmulator();
    storage = createStorage({ projectId, apiEndpoint: gcs.url });
    await storage.createBucket(staging);
    await storage.createBucket(data);
    await provisionType(pubsub, type);
  });

  afterAll(async () => {
    await workers?.close();
    await eventService?.close();
    await pubsub.close();
    await gcs?.close();
    await padlock?.close();
  });

  it('delivers personal fields encrypted, and an entitled consumer decrypts them all', async () => {
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(type, [schema]), 0);
    eventService = await startEventService(
      withDefaults({ projectId, pubsubEmulatorHost: inject('pubsubHost'), gcsEndpoint: gcs.url, stagingBucket: staging, registryRefreshMs: 200, auditFlushMs: 200 }),
      { registry, pubsub, logger: silentLogger },
    );
    // erin signed up and was deleted before her events were processed: the ETL must null them.
    const admin = client('privacy');
    await admin.createKeychain('erin');
    await admin.deleteUser('erin');

    const events = [...users.flatMap((u) => [0, 1, 2].map((n) => payload(u, n))), payload('erin', 0)];
    sent.push(...events);
    const res = await fetch(`${eventService.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: events.map((p, i) => ({ type, id: `ev-${i}`, payload: p })) }),
    });
    const body = (await res.json()) as { accepted: number };
    expect(res.status).toBe(200);
    expect(body.accepted).toBe(events.length);
    period = periodOf(Date.now(), 'hourly');
    // A graceful stop writes the instance's final count: the hour may then close complete
    // (a live instance's hour stays open until its count is final, etl/completeness.ts).
    await eventService.close();

    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      eventTypes: [type],
      // The current hour is over for the ETL: it closes it as soon as it is complete.
      now: () => Date.now() + 2 * HOUR,
      tuning: { flushAgeMs: 200, closeCheckIntervalMs: 300, closeGraceMs: 100, registryPollMs: 500, backoffInitialMs: 50, backoffMaxMs: 500 },
      transform: createEncryptionTransform({ keys: client('etl'), logger: silentLogger }),
      logger: silentLogger,
    });
    expect(await waitUntil(async () => (await storage.bucket(data).file(successObjectName(type, period)).exists())[0], 60_000)).toBe(true);

    const source = gcsPartitionSource(storage, { bucket: data, prefix: partitionPrefix(type, period) });
    const { manifest, events: decrypted, stats } = await decryptPartition(source, new RecordDecryptor({ keys: client('analytics') }));
    expect(manifest.recordCount).toBe(events.length);
    // erin's 4 personal values (email, phone, ip, one contact email) were nulled and counted.
    expect(manifest.transformStats.nulledFields).toBe(4);
    expect(Object.values(manifest.deliveredSchemas)[0]).toMatchObject({ fields: expect.arrayContaining([expect.objectContaining({ name: 'email', default: null })]) });
    const byId = new Map(decrypted.map((e) => [e.eventId, e.payload as Payload]));
    events.forEach((p, i) => {
      const got = byId.get(`ev-${i}`);
      if (p.userId === 'erin') expect(got).toEqual({ ...p, email: null, phone: null, ip: null, contacts: [{ email: null, label: 'friend' }] });
      else expect(got).toEqual(p);
    });
    expect(stats.unreadable).toEqual({});

    // A service outside the `events` context sees the structure, not the values.
    const outsider = await decryptPartition(source, new RecordDecryptor({ keys: client('marketing') }));
    const sample = outsider.events.find((e) => (e.payload as Payload).userId === 'alice')!.payload as Record<string, unknown>;
    expect(sample.email).toMatchObject({ reason: 'not entitled', $encrypted: expect.any(String) });
    expect(sample.plan).toBeDefined();
    expect(outsider.stats.decrypted).toBe(0);
  });

  it('the CLI prints decrypted JSON lines and refuses an unclosed partition', async () => {
    const env = { ...process.env, ANALYTICS_SECRET: secrets.analytics };
    const args = ['--import', 'tsx', 'bin/decrypt.ts', `gs://${data}/${partitionPrefix(type, period)}`, '--padlock', padlock.url, '--service', 'analytics', '--secret-env', 'ANALYTICS_SECRET', '--storage-endpoint', gcs.url, '--project', projectId];
    const { stdout } = await run(process.execPath, args, { env });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { eventId: string; payload: Payload });
    expect(lines).toHaveLength(sent.length);
    expect(lines.find((l) => l.eventId === 'ev-0')!.payload).toEqual(sent[0]);

    // A local copy of the partition folder reads the same.
    const dir = mkdtempSync(path.join(tmpdir(), 'privacy-copy-'));
    const [files] = await storage.bucket(data).getFiles({ prefix: partitionPrefix(type, period) });
    for (const f of files) writeFileSync(path.join(dir, path.basename(f.name)), (await f.download())[0]);
    const local = await decryptPartition(localPartitionSource(dir), new RecordDecryptor({ keys: client('analytics') }));
    expect(local.events.length).toBe(sent.length);

    const open = periodOf(Date.now() + 5 * HOUR, 'hourly');
    const refused = await run(process.execPath, [...args.slice(0, 3), `gs://${data}/${partitionPrefix(type, open)}`, ...args.slice(4)], { env }).catch((e: { code: number; stderr: string }) => e);
    expect((refused as { code: number }).code).toBe(1);
    expect((refused as { stderr: string }).stderr).toMatch(/not closed/);
    const empty = mkdtempSync(path.join(tmpdir(), 'privacy-empty-'));
    mkdirSync(path.join(empty, 'x'));
    await expect(decryptPartition(localPartitionSource(empty), new RecordDecryptor({ keys: client('analytics') }))).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
  });

  it('shreds: a deleted user and an opted-out category become unreadable, everything else intact, no file rewritten', async () => {
    const [before] = await storage.bucket(data).getFiles({ prefix: `${type}/` });
    const generations = new Map(before.map((f) => [f.name, String(f.metadata.generation)]));
    const source = gcsPartitionSource(storage, { bucket: data, prefix: partitionPrefix(type, period) });
    // A long-lived consumer with a warm cache: deletion must still reach it within the bound.
    const consumer = new RecordDecryptor({ keys: client('analytics') });
    await decryptPartition(source, consumer);

    const admin = client('privacy');
    await admin.deleteUser('bob');
    await admin.deleteCategory('carol', 'network');

    const reason = (v: unknown): string | undefined => (v as EncryptedMarker | null)?.reason;
    let last: Awaited<ReturnType<typeof decryptPartition>> | undefined;
    const shredded = async (): Promise<boolean> => {
      last = await decryptPartition(source, consumer);
      return last.events.every((e) => {
        const p = e.payload as Record<string, unknown>;
        return p.userId === 'bob' ? reason(p.email) === 'key deleted' : p.userId === 'carol' ? reason(p.ip) === 'key deleted' : true;
      });
    };
    // Bound: padlock's cache TTL + the client's cache TTL (2 × CACHE_TTL_MS); polled with a generous ceiling.
    expect(await waitUntil(shredded, 10_000, 100)).toBe(true);

    for (const [i, p] of sent.entries()) {
      const got = last!.events.find((e) => e.eventId === `ev-${i}`)!.payload as Record<string, unknown>;
      if (p.userId === 'bob') {
        expect(reason(got.email)).toBe('key deleted');
        expect(reason(got.ip)).toBe('key deleted');
        expect(reason((got.contacts as Record<string, unknown>[])[0]!.email)).toBe('key deleted');
        if (p.phone !== null) expect(reason(got.phone)).toBe('key deleted');
        expect(got.plan).toBe(p.plan); // non-personal data stays
      } else if (p.userId === 'carol') {
        expect(reason(got.ip)).toBe('key deleted');
        expect(got.email).toBe(p.email); // other categories unaffected
        expect(got.phone).toBe(p.phone);
      } else if (p.userId !== 'erin') {
        expect(got).toEqual(p);
      }
    }
    const [after] = await storage.bucket(data).getFiles({ prefix: `${type}/` });
    expect(new Map(after.map((f) => [f.name, String(f.metadata.generation)]))).toEqual(generations);
  });

  it('no object in any bucket holds a plaintext personal value (raw bytes and decompressed Avro blocks)', async () => {
    const secretsToFind = sent.flatMap((p) => [p.email, p.ip, p.contacts[0]!.email, ...(p.phone === null ? [] : [p.phone])]);
    expect(secretsToFind.length).toBeGreaterThan(40);
    let objects = 0;
    for (const bucket of [data, staging]) {
      const [files] = await storage.bucket(bucket).getFiles();
      for (const f of files) {
        const [bytes] = await f.download();
        objects++;
        const views = [bytes];
        if (bytes.subarray(0, 4).toString('latin1') === 'Obj\u0001') views.push(...readContainer(bytes).blocks.map((b) => b.data));
        if (f.name.endsWith('_SUCCESS')) expect(() => parseManifest(bytes.toString('utf8'))).not.toThrow();
        for (const view of views) {
          for (const secret of secretsToFind) {
            if (view.includes(Buffer.from(secret, 'utf8'))) throw new Error(`${bucket}/${f.name} holds a plaintext value (sha256 ${createHash('sha256').update(secret).digest('hex').slice(0, 8)})`);
          }
        }
      }
    }
    expect(objects).toBeGreaterThan(0);
    // The subject id stays in clear by design: the search would find it.
    const [parts] = await storage.bucket(data).getFiles({ prefix: partitionPrefix(type, period) });
    const part = parts.find((f) => f.name.endsWith('.avro'))!;
    const blocks = readContainer((await part.download())[0]).blocks.map((b) => b.data);
    expect(blocks.some((b) => b.includes(Buffer.from('alice')))).toBe(true);
  });
});
