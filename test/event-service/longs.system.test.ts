/**
 * Avro longs over the full 64-bit range through the event service, JSON and
 * single-object, into a Pub/Sub topic that validates the Avro schema (as the
 * composer provisions it), checked bit for bit with an independent Avro
 * implementation: python3-avro encodes the single-object datums and decodes
 * every published message.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message, PubSub, Subscription } from '@google-cloud/pubsub';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { fingerprintToSingleObjectBytes, schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { resourceNames } from '../../lib/names.ts';
import { silentLogger } from '../../lib/logger.ts';
import { sleep } from '../../emulators/google/process.ts';
import { MemoryAuditSink } from '../../functions/event-service/audit.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { eventTypeRecord } from '../support/event-service.ts';
import { startEventService, type IngestResponse, type RunningEventService } from '../../functions/event-service/server.ts';
import { toSingleObject } from '../../functions/event-service/single-object.ts';
import { uniqueName } from '../support/names.ts';
import { exactInt, pythonAvro, pythonAvroAvailable } from '../support/python-avro.ts';

const projectId = inject('projectId');
const available = pythonAvroAvailable();
if (!available) console.warn('SKIPPED event-service-longs: python3-avro is not installed (`apt-get install -y python3-avro`).');

const TYPE = uniqueName('es-longs').replace(/-/g, '_');
const schema = {
  type: 'record',
  name: 'LongProbe',
  namespace: 'test.longs',
  fields: [
    { name: 'n', type: 'long' },
    { name: 'maybe', type: ['null', 'long'] },
    { name: 'list', type: { type: 'array', items: 'long' } },
  ],
};
// Schema evolution long -> double (a promotion Avro allows): version 1 writes a long, version 2 reads a double.
const PROMOTED = uniqueName('es-longs-promoted').replace(/-/g, '_');
const promotedV1 = { type: 'record', name: 'Promoted', fields: [{ name: 'n', type: 'long' }] };
const promotedV2 = { type: 'record', name: 'Promoted', fields: [{ name: 'n', type: 'double' }] };

const extremes: bigint[] = [2n ** 63n - 1n, -(2n ** 63n) + 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n), -(2n ** 52n) - 1n, 2n ** 52n + 1n, 0n, -1n];

/** The JSON form of a long the README documents: a number when safe, else a decimal string. */
const jsonLong = (n: bigint): number | string => (n >= -(2n ** 53n - 1n) && n <= 2n ** 53n - 1n ? Number(n) : n.toString());

describe.skipIf(!available)('event service: exact 64-bit longs, JSON and single-object, read back by python3-avro', () => {
  let pubsub: PubSub;
  let service: RunningEventService;
  let sub: Subscription;
  let promotedSub: Subscription;
  const messages: Message[] = [];

  beforeAll(async () => {
    pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    const schemaName = uniqueName('es-longs', 'schema');
    await pubsub.createSchema(schemaName, 'AVRO', JSON.stringify(schema));
    const [topic] = await pubsub.createTopic({
      name: resourceNames.topic(TYPE),
      schemaSettings: { schema: `projects/${projectId}/schemas/${schemaName}`, encoding: 'BINARY' },
    });
    [sub] = await topic.createSubscription(uniqueName('es-longs', 'sub'));
    sub.on('message', (m: Message) => {
      m.ack();
      messages.push(m);
    });
    sub.on('error', () => undefined);
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(TYPE, [schema]), 0);
    await registry.putEventType(eventTypeRecord(PROMOTED, [promotedV1, promotedV2]), 0);
    const [promotedTopic] = await pubsub.createTopic(resourceNames.topic(PROMOTED));
    [promotedSub] = await promotedTopic.createSubscription(uniqueName('es-longs', 'promoted-sub'));
    promotedSub.on('message', (m: Message) => {
      m.ack();
      messages.push(m);
    });
    promotedSub.on('error', () => undefined);
    service = await startEventService(withDefaults({ projectId }), { registry, pubsub, auditSink: new MemoryAuditSink(), logger: silentLogger });
  });

  afterAll(async () => {
    await service?.close();
    await sub?.close().catch(() => undefined);
    await promotedSub?.close().catch(() => undefined);
    await pubsub?.close();
  });

  async function published(id: string): Promise<Message> {
    for (let i = 0; i < 400 && !messages.some((m) => m.attributes.eventId === id); i++) await sleep(50);
    const m = messages.find((x) => x.attributes.eventId === id);
    if (m === undefined) throw new Error(`message ${id} not delivered`);
    return m;
  }

  /** What python3-avro reads from a published message, and whether it writes the same bytes back. */
  function readBack(m: Message): { n: string; maybe: unknown; list: unknown } {
    const [decoded] = pythonAvro(schema, { decode: [m.data] }).decoded;
    expect(decoded!.reencoded).toBe(m.data.toString('hex'));
    return decoded!.value as { n: string; maybe: unknown; list: unknown };
  }

  it('publishes JSON longs at ±(2^63-1), ±2^53 and -2^52-1 exactly (decimal strings beyond ±(2^53-1))', async () => {
    const events = extremes.map((n, i) => ({ type: TYPE, id: `json-${i}`, payload: { n: jsonLong(n), maybe: jsonLong(n), list: [jsonLong(n), 7] } }));
    const res = await fetch(`${service.url}/v1/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ events }) });
    const body = (await res.json()) as IngestResponse;
    expect(res.status).toBe(200);
    expect(body.accepted).toBe(extremes.length);
    for (const [i, n] of extremes.entries()) {
      const value = readBack(await published(`json-${i}`));
      expect(value).toEqual({ n: n.toString(), maybe: n.toString(), list: [n.toString(), '7'] });
    }
  });

  it('refuses a JSON number beyond ±(2^53-1) (already rounded by JSON.parse), asking for a decimal string', async () => {
    const res = await fetch(`${service.url}/v1/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: `{"events":[{"type":"${TYPE}","id":"rounded","payload":{"n":9007199254740993,"maybe":null,"list":[]}}]}`,
    });
    const body = (await res.json()) as IngestResponse;
    expect(body.results[0]).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', retryable: false });
    expect(body.results[0]!.status === 'rejected' && body.results[0]!.reason).toMatch(/^payload\.n: .*send it as a decimal string$/);
  });

  it('publishes single-object longs written by python3-avro byte for byte', async () => {
    const values = extremes.map((n) => ({ n: exactInt(n), maybe: exactInt(n), list: [exactInt(n)] }));
    const datums = pythonAvro(schema, { encode: values }).encoded.map((hex) => Buffer.from(hex, 'hex'));
    const fingerprint = fingerprintToSingleObjectBytes(schemaFingerprint(schema));
    for (const [i, datum] of datums.entries()) {
      const res = await fetch(`${service.url}/v1/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/vnd.apache.avro+binary', 'X-Event-Type': TYPE, 'X-Event-Id': `avro-${i}` },
        body: new Uint8Array(toSingleObject(fingerprint, datum)),
      });
      expect(((await res.json()) as IngestResponse).results[0]).toEqual({ index: 0, status: 'accepted', id: `avro-${i}` });
    }
    for (const [i, n] of extremes.entries()) {
      const m = await published(`avro-${i}`);
      expect(m.data.equals(datums[i]!)).toBe(true);
      expect(readBack(m)).toEqual({ n: n.toString(), maybe: n.toString(), list: [n.toString()] });
    }
  });

  it('refuses a single-object long beyond ±2^52 that the current schema reads as a double (it cannot be exact; avsc flipped its sign)', async () => {
    const fingerprint = fingerprintToSingleObjectBytes(schemaFingerprint(promotedV1));
    const [small, big] = pythonAvro(promotedV1, { encode: [{ n: exactInt(5) }, { n: exactInt(-(2n ** 52n) - 1n) }] }).encoded.map((hex) => Buffer.from(hex, 'hex'));
    const send = async (datum: Buffer, id: string): Promise<IngestResponse> => {
      const res = await fetch(`${service.url}/v1/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/vnd.apache.avro+binary', 'X-Event-Type': PROMOTED, 'X-Event-Id': id },
        body: new Uint8Array(toSingleObject(fingerprint, datum)),
      });
      return (await res.json()) as IngestResponse;
    };
    const refused = (await send(big!, 'promoted-big')).results[0]!;
    expect(refused).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', retryable: false });
    expect(refused.status === 'rejected' && refused.reason).toMatch(/^payload: a long beyond ±2\^52 that version 2 of .* reads as a float or double cannot be stored exactly/);
    expect((await send(small!, 'promoted-small')).results[0]).toEqual({ index: 0, status: 'accepted', id: 'promoted-small' });
    const [decoded] = pythonAvro(promotedV2, { decode: [(await published('promoted-small')).data] }).decoded;
    expect(decoded!.value).toEqual({ n: 5 });
    await sleep(300);
    expect(messages.some((m) => m.attributes.eventId === 'promoted-big')).toBe(false);
  });
});
