/**
 * Issue 19, replay: events of a schema version the registry does not know yet
 * are dead-lettered by a real ETL (Pub/Sub emulator, GCS emulator); the
 * version is registered; `composer replay <type> --dead-letters` re-publishes
 * them; each accepted event is then delivered exactly once: the still-open
 * hour closes complete with them, the hour that had closed at its deadline
 * gets them in its late location, and the two events that had been delivered
 * already (a producer retry with the old version) are not delivered again.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ETL_DEAD_LETTER_ATTRIBUTES } from '../../composer/replay/dead-letters.ts';
import { runCli } from '../../composer/cli.ts';
import { deadLetterAttributes } from '../../etl/pipeline.ts';
import { eventTypeRecord, makeEvents, pageViewSchema, pageViewSchemaV2, provisionType, publishEvents, readPartition, waitUntil, writeAudit, type TestEvent } from '../support/etl.ts';
import { startEtlWorkers, type EtlWorkers } from '../../etl/workers.ts';
import { decodeRecords, readContainer } from '../../lib/avro/container.ts';
import { avroType } from '../../lib/avro/long.ts';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { silentLogger } from '../../lib/logger.ts';
import { latePrefix, periodOf, successObjectName } from '../../lib/partitions.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { uniqueName } from '../support/names.ts';

const HOUR = 3_600_000;

describe('replay of dead letters', () => {
  const projectId = inject('projectId');
  const pubsubHost = inject('pubsubHost');
  const pubsub = createPubSub({ projectId, emulatorHost: pubsubHost });
  const storage = createStorage({ projectId, apiEndpoint: inject('gcsUrl') });
  const staging = uniqueName('replay', 'staging');
  const data = uniqueName('replay', 'data');
  const registryDir = mkdtempSync(path.join(tmpdir(), 'replay-registry-'));
  const registry = new FileRegistryStore(registryDir);
  let workers: EtlWorkers | undefined;

  beforeAll(async () => {
    await storage.createBucket(staging);
    await storage.createBucket(data);
  });
  afterAll(async () => {
    await workers?.close();
    await pubsub.close();
  });

  /** `npm run composer -- replay …` in process: its exit code and output. */
  async function composer(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { PUBSUB_EMULATOR_HOST: pubsubHost, GCP_PROJECT: projectId, REGISTRY_DIR: registryDir }, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  }

  /** Every id delivered for `period`: the closed partition's records, then its late files'. */
  async function deliveredIds(type: string, period: ReturnType<typeof periodOf>): Promise<string[]> {
    const ids = (await readPartition(storage, data, type, period))!.records.map((r) => r.eventId);
    const [late] = await storage.bucket(data).getFiles({ prefix: latePrefix(type, period) });
    for (const f of late.filter((o) => o.name.endsWith('.avro'))) {
      const [bytes] = await f.download();
      const contents = readContainer(bytes);
      const t = avroType(contents.schema);
      ids.push(...decodeRecords(contents, (b, p) => t.decode(b, p) as { value: { eventId: string }; offset: number }).map((r) => r.eventId));
    }
    return ids;
  }

  it('the ETL and the replay agree on the dead-letter attributes', () => {
    expect([...ETL_DEAD_LETTER_ATTRIBUTES].sort()).toEqual(Object.values(deadLetterAttributes).sort());
  });

  it('re-publishes dead letters after the version is registered; each event is delivered exactly once', async () => {
    const type = uniqueName('replay', 'pv').replace(/-/g, '_');
    const v1Only = eventTypeRecord(type, [pageViewSchema], { priority: 'high' });
    await registry.putEventType(v1Only, 0);
    const { topic } = await provisionType(pubsub, type);

    // `closed`: 5 h ago, past the (3 h) deadline, closes before the replay. `open`: 2 h ago, waits for its events.
    const closed = periodOf(Date.now() - 5 * HOUR, 'hourly');
    const open = periodOf(Date.now() - 2 * HOUR, 'hourly');
    const at = (p: typeof open) => (i: number) => p.startMs + 1000 + i * 1000;
    const withReferrer = (events: TestEvent[]): TestEvent[] => events.map((e) => ({ ...e, payload: { ...e.payload, referrer: 'r' } }));
    const openV1 = makeEvents(5, at(open), 'open-v1');
    const openV2 = withReferrer(makeEvents(6, at(open), 'open-v2'));
    const closedV1 = makeEvents(2, at(closed), 'closed-v1');
    const closedV2 = withReferrer(makeEvents(4, at(closed), 'closed-v2'));
    // A producer retry: the same event sent with the old version (delivered) and the new one (dead-lettered).
    const retriedOpen = makeEvents(1, at(open), 'open-retried');
    const retriedClosed = makeEvents(1, at(closed), 'closed-retried');
    const accepted = [...openV1, ...openV2, ...closedV1, ...closedV2, ...retriedOpen, ...retriedClosed];
    await writeAudit(storage, staging, type, accepted);
    await publishEvents(topic, type, pageViewSchema, [...openV1, ...closedV1, ...retriedOpen, ...retriedClosed]);
    await publishEvents(topic, type, pageViewSchemaV2, [...openV2, ...closedV2, ...withReferrer([...retriedOpen, ...retriedClosed])]);

    workers = await startEtlWorkers({
      projectId,
      pubsub,
      storage,
      stagingBucket: staging,
      dataBucket: data,
      registry,
      closeEnabled: false,
      tuning: { flushAgeMs: 200, closeGraceMs: 500, closeDeadlineMs: { high: 3 * HOUR, normal: 24 * HOUR, low: 72 * HOUR }, registryPollMs: 500, decodeAttempts: 2, schemaRefreshMinMs: 100 },
      logger: silentLogger,
    });
    const stats = () => workers!.stats()[type];
    expect(await waitUntil(() => stats()?.acked === 9 && stats()?.deadLettered === 12, 60_000)).toBe(true);

    // The old hour closes at its deadline without the dead-lettered events; the recent one stays open.
    const pipeline = workers.pipeline(type)!;
    await pipeline.runCloser();
    const closedManifest = (await readPartition(storage, data, type, closed))!.manifest;
    expect(closedManifest).toMatchObject({ closedBy: 'deadline', recordCount: 3, audit: { accepted: 7, delivered: 3 } });
    expect((await storage.bucket(data).file(successObjectName(type, open)).exists())[0]).toBe(false);

    // Before the fix, a dry run classifies them and changes nothing; --since in the future selects none.
    const dry = await composer('replay', type, '--dead-letters', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out[0]).toBe(`${type}: 12 dead letter(s) pulled; 12 would be replayed to events-${type} (dry run: nothing published or acknowledged)`);
    expect(dry.out).toContain('  DECODE_FAILED: 12');
    const future = await composer('replay', type, '--dead-letters', '--since', new Date(Date.now() + HOUR).toISOString());
    expect(future.code).toBe(0);
    expect(future.out[0]).toBe(`${type}: 12 dead letter(s) pulled; 0 replayed to events-${type}`);

    // The cause is fixed: version 2 registered. Then the replay.
    await registry.putEventType({ ...eventTypeRecord(type, [pageViewSchema, pageViewSchemaV2], { priority: 'high' }), revision: 1 }, (await registry.getEventType(type))!.revision);
    const replay = await composer('replay', type, '--dead-letters');
    expect(replay.err).toEqual([]);
    expect(replay.code).toBe(0);
    expect(replay.out[0]).toBe(`${type}: 12 dead letter(s) pulled; 12 replayed to events-${type}`);

    // The ETL stages the open hour's (4 of them: ids it holds once), writes the closed hour's to its late location.
    expect(await waitUntil(() => stats()?.acked === 9 + 12, 60_000)).toBe(true);
    expect(stats()?.deadLettered).toBe(12);
    await pipeline.runCloser();
    const openPartition = (await readPartition(storage, data, type, open))!;
    expect(openPartition.manifest).toMatchObject({ closedBy: 'complete', recordCount: 12, audit: { accepted: 12, delivered: 12, complete: true } });
    expect(openPartition.manifest.audit.duplicatesDropped).toBeGreaterThanOrEqual(1);
    expect(stats()?.lateDuplicatesDropped).toBe(1);

    // Exactly once: every accepted id in exactly one place, none twice, none extra.
    const delivered = [...(await deliveredIds(type, open)), ...(await deliveredIds(type, closed))].sort();
    expect(delivered).toEqual(accepted.map((e) => e.eventId).sort());
    // The replayed open-hour events carry their version 2 payload.
    const referrers = new Map(openPartition.records.map((r) => [r.eventId, r.payload.referrer]));
    for (const e of openV2) expect(referrers.get(e.eventId)).toBe('r');

    // Replayed dead letters were acknowledged: a second run finds none.
    const again = await composer('replay', type, '--dead-letters');
    expect(again.out[0]).toBe(`${type}: 0 dead letter(s) pulled; 0 replayed to events-${type}`);
    await workers.close();
    workers = undefined;
  });

  it('--hour re-closes an hour that never closed from its staged files, and refuses one that closed', async () => {
    const type = uniqueName('replay', 'hr').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [pageViewSchema]), 0);
    const { topic } = await provisionType(pubsub, type);
    const hour = periodOf(Date.now() - 2 * HOUR, 'hourly');
    const staged = makeEvents(7, (i) => hour.startMs + i * 1000, 'hr');
    // Three accepted events never arrive: no worker would close this hour before its 24 h deadline.
    await writeAudit(storage, staging, type, [...staged, ...makeEvents(3, (i) => hour.startMs + i, 'hr-lost')]);
    await publishEvents(topic, type, pageViewSchema, staged);
    const etl = await startEtlWorkers({ projectId, pubsub, storage, stagingBucket: staging, dataBucket: data, registry, eventTypes: [type], closeEnabled: false, tuning: { flushAgeMs: 200 }, logger: silentLogger });
    try {
      expect(await waitUntil(() => etl.stats()[type]?.acked === staged.length, 30_000)).toBe(true);
    } finally {
      await etl.close();
    }
    const env = { GCS_ENDPOINT: inject('gcsUrl'), STAGING_BUCKET: staging, DATA_BUCKET: data };
    const hourArg = new Date(hour.startMs).toISOString().slice(0, 13);
    const withEtlEnv = async (...argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(argv, { PUBSUB_EMULATOR_HOST: pubsubHost, GCP_PROJECT: projectId, REGISTRY_DIR: registryDir, ...env }, { out: (l) => out.push(l), err: (l) => err.push(l) });
      return { code, out, err };
    };

    const current = await withEtlEnv('replay', type, '--hour', new Date().toISOString().slice(0, 13));
    expect(current.code).toBe(1);
    expect(current.err.join('\n')).toMatch(/CONFLICT: .* is not over yet/);

    const closedNow = await withEtlEnv('replay', type, '--hour', hourArg);
    expect(closedNow.err).toEqual([]);
    expect(closedNow).toMatchObject({ code: 0, out: [`${type}: ${hour.key} closed at deadline (incomplete), 7 record(s) (10 accepted)`] });
    const partition = (await readPartition(storage, data, type, hour))!;
    expect(partition.manifest).toMatchObject({ closedBy: 'deadline', recordCount: 7, audit: { accepted: 10, delivered: 7 } });
    expect(partition.records.map((r) => r.eventId).sort()).toEqual(staged.map((e) => e.eventId).sort());

    const again = await withEtlEnv('replay', type, '--hour', hourArg);
    expect(again.code).toBe(1);
    expect(again.err.join('\n')).toContain(`CONFLICT: ${type} ${hour.key} already closed`);

    const bad = await withEtlEnv('replay', type, '--hour', '2026-11-30 14');
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toContain('--hour 2026-11-30 14: expected YYYY-MM-DDTHH (UTC)');
  });

  it('acknowledges a dead letter only after its re-publish succeeded: a failing publish leaves every one dead-lettered', async () => {
    const type = uniqueName('replay', 'nf').replace(/-/g, '_');
    await registry.putEventType(eventTypeRecord(type, [pageViewSchema]), 0);
    await provisionType(pubsub, type);
    // Three dead letters as the ETL writes them, then the type's topic is gone: every re-publish fails.
    const deadLetters = pubsub.topic(`events-${type}-dead-letter`);
    for (const e of makeEvents(3, () => Date.now() - HOUR, 'nf')) {
      await deadLetters.publishMessage({
        data: Buffer.from('x'),
        attributes: { eventType: type, eventId: e.eventId, receiveTime: new Date(e.receiveTime).toISOString(), schemaFingerprint: 'f', etlErrorCode: 'DECODE_FAILED', etlDeadLetterReason: 'unknown schema fingerprint' },
      });
    }
    await pubsub.topic(`events-${type}`).delete();
    const failed = await composer('replay', type, '--dead-letters');
    expect(failed.code).toBe(3);
    expect(failed.err.join('\n')).toMatch(/^PUBLISH_FAILED: re-publishing to events-.* failed after 0 replayed/);
    const dry = await composer('replay', type, '--dead-letters', '--dry-run');
    expect(dry.out[0]).toBe(`${type}: 3 dead letter(s) pulled; 3 would be replayed to events-${type} (dry run: nothing published or acknowledged)`);
  });

  it('names an unknown type and a bad option', async () => {
    const unknown = await composer('replay', 'no_such_type', '--dead-letters');
    expect(unknown).toMatchObject({ code: 1, err: ['EVENT_TYPE_NOT_FOUND: event type no_such_type is not registered'] });
    const bad = await composer('replay', 'no_such_type', '--dead-letters', '--limit', '0');
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toContain('--limit 0: expected a whole number from 1 to 1000000');
  });
});
