/**
 * Hostile and careless input against the event service over real sockets and
 * the real Pub/Sub emulator (issue: no freeze, no silent change, one event
 * never fails its batch, 413 answered politely).
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
import { rawRequest } from '../support/raw-request.ts';

const projectId = inject('projectId');
const typeName = (base: string): string => uniqueName(`es-hostile-${base}`).replace(/-/g, '_');
const MAX_BODY = 64 * 1024;

const TWINS = typeName('twins');
const twinsSchema = {
  type: 'record',
  name: 'Root',
  fields: [
    {
      name: 'next',
      type: [
        'null',
        { type: 'record', name: 'A', fields: [{ name: 'next', type: ['null', 'A', { type: 'record', name: 'B', fields: [{ name: 'next', type: ['null', 'A', 'B'] }] }] }] },
        'B',
      ],
    },
  ],
};

const VALUES = typeName('values');
const valuesSchema = {
  type: 'record',
  name: 'Values',
  fields: [
    { name: 'name', type: 'string' },
    { name: 'ratio', type: 'float' },
    { name: 'count', type: 'int' },
  ],
};

const SUBJECT = typeName('subject');
const subjectSchema = {
  type: 'record',
  name: 'Visit',
  fields: [
    { name: 'userId', type: ['null', 'string'], semanticType: 'userId' },
    { name: 'email', type: ['null', 'string'], semanticType: 'email' },
  ],
};

// The registry says long, the topic's Pub/Sub schema says int: Pub/Sub refuses a value beyond what its int
// decoder reads (a drift like a topic schema revision behind the registry). Its refusal must hit that event only.
const DRIFTED = typeName('drifted');
const driftedRegistrySchema = { type: 'record', name: 'Drifted', fields: [{ name: 'n', type: 'long' }] };
const driftedTopicSchema = { type: 'record', name: 'Drifted', fields: [{ name: 'n', type: 'int' }] };

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: IngestResponse & { code?: string; message?: string } }> {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: res.status, json: (await res.json()) as IngestResponse & { code?: string; message?: string } };
}

describe('event service: hostile input', () => {
  let pubsub: PubSub;
  let service: RunningEventService;
  let driftedSub: Subscription;
  const driftedMessages: Message[] = [];

  beforeAll(async () => {
    pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(TWINS, [twinsSchema]), 0);
    await registry.putEventType(eventTypeRecord(VALUES, [valuesSchema]), 0);
    await registry.putEventType(eventTypeRecord(DRIFTED, [driftedRegistrySchema]), 0);
    await registry.putEventType(eventTypeRecord(SUBJECT, [subjectSchema]), 0);
    await pubsub.createTopic(resourceNames.topic(SUBJECT));
    await pubsub.createTopic(resourceNames.topic(TWINS));
    await pubsub.createTopic(resourceNames.topic(VALUES));
    const schemaName = uniqueName('es-hostile', 'drifted-schema');
    await pubsub.createSchema(schemaName, 'AVRO', JSON.stringify(driftedTopicSchema));
    const [topic] = await pubsub.createTopic({
      name: resourceNames.topic(DRIFTED),
      schemaSettings: { schema: `projects/${projectId}/schemas/${schemaName}`, encoding: 'BINARY' },
    });
    [driftedSub] = await topic.createSubscription(uniqueName('es-hostile', 'drifted-sub'));
    driftedSub.on('message', (m: Message) => {
      m.ack();
      driftedMessages.push(m);
    });
    driftedSub.on('error', () => undefined);
    service = await startEventService(
      withDefaults({
        projectId,
        limits: { maxBodyBytes: MAX_BODY },
        // A batching window wide enough that one request's events share a publish RPC.
        batching: { maxMessages: 100, maxMilliseconds: 100, maxBytes: 1 << 20 },
      }),
      { registry, pubsub, auditSink: new MemoryAuditSink(), logger: silentLogger },
    );
  });

  afterAll(async () => {
    await service?.close();
    await driftedSub?.close().catch(() => undefined);
    await pubsub?.close();
  });

  it('answers a small payload nested in a union of two same-shaped records with a reason, and keeps serving', async () => {
    let payload: unknown = null;
    for (let i = 0; i < 40; i++) payload = { next: payload };
    const body = JSON.stringify({ events: [{ type: TWINS, id: 'twins-1', payload }] });
    expect(body.length).toBeLessThan(600);
    const [r, health] = await Promise.all([post(service.url, body), fetch(`${service.url}/healthz`)]);
    expect(health.status).toBe(200);
    expect(r.status).toBe(200);
    expect(r.json.results[0]).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', retryable: false });
    expect(r.json.results[0]!.status === 'rejected' && r.json.results[0]!.reason).toMatch(/^payload\.next: expected one of \[null, A, B\]/);
  });

  it('refuses input it would otherwise store changed, naming the field', async () => {
    const r = await post(
      service.url,
      JSON.stringify({
        events: [
          { type: VALUES, id: 'v-surrogate', payload: { name: 'x\ud800', ratio: 1, count: 1 } },
          { type: VALUES, id: 'v-float', payload: { name: 'x', ratio: 1e39, count: 1 } },
          { type: VALUES, id: 'v-ok', payload: { name: 'x', ratio: 1.5, count: 1 } },
        ],
      }),
    );
    expect(r.status).toBe(200);
    const reasons = r.json.results.map((x) => (x.status === 'accepted' ? 'accepted' : `${x.code} ${x.reason}`));
    expect(reasons[0]).toMatch(/^EVENT_INVALID payload\.name: expected string, got a string with a lone surrogate/);
    expect(reasons[1]).toMatch(/^EVENT_INVALID payload\.ratio: expected float, got a number beyond the float range/);
    expect(reasons[2]).toBe('accepted');

    // Invalid UTF-8 in the body cannot be decoded without changing it: the whole request is refused.
    const bad = Buffer.concat([Buffer.from(`{"events":[{"type":"${VALUES}","payload":{"name":"`), Buffer.from([0xc3, 0x28]), Buffer.from('","ratio":1,"count":1}}]}')]);
    const b = await post(service.url, bad);
    expect(b.status).toBe(400);
    expect(b.json).toMatchObject({ code: 'BODY_INVALID' });
    expect(b.json.message).toBe(`body: not valid UTF-8 (first invalid byte at offset ${bad.indexOf(0xc3)})`);
  });

  it('refuses a data subject padlock would refuse (ill-formed, empty, over 256 UTF-8 bytes), in JSON and single-object bodies', async () => {
    const events = [
      { type: SUBJECT, id: 's-surrogate', payload: { userId: 'u\ud800', email: null } },
      { type: SUBJECT, id: 's-empty', payload: { userId: '', email: null } },
      { type: SUBJECT, id: 's-long', payload: { userId: 'é'.repeat(129), email: null } },
      { type: SUBJECT, id: 's-ok', payload: { userId: 'é'.repeat(128), email: null } },
    ];
    const r = await post(service.url, JSON.stringify({ events }));
    const reasons = r.json.results.map((x) => (x.status === 'accepted' ? 'accepted' : `${x.code} ${x.reason}`));
    expect(reasons[0]).toMatch(/^EVENT_INVALID payload\.userId: (expected string, got a string with a lone surrogate|a user id must be well-formed)/);
    expect(reasons.slice(1)).toEqual([
      'EVENT_INVALID payload.userId: a user id must not be empty',
      'EVENT_INVALID payload.userId: a user id must be at most 256 bytes in UTF-8',
      'accepted',
    ]);

    const fingerprint = fingerprintToSingleObjectBytes(schemaFingerprint(subjectSchema));
    const datum = Buffer.from([0x02, 0x00, 0x00]); // userId: branch string, "" ; email: null
    const so = await post(service.url, toSingleObject(fingerprint, datum), { 'Content-Type': 'application/vnd.apache.avro+binary', 'X-Event-Type': SUBJECT });
    expect(so.json.results[0]).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', reason: 'payload.userId: a user id must not be empty' });
  });

  it('refuses single-object datums with invalid UTF-8 or an int beyond 32 bits, naming the field', async () => {
    const fingerprint = fingerprintToSingleObjectBytes(schemaFingerprint(valuesSchema));
    const float = Buffer.alloc(4);
    float.writeFloatLE(1.5);
    const datum = (name: Buffer, count: Buffer): Buffer => Buffer.concat([Buffer.from([name.length * 2]), name, float, count]);
    const avro = { 'Content-Type': 'application/vnd.apache.avro+binary', 'X-Event-Type': VALUES };
    const cases: Array<[string, Buffer, RegExp | string]> = [
      ['utf8', datum(Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([2])), 'payload.name: string is not valid UTF-8'],
      ['int-2^31', datum(Buffer.from('ok'), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x10])), 'payload.count: int beyond the 32-bit range of an Avro int'],
      ['int-2^40', datum(Buffer.from('ok'), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x40])), 'payload.count: int beyond the 32-bit range of an Avro int'],
    ];
    for (const [name, d, reason] of cases) {
      const r = await post(service.url, toSingleObject(fingerprint, d), { ...avro, 'X-Event-Id': `so-${name}` });
      expect(r.status, name).toBe(200);
      expect(r.json.results[0], name).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', retryable: false });
      const got = r.json.results[0]!.status === 'rejected' ? r.json.results[0]!.reason : '';
      expect(got, name).toBe(`not a valid Avro datum of ${VALUES} version 1: ${reason as string}`);
    }
    const good = await post(service.url, toSingleObject(fingerprint, datum(Buffer.from('ok'), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f]))), avro);
    expect(good.json.results[0]?.status).toBe('accepted');
  });

  it('rejects the one event Pub/Sub refuses (not retryable, with its reason) and accepts the rest of its batch', async () => {
    const r = await post(
      service.url,
      JSON.stringify({
        events: [
          { type: DRIFTED, id: 'drift-1', payload: { n: 1 } },
          { type: DRIFTED, id: 'drift-2', payload: { n: 2 ** 40 } },
          { type: DRIFTED, id: 'drift-3', payload: { n: 3 } },
        ],
      }),
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ accepted: 2, rejected: 1, failed: 0 });
    expect(r.json.results[0]).toEqual({ index: 0, status: 'accepted', id: 'drift-1' });
    expect(r.json.results[1]).toMatchObject({ status: 'rejected', id: 'drift-2', code: 'EVENT_INVALID', retryable: false });
    expect(r.json.results[1]!.status === 'rejected' && r.json.results[1]!.reason).toMatch(/^payload: refused by Pub\/Sub \(INVALID_ARGUMENT: .+\)/);
    expect(r.json.results[2]).toEqual({ index: 2, status: 'accepted', id: 'drift-3' });
    for (let i = 0; i < 200 && driftedMessages.length < 2; i++) await sleep(50);
    await sleep(300);
    expect(driftedMessages.map((m) => m.attributes.eventId).sort()).toEqual(['drift-1', 'drift-3']);
  });

  it.each([
    ['a declared length far over the limit', 8 * MAX_BODY, true],
    ['a declared length just over the limit', MAX_BODY + 16 * 1024, true],
    ['a chunked body that grows over the limit', 8 * MAX_BODY, false],
  ])('answers 413 with a reason to %s and closes the connection politely (no reset)', async (_name, size, declared) => {
    const head =
      `POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      (declared ? `Content-Length: ${size}\r\n\r\n` : 'Transfer-Encoding: chunked\r\n\r\n');
    // Sizes are whole 16 KiB writes, so the body is exactly `size` bytes (chunked: one chunk, never terminated).
    const r = await rawRequest(service.port, declared ? head : head + `${size.toString(16)}\r\n`, size);
    expect(r.ending).toBe('end');
    expect(r.response).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.response).toMatch(/\r\nconnection: close\r\n/i);
    const json = JSON.parse(r.response.slice(r.response.indexOf('\r\n\r\n') + 4)) as { code: string; message: string; details: { limitBytes: number } };
    expect(json).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: `Request body larger than ${MAX_BODY} bytes`, details: { limitBytes: MAX_BODY } });
    // And the service still serves.
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
  });

  it('answers 413 to an oversize body sent with fetch (undici), which reads the answer', async () => {
    const r = await post(service.url, Buffer.alloc(8 * MAX_BODY, 0x61));
    expect(r.status).toBe(413);
    expect(r.json.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
