/**
 * The shred report, end to end (issue 19): a user with encrypted data in 3
 * event types over 2 hours, another user alongside, through the real Pub/Sub
 * emulator, the real ETL encrypting with keys from a real padlock, closed
 * partitions (with their subject index) in the GCS emulator. The report,
 * before the user's deletion, lists every partition, type and field with
 * their data (checked against what was sent: no false negatives) and shows
 * the values decrypt; after the deletion, the same values, ciphertexts still
 * in the files byte for byte, no longer decrypt (padlock: deleted). An index
 * hit without the user's records (a simulated hash collision) is verified
 * away. The other user's data still decrypts. CLI and HTTP endpoint give the
 * library's report.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { silentLogger } from '../../lib/logger.ts';
import { resourceNames } from '../../lib/names.ts';
import { injectFault, listFaults, removeFault } from '../../emulators/gcs/admin-client.ts';
import { createPadlockClient, type PadlockClient } from '../../lib/padlock-client/index.ts';
import { lateCounterObjectName, partitionPrefix, periodOf, subjectIndexObjectName, successObjectName, type Period } from '../../lib/partitions.ts';
import { decryptPartition } from '../../lib/privacy/consumer.ts';
import { RecordDecryptor } from '../../lib/privacy/decryptor.ts';
import { gcsPartitionSource } from '../../lib/privacy/partition-reader.ts';
import { parseSubjectIndex, serializeSubjectIndex, subjectHash, SubjectIndexBuilder } from '../../lib/privacy/subject-index.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../../lib/registry/types.ts';
import { createEncryptionTransform } from '../../etl/encryption-transform.ts';
import { eventTypeRecord, provisionType, publishEvents, waitUntil, writeAudit, type TestEvent } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { loadConfig as loadPadlockConfig } from '../../functions/padlock/config.ts';
import { startPadlock, type RunningPadlock } from '../../functions/padlock/server.ts';
import { serviceEntry } from '../../functions/padlock/services.ts';
import { loadConfig as loadComposerConfig, startComposer, type RunningComposer } from '../../composer/index.ts';
import { shredReport, type ShredReport } from '../../composer/shred-report/report.ts';
import { uniqueName } from '../support/names.ts';

const run = promisify(execFile);
const HOUR = 3_600_000;
/** Padlock's and the clients' key caches: a deletion reaches every reader within their sum. */
const CACHE_TTL_MS = 300;
const secrets = { etl: 'etl-secret-shred-0123456789abcdef', analytics: 'analytics-secret-shred-0123456789', privacy: 'privacy-secret-shred-0123456789ab' };

const signUp: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'phone', type: ['null', 'string'], default: null, semanticType: 'phoneNumber' },
    { name: 'contacts', type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }, { name: 'label', type: 'string' }] } } },
    { name: 'plan', type: 'string' },
  ],
};
const visit: AvroSchemaJson = {
  type: 'record',
  name: 'Visit',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'ip', type: 'string', semanticType: 'ipAddress' },
    { name: 'device', type: ['null', 'string'], default: null, semanticType: 'deviceId' },
    { name: 'url', type: 'string' },
  ],
};
const note: AvroSchemaJson = {
  type: 'record',
  name: 'Note',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'text', type: 'string', semanticType: 'freeText' },
  ],
};

const TARGET = 'shred-target-7';
/** A regex of an object name as it appears in a request path, `/` and `=` encoded or not. */
const encodedObjectPath = (name: string): string =>
  name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\//g, '(?:/|%2F)').replace(/=/g, '(?:=|%3D)');
const OTHER = 'shred-other-3';

describe('shred report', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  const gcsUrl = inject('gcsUrl');
  const storage: Storage = createStorage({ projectId, apiEndpoint: gcsUrl });
  const staging = uniqueName('shred', 'staging');
  const data = uniqueName('shred', 'data');
  const suffix = uniqueName('s').replace(/-/g, '_');
  const types = { signUp: `signup_${suffix}`, visit: `visit_${suffix}`, note: `note_${suffix}` };
  const schemaOf = new Map([
    [types.signUp, signUp],
    [types.visit, visit],
    [types.note, note],
  ]);
  const now = Date.now();
  const h0 = periodOf(now - 4 * HOUR, 'hourly');
  const h1 = periodOf(now - 3 * HOUR, 'hourly');
  const h2 = periodOf(now - 2 * HOUR, 'hourly');
  let padlock: RunningPadlock;
  let workers: EtlWorkers | undefined;
  let composer: RunningComposer | undefined;
  const client = (service: keyof typeof secrets): PadlockClient => createPadlockClient({ url: padlock.url, service, secret: secrets[service], cacheTtlMs: CACHE_TTL_MS });
  /** Type → events sent (on time, then late). */
  const sent = new Map<string, TestEvent[]>();
  let seq = 0;
  const event = (at: Period, payload: Record<string, unknown>): TestEvent => ({ eventId: `ev-${String(seq++).padStart(5, '0')}`, receiveTime: at.startMs + 60_000 + seq * 1000, payload });

  const report = (userId: string): Promise<ShredReport> => shredReport({ storage, dataBucket: data, keys: client('privacy'), userId });

  beforeAll(async () => {
    padlock = await startPadlock(
      loadPadlockConfig({
        PADLOCK_PORT: '0',
        PADLOCK_SERVICES: JSON.stringify([
          serviceEntry('etl', secrets.etl, { contexts: ['events'] }),
          serviceEntry('analytics', secrets.analytics, { contexts: ['events'] }),
          // The privacy service deletes users and checks, with the key context's keys, what still decrypts.
          serviceEntry('privacy', secrets.privacy, { admin: true, contexts: ['events'] }),
        ]),
        PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'shred-padlock-')),
        PADLOCK_CACHE_TTL_MS: String(CACHE_TTL_MS),
      }),
      { logger: silentLogger },
    );
    await storage.createBucket(staging);
    await storage.createBucket(data);
    const registry = new MemoryRegistryStore();
    for (const [type, schema] of schemaOf) {
      await registry.putEventType(eventTypeRecord(type, [schema]), 0);
    }
    const other = (at: Period, n: number) => ({
      signUp: event(at, { userId: OTHER, email: `other.${n}@mail.example`, phone: `+46-${n}`, contacts: [{ email: `o-friend-${n}@mail.example`, label: 'friend' }], plan: 'free' }),
      visit: event(at, { userId: OTHER, ip: `198.51.100.${n}`, device: null, url: '/o' }),
      note: event(at, { userId: OTHER, text: `other note ${n}` }),
    });
    sent.set(types.signUp, [
      event(h1, { userId: TARGET, email: 't.1@mail.example', phone: null, contacts: [{ email: 'a@mail.example', label: 'x' }, { email: 'b@mail.example', label: 'y' }], plan: 'pro' }),
      other(h1, 1).signUp,
      event(h2, { userId: TARGET, email: 't.2@mail.example', phone: '+46-7', contacts: [], plan: 'pro' }),
      other(h2, 2).signUp,
    ]);
    sent.set(types.visit, [
      event(h1, { userId: TARGET, ip: '203.0.113.7', device: 'dev-7', url: '/a' }),
      event(h1, { userId: TARGET, ip: '203.0.113.8', device: null, url: '/b' }),
      other(h1, 3).visit,
      event(h2, { userId: TARGET, ip: '203.0.113.9', device: 'dev-7', url: '/c' }),
      other(h2, 4).visit,
    ]);
    // The note type's first two hours hold only the other user.
    sent.set(types.note, [other(h0, 0).note, other(h1, 5).note, event(h2, { userId: TARGET, text: 'my secret note' }), other(h2, 6).note]);
    for (const [type, events] of sent) {
      const { topic } = await provisionType(pubsub, type);
      await writeAudit(storage, staging, type, events);
      await publishEvents(topic, type, schemaOf.get(type)!, events);
    }
    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      eventTypes: [...schemaOf.keys()],
      tuning: { flushAgeMs: 200, closeCheckIntervalMs: 300, closeGraceMs: 100, registryPollMs: 500, backoffInitialMs: 50, backoffMaxMs: 500 },
      transform: createEncryptionTransform({ keys: client('etl'), logger: silentLogger }),
      logger: silentLogger,
    });
    const closed = async (): Promise<boolean> => {
      const partitions: [string, Period][] = [...schemaOf.keys()].flatMap((type) => [h1, h2].map((p): [string, Period] => [type, p]));
      for (const [type, p] of [...partitions, [types.note, h0] as [string, Period]]) {
        if (!(await storage.bucket(data).file(successObjectName(type, p)).exists())[0]) return false;
      }
      return true;
    };
    expect(await waitUntil(closed, 90_000)).toBe(true);

    // A late event of the target for a closed partition: it lands in the late location, which the report reads too.
    const late = event(h1, { userId: TARGET, email: 't.late@mail.example', phone: '+46-8', contacts: [], plan: 'pro' });
    sent.get(types.signUp)!.push(late);
    await publishEvents(pubsub.topic(resourceNames.topic(types.signUp)), types.signUp, signUp, [late]);
    expect(await waitUntil(async () => (await storage.bucket(data).file(lateCounterObjectName(types.signUp, h1)).exists())[0], 60_000)).toBe(true);
    await workers.close();
    workers = undefined;

    // A hash collision, simulated: the note type's first hour (only the other user) gets an index naming the target too.
    const indexName = subjectIndexObjectName(types.note, h1);
    const [bytes] = await storage.bucket(data).file(indexName).download();
    const index = parseSubjectIndex(bytes);
    expect(index.subjects.map(([h]) => h)).toEqual([subjectHash(OTHER)]);
    const forged = new SubjectIndexBuilder(index.eventType, index.period);
    for (const f of index.files) forged.addFile(f);
    forged.addHashed(subjectHash(OTHER), index.fields[0]!, index.subjects[0]![1][0]!);
    forged.addHashed(subjectHash(TARGET), index.fields[0]!, 1);
    await storage.bucket(data).file(indexName).save(serializeSubjectIndex(forged.build()), { resumable: false });
  }, 240_000);

  afterAll(async () => {
    await workers?.close();
    await composer?.close();
    await pubsub.close();
    await padlock?.close();
  });

  /** What was sent: `type period source schemaPath` → the target's non-null personal values. */
  const expectedValues = (userId: string): Map<string, number> => {
    const out = new Map<string, number>();
    const add = (key: string, n: number): void => {
      if (n > 0) out.set(key, (out.get(key) ?? 0) + n);
    };
    for (const [type, events] of sent) {
      events.forEach((e, i) => {
        if (e.payload.userId !== userId) return;
        const period = periodOf(e.receiveTime, 'hourly').key;
        // The last signUp event of the target was sent after its hour closed.
        const source = type === types.signUp && i === events.length - 1 && userId === TARGET ? 'late' : 'part';
        const k = (p: string): string => `${type} ${period} ${source} ${p}`;
        const p = e.payload as Record<string, unknown>;
        if (type === types.signUp) {
          add(k('email'), 1);
          add(k('phone'), p.phone === null ? 0 : 1);
          add(k('contacts[].email'), (p.contacts as unknown[]).length);
        } else if (type === types.visit) {
          add(k('ip'), 1);
          add(k('device'), p.device === null ? 0 : 1);
        } else {
          add(k('text'), 1);
        }
      });
    }
    return out;
  };

  const listed = (r: ShredReport): Map<string, number> => {
    const out = new Map<string, number>();
    for (const p of r.partitions) for (const f of p.fields) out.set(`${p.eventType} ${p.period} ${p.source} ${f.schemaPath}`, f.values);
    return out;
  };

  let before: ShredReport;
  let objectsBefore: Map<string, string>;

  const objects = async (): Promise<Map<string, string>> => {
    const [files] = await storage.bucket(data).getFiles();
    return new Map(files.map((f) => [f.name, `${String(f.metadata.generation)}:${String(f.metadata.md5Hash)}`]));
  };

  it('before deletion: lists every partition, type and field with the user’s data, and every value decrypts', async () => {
    // Count, at the storage emulator, the part-file downloads of each partition while the report runs.
    const counted = new Map<string, string>();
    for (const type of schemaOf.keys()) {
      for (const p of type === types.note ? [h0, h1, h2] : [h1, h2]) {
        const id = await injectFault(gcsUrl, { methods: ['GET'], path: `/b/${data}/o/${encodedObjectPath(partitionPrefix(type, p))}part-[^?]*\\?.*alt=media`, latencyMs: 0 });
        counted.set(`${type} ${p.key}`, id);
      }
    }
    try {
      before = await report(TARGET);
    } finally {
      const fired = new Map((await listFaults(gcsUrl)).map((r) => [r.id, r.fired]));
      for (const id of counted.values()) await removeFault(gcsUrl, id);
      // Only the partitions whose index names the user are read (the forged hit included), never the rest.
      const read = [...counted].filter(([, id]) => (fired.get(id) ?? 0) > 0).map(([k]) => k);
      expect(new Set(read)).toEqual(
        new Set([`${types.signUp} ${h1.key}`, `${types.signUp} ${h2.key}`, `${types.visit} ${h1.key}`, `${types.visit} ${h2.key}`, `${types.note} ${h1.key}`, `${types.note} ${h2.key}`]),
      );
    }
    // No false negatives, no extra entries: exactly what was sent, per partition, source and field.
    expect(listed(before)).toEqual(expectedValues(TARGET));
    expect(new Set(before.partitions.map((p) => `${p.eventType} ${p.period}`))).toEqual(
      new Set([`${types.signUp} ${h1.key}`, `${types.signUp} ${h2.key}`, `${types.visit} ${h1.key}`, `${types.visit} ${h2.key}`, `${types.note} ${h2.key}`]),
    );
    // The index agrees with the files for every part-file field.
    for (const p of before.partitions.filter((x) => x.source === 'part')) for (const f of p.fields) expect(f.indexed, `${p.eventType} ${p.period} ${f.schemaPath}`).toBe(f.values);
    // The forged index hit is read and verified away.
    expect(before.falsePositives).toEqual([{ eventType: types.note, period: h1.key }]);
    expect(before.unindexed).toEqual([]);
    expect(before.closedPartitions).toBe(7);
    expect(before.indexesRead).toBe(7);
    expect(before.lateFilesRead).toBe(1);
    expect(before.totals.values).toBe([...expectedValues(TARGET).values()].reduce((a, b) => a + b, 0));
    expect(before.totals.decrypts).toBe(before.totals.values);
    expect(before.verdict).toBe('readable');
    expect(before.keys.map((k) => `${k.category}:${k.status}`).sort()).toEqual(['contact:found', 'content:found', 'device:found', 'network:found']);
    // Counts only: no plaintext in the report.
    const text = JSON.stringify(before);
    for (const secret of ['t.1@mail.example', 'my secret note', '203.0.113.7', TARGET]) expect(text).not.toContain(secret);
    objectsBefore = await objects();
  });

  it('after deletion: the same values are still in the files, none decrypts (padlock: deleted); the other user’s still do', async () => {
    await client('privacy').deleteUser(TARGET);
    await new Promise((r) => setTimeout(r, 3 * CACHE_TTL_MS));
    const after = await report(TARGET);
    expect(listed(after)).toEqual(listed(before));
    expect(after.totals.values).toBe(before.totals.values);
    expect(after.totals.decrypts).toBe(0);
    for (const p of after.partitions) for (const f of p.fields) expect(f.undecryptable).toEqual({ 'key deleted': f.values });
    expect(after.keys.every((k) => k.status === 'deleted')).toBe(true);
    expect(after.falsePositives).toEqual([{ eventType: types.note, period: h1.key }]);
    expect(after.verdict).toBe('shredded');
    // Nothing was rewritten: every object has the generation and bytes it had.
    expect(await objects()).toEqual(objectsBefore);

    const other = await report(OTHER);
    expect(listed(other)).toEqual(expectedValues(OTHER));
    expect(other.totals.values).toBeGreaterThan(0);
    expect(other.totals.decrypts).toBe(other.totals.values);
    expect(other.verdict).toBe('readable');
    // And a consumer reads the other user's values in clear, the target's not.
    const source = gcsPartitionSource(storage, { bucket: data, prefix: partitionPrefix(types.signUp, h2) });
    const { events } = await decryptPartition(source, new RecordDecryptor({ keys: client('analytics') }));
    const byUser = new Map(events.map((e) => [(e.payload as { userId: string }).userId, e.payload as Record<string, unknown>]));
    expect(byUser.get(OTHER)?.email).toBe('other.2@mail.example');
    expect(byUser.get(TARGET)?.email).toMatchObject({ reason: 'key deleted' });
  });

  it('the CLI prints the same report, and refuses bad usage with exit 2', async () => {
    const cli = ['--import', 'tsx', 'composer/main.ts', 'shred-report'];
    const opts = ['--padlock', padlock.url, '--service', 'privacy', '--secret-env', 'PRIVACY_SECRET', '--data-bucket', data, '--storage-endpoint', gcsUrl, '--project', projectId];
    const env = { ...process.env, PRIVACY_SECRET: secrets.privacy };
    const { stdout } = await run(process.execPath, [...cli, TARGET, ...opts, '--json'], { env });
    const printed = JSON.parse(stdout) as ShredReport;
    expect(printed).toEqual(await report(TARGET));
    const text = await run(process.execPath, [...cli, TARGET, ...opts], { env });
    expect(text.stdout).toContain('shredded');
    expect(text.stdout).toContain(`${types.note} ${h2.key}: 1 record(s)`);
    const help = await run(process.execPath, [...cli, '--help'], { env });
    expect(help.stdout).toContain('usage: npm run composer -- shred-report <userId>');
    const bad = await run(process.execPath, [...cli, TARGET, ...opts, '--bogus'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--bogus');
  });

  it('the composer endpoint serves the report to the privacy team only', async () => {
    composer = await startComposer(
      loadComposerConfig({
        COMPOSER_PORT: '0',
        GCP_PROJECT: projectId,
        PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
        REGISTRY_DIR: mkdtempSync(path.join(tmpdir(), 'shred-registry-')),
        COMPOSER_TOKENS: 'tok-privacy=privacy,tok-web=web',
      }),
      { logger: silentLogger, shredReport: { team: 'privacy', report } },
    );
    const post = async (token: string, body: unknown) => {
      const res = await fetch(`${composer!.url}/v1/shred-reports`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const ok = await post('tok-privacy', { userId: TARGET });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual(JSON.parse(JSON.stringify(await report(TARGET))));
    expect(ok.body.verdict).toBe('shredded');
    expect((await post('tok-web', { userId: TARGET })).status).toBe(403);
    const bad = await post('tok-privacy', { userId: '' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('BODY_INVALID');
    expect((await post('tok-privacy', {})).status).toBe(400);
    // One report at a time: a second request meanwhile is refused with 429 and Retry-After.
    const both = await Promise.all([post('tok-privacy', { userId: TARGET }), post('tok-privacy', { userId: OTHER })]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 429]);
    expect(both.find((r) => r.status === 429)!.body.code).toBe('OVERLOADED');
  });

  it('cannot speak for a closed partition without a usable index: lists it and says unproven', async () => {
    await storage.bucket(data).file(subjectIndexObjectName(types.note, h0)).delete();
    await storage.bucket(data).file(subjectIndexObjectName(types.note, h1)).save('{"formatVersion":1}', { resumable: false });
    const r = await report(TARGET);
    expect(r.unindexed).toEqual([
      { eventType: types.note, period: h0.key, reason: 'no index' },
      { eventType: types.note, period: h1.key, reason: 'index unreadable' },
    ]);
    expect(r.falsePositives).toEqual([]);
    expect(r.totals.decrypts).toBe(0);
    expect(r.verdict).toBe('unproven');
  });
});
