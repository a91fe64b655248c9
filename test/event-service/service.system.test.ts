/**
 * The event service over real HTTP against the real Pub/Sub emulator:
 * acceptance, per-event rejection, limits, Avro single-object encoding,
 * registry refresh, the message contract, publish failures and graceful shutdown.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message, PubSub, Subscription } from '@google-cloud/pubsub';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { fingerprintToSingleObjectBytes, schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { auditObjectName, hourKey } from '../../lib/events/contract.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { resourceNames } from '../../lib/names.ts';
import { silentLogger } from '../../lib/logger.ts';
import { sleep } from '../../emulators/google/process.ts';
import { MemoryAuditSink } from '../../functions/event-service/audit.ts';
import { withDefaults } from '../../functions/event-service/config.ts';
import { eventTypeRecord } from '../support/event-service.ts';
import { startEventService, type IngestResponse, type RunningEventService } from '../../functions/event-service/server.ts';
import { toSingleObject } from '../../functions/event-service/single-object.ts';
import { parseSchema } from '../../functions/event-service/validation.ts';

const projectId = inject('projectId');
const suffix = randomBytes(3).toString('hex');
const typeName = (base: string): string => `${base}_${suffix}`;

const pageViewV1 = {
  type: 'record',
  name: 'PageView',
  fields: [
    { name: 'url', type: 'string' },
    { name: 'user', type: { type: 'record', name: 'User', fields: [{ name: 'id', type: 'string' }, { name: 'country', type: 'string' }] } },
  ],
};
const pageViewV2 = {
  ...pageViewV1,
  fields: [...pageViewV1.fields, { name: 'referrer', type: ['null', 'string'], default: null }],
};
const signUpSchema = { type: 'record', name: 'SignUp', fields: [{ name: 'plan', type: 'string' }] };

const PAGE_VIEW = typeName('page_view');
const SIGN_UP = typeName('sign_up');
const DEPRECATED = typeName('old_thing');
const LATE = typeName('late_type');
const DOOMED = typeName('doomed');

/** Collects the messages of a subscription. */
class Collector {
  readonly messages: Message[] = [];
  constructor(readonly sub: Subscription) {
    sub.on('message', (m: Message) => {
      m.ack();
      this.messages.push(m);
    });
    sub.on('error', () => undefined);
  }
  async waitFor(n: number, ms = 20_000): Promise<Message[]> {
    const end = Date.now() + ms;
    while (this.messages.length < n && Date.now() < end) await sleep(50);
    return this.messages;
  }
  byId(id: string): Message | undefined {
    return this.messages.find((m) => m.attributes.eventId === id);
  }
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: IngestResponse & { code?: string; message?: string } }> {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as IngestResponse & { code?: string; message?: string } };
}

describe('event service', () => {
  let pubsub: PubSub;
  let registry: MemoryRegistryStore;
  let service: RunningEventService;
  let auditSink: MemoryAuditSink;
  const collectors = new Map<string, Collector>();

  async function provision(type: string): Promise<Collector> {
    const [topic] = await pubsub.createTopic(resourceNames.topic(type));
    const [sub] = await topic.createSubscription(`${resourceNames.etlSubscription(type)}-test`);
    const c = new Collector(sub);
    collectors.set(type, c);
    return c;
  }

  beforeAll(async () => {
    pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(PAGE_VIEW, [pageViewV1, pageViewV2]), 0);
    await registry.putEventType(eventTypeRecord(SIGN_UP, [signUpSchema]), 0);
    await registry.putEventType(eventTypeRecord(DEPRECATED, [signUpSchema], 'deprecated'), 0);
    await registry.putEventType(eventTypeRecord(DOOMED, [signUpSchema]), 0);
    for (const t of [PAGE_VIEW, SIGN_UP, LATE, DOOMED]) await provision(t);
    auditSink = new MemoryAuditSink();
    service = await startEventService(
      withDefaults({ projectId, registryRefreshMs: 200, auditFlushMs: 200, limits: { maxBodyBytes: 256 * 1024, maxBatchEvents: 50 } }),
      { registry, pubsub, auditSink, logger: silentLogger },
    );
  });

  afterAll(async () => {
    await service?.close();
    for (const c of collectors.values()) await c.sub.close().catch(() => undefined);
    await pubsub?.close();
  });

  const pageView = (id: string, country: unknown = 'FR') => ({ type: PAGE_VIEW, id, payload: { url: '/home', user: { id: 'u1', country } } });

  it('answers health, readiness and metrics', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${service.url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toContain('# TYPE event_service_events_accepted_total counter');
  });

  it('accepts a good batch and publishes messages that decode with the current schema and carry the contract attributes', async () => {
    const before = Date.now();
    const r = await post(service.url, { events: [pageView('good-1'), pageView('good-2'), { type: SIGN_UP, payload: { plan: 'pro' } }] });
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(3);
    expect(r.json.results.map((x) => x.status)).toEqual(['accepted', 'accepted', 'accepted']);
    const assigned = r.json.results[2]!;
    expect(assigned.status === 'accepted' && /^[0-9a-f-]{36}$/.test(assigned.id)).toBe(true);

    const messages = await collectors.get(PAGE_VIEW)!.waitFor(2);
    const m = collectors.get(PAGE_VIEW)!.byId('good-1')!;
    expect(m).toBeDefined();
    expect(messages.filter((x) => x.attributes.eventId?.startsWith('good-')).length).toBe(2);
    expect(m.attributes.eventType).toBe(PAGE_VIEW);
    expect(m.attributes.schemaFingerprint).toBe(schemaFingerprint(pageViewV2));
    expect(m.attributes.receiveTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(m.attributes.receiveTime!)).toBeGreaterThanOrEqual(before - 1000);
    expect(parseSchema(pageViewV2).fromBuffer(m.data)).toEqual({ url: '/home', user: { id: 'u1', country: 'FR' }, referrer: null });

    const signUp = (await collectors.get(SIGN_UP)!.waitFor(1)).find((x) => x.attributes.eventId === (assigned.status === 'accepted' ? assigned.id : ''));
    expect(signUp).toBeDefined();

    // Audit: the accepted count of this hour reaches the sink within a few flushes.
    const hour = hourKey(new Date(m.attributes.receiveTime!));
    const name = auditObjectName(PAGE_VIEW, hour, service.instanceId);
    for (let i = 0; i < 100 && (auditSink.objects.get(name)?.accepted ?? 0) < 2; i++) await sleep(50);
    expect(auditSink.objects.get(name)?.accepted).toBeGreaterThanOrEqual(2);
  });

  it('rejects a bad batch per event with codes and field paths, and publishes nothing of it', async () => {
    const r = await post(service.url, {
      events: [
        pageView('bad-1', 42),
        { type: PAGE_VIEW, id: 'bad-2', payload: { url: '/x' } },
        { type: PAGE_VIEW, id: '', payload: {} },
        { type: PAGE_VIEW, id: 'bad-4' },
        'not an event',
        { type: 7, payload: {} },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(0);
    const reasons = r.json.results.map((x) => (x.status === 'accepted' ? '' : `${x.code} ${x.reason}`));
    expect(reasons).toEqual([
      'EVENT_INVALID payload.user.country: expected string, got number',
      'EVENT_INVALID payload.user: required field missing',
      'EVENT_INVALID id: must not be empty',
      'EVENT_INVALID payload: required field missing',
      'EVENT_INVALID event: expected an object {type, id?, payload}, got string',
      'EVENT_INVALID type: expected a non-empty string, got number',
    ]);
    await sleep(500);
    expect(collectors.get(PAGE_VIEW)!.messages.some((m) => m.attributes.eventId?.startsWith('bad-'))).toBe(false);
  });

  it('handles a mixed batch: unknown and deprecated types are rejected per event, the rest accepted', async () => {
    const r = await post(service.url, {
      events: [
        pageView('mixed-1'),
        { type: 'no_such_type', id: 'mixed-2', payload: {} },
        { type: DEPRECATED, id: 'mixed-3', payload: { plan: 'x' } },
        pageView('mixed-4', null),
        pageView('mixed-5'),
      ],
    });
    expect(r.status).toBe(200);
    expect(r.json.results.map((x) => (x.status === 'accepted' ? 'accepted' : x.code))).toEqual([
      'accepted',
      'UNKNOWN_EVENT_TYPE',
      'DEPRECATED_EVENT_TYPE',
      'EVENT_INVALID',
      'accepted',
    ]);
    expect(r.json).toMatchObject({ accepted: 2, rejected: 3, failed: 0 });
    await collectors.get(PAGE_VIEW)!.waitFor(4);
    const ids = collectors.get(PAGE_VIEW)!.messages.map((m) => m.attributes.eventId ?? '').filter((id) => id.startsWith('mixed-'));
    await sleep(300);
    expect(ids.sort()).toEqual(['mixed-1', 'mixed-5']);
  });

  it('enforces request limits: 413 for an oversize body or batch, 400 for invalid JSON, 415 for other media types', async () => {
    const big = await post(service.url, { events: [{ type: SIGN_UP, payload: { plan: 'x'.repeat(300 * 1024) } }] });
    expect(big.status).toBe(413);
    expect(big.json.code).toBe('PAYLOAD_TOO_LARGE');
    const many = await post(service.url, { events: Array.from({ length: 51 }, () => ({ type: SIGN_UP, payload: { plan: 'x' } })) });
    expect(many.status).toBe(413);
    expect(many.json.code).toBe('BATCH_TOO_LARGE');
    const broken = await post(service.url, '{"events": [');
    expect(broken.status).toBe(400);
    expect(broken.json.code).toBe('BODY_INVALID');
    expect(broken.json.message).toMatch(/not valid JSON/);
    expect((await post(service.url, { events: {} })).json.message).toMatch(/^events: expected an array/);
    const text = await post(service.url, 'hello', { 'Content-Type': 'text/plain' });
    expect(text.status).toBe(415);
    // The service still serves after all that.
    expect((await post(service.url, { events: [{ type: SIGN_UP, payload: { plan: 'after' } }] })).status).toBe(200);
  });

  it('accepts Avro single-object encoding, also written with an older schema version', async () => {
    const v1 = parseSchema(pageViewV1);
    const v2 = parseSchema(pageViewV2);
    const avro = { 'Content-Type': 'application/vnd.apache.avro+binary' };
    const old = toSingleObject(fingerprintToSingleObjectBytes(schemaFingerprint(pageViewV1)), v1.toBuffer({ url: '/old', user: { id: 'u2', country: 'DE' } }));
    const r1 = await post(service.url, old, { ...avro, 'X-Event-Id': 'avro-old' }); // type resolved from the fingerprint
    expect(r1.status).toBe(200);
    expect(r1.json.results[0]).toEqual({ index: 0, status: 'accepted', id: 'avro-old' });
    const current = toSingleObject(
      fingerprintToSingleObjectBytes(schemaFingerprint(pageViewV2)),
      v2.toBuffer({ url: '/new', user: { id: 'u3', country: 'IT' }, referrer: { string: 'r' } }),
    );
    const r2 = await post(service.url, current, { ...avro, 'X-Event-Type': PAGE_VIEW, 'X-Event-Id': 'avro-new' });
    expect(r2.json.results[0]?.status).toBe('accepted');

    const unknown = toSingleObject(fingerprintToSingleObjectBytes('0123456789abcdef'), Buffer.from([0]));
    const r3 = await post(service.url, unknown, avro);
    expect(r3.json.results[0]).toMatchObject({ status: 'rejected', code: 'UNKNOWN_SCHEMA_FINGERPRINT' });
    const truncated = toSingleObject(fingerprintToSingleObjectBytes(schemaFingerprint(pageViewV2)), Buffer.from([0x08, 0x61]));
    const r4 = await post(service.url, truncated, { ...avro, 'X-Event-Type': PAGE_VIEW });
    expect(r4.json.results[0]).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID' });

    const c = collectors.get(PAGE_VIEW)!;
    for (let i = 0; i < 200 && !(c.byId('avro-old') && c.byId('avro-new')); i++) await sleep(50);
    const oldMsg = c.byId('avro-old')!;
    expect(oldMsg.attributes.schemaFingerprint).toBe(schemaFingerprint(pageViewV2));
    expect(v2.fromBuffer(oldMsg.data)).toEqual({ url: '/old', user: { id: 'u2', country: 'DE' }, referrer: null });
    expect(v2.fromBuffer(c.byId('avro-new')!.data)).toMatchObject({ referrer: { string: 'r' } });
  });

  it('accepts a type added to the registry while running, within the refresh interval', async () => {
    const event = { type: LATE, id: 'late-1', payload: { plan: 'late' } };
    expect((await post(service.url, { events: [event] })).json.results[0]).toMatchObject({ code: 'UNKNOWN_EVENT_TYPE' });
    await registry.putEventType(eventTypeRecord(LATE, [signUpSchema]), 0);
    let status = '';
    for (let i = 0; i < 100 && status !== 'accepted'; i++) {
      await sleep(100);
      status = (await post(service.url, { events: [event] })).json.results[0]!.status;
    }
    expect(status).toBe('accepted');
  });

  it('reports PUBLISH_FAILED (retryable, 503 + Retry-After) for a type whose topic is gone while other types keep being accepted', async () => {
    await pubsub.topic(resourceNames.topic(DOOMED)).delete();
    const r = await post(service.url, {
      events: [
        { type: DOOMED, id: 'doomed-1', payload: { plan: 'x' } },
        { type: SIGN_UP, id: 'survivor-1', payload: { plan: 'y' } },
      ],
    });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.json.results[0]).toMatchObject({ status: 'failed', id: 'doomed-1', code: 'PUBLISH_FAILED', retryable: true });
    expect(r.json.results[1]).toEqual({ index: 1, status: 'accepted', id: 'survivor-1' });
    const again = await post(service.url, { events: [{ type: SIGN_UP, id: 'survivor-2', payload: { plan: 'z' } }] });
    expect(again.status).toBe(200);
    expect(service.metrics.get(DOOMED).publishFailures).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`${service.url}/metrics`)).text();
    expect(text).toContain(`event_service_publish_failures_total{event_type="${DOOMED}"} 1`);
  });

  it('bounds each type by its own byte budget: a full budget answers OVERLOADED (429 + Retry-After) without touching other types', async () => {
    const tight = await startEventService(
      withDefaults({
        projectId,
        limits: { typeBudgetBytes: 2048, maxBufferedBodyBytes: 12 * 1024 },
        // A long batching window keeps publishes in flight, as a slow topic would.
        batching: { maxMessages: 1000, maxMilliseconds: 1000, maxBytes: 1 << 20 },
      }),
      { registry, pubsub, auditSink: new MemoryAuditSink(), logger: silentLogger },
    );
    try {
      const events = [
        ...Array.from({ length: 20 }, (_, i) => ({ type: PAGE_VIEW, id: `budget-${i}`, payload: { url: 'u'.repeat(300), user: { id: 'u', country: 'FR' } } })),
        { type: SIGN_UP, id: 'budget-other', payload: { plan: 'p' } },
      ];
      const r = await post(tight.url, { events });
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('1');
      const codes = r.json.results.map((x) => (x.status === 'accepted' ? 'accepted' : x.code));
      expect(codes.slice(0, 20)).toContain('accepted');
      expect(codes.slice(0, 20)).toContain('OVERLOADED');
      expect(codes[20]).toBe('accepted');
      expect(r.json.results.filter((x) => x.status === 'failed').every((x) => x.status === 'failed' && x.retryable)).toBe(true);

      // Bodies held at once are bounded too: a second big request while the first waits answers 429.
      const first = post(tight.url, { events });
      for (let i = 0; i < 200 && !/event_service_in_flight_bytes\{[^}]*\} [1-9]/.test(tight.metrics.render()); i++) await sleep(10);
      const second = await post(tight.url, { events });
      expect(second.status).toBe(429);
      expect(second.json.code).toBe('OVERLOADED');
      expect(second.headers.get('retry-after')).toBe('1');
      expect((await first).json.accepted).toBeGreaterThan(0);
    } finally {
      await tight.close();
    }
  });

  it('shuts down gracefully: in-flight publishes finish, are reported accepted and audited', async () => {
    const sink = new MemoryAuditSink();
    // Long batching window: the publish is still in flight when close() begins.
    const slow = await startEventService(
      withDefaults({ projectId, registryRefreshMs: 200, auditFlushMs: 60_000, batching: { maxMessages: 1000, maxMilliseconds: 1500, maxBytes: 1 << 20 } }),
      { registry, pubsub, auditSink: sink, logger: silentLogger },
    );
    const pending = post(slow.url, { events: [{ type: SIGN_UP, id: 'shutdown-1', payload: { plan: 'p' } }, { type: SIGN_UP, id: 'shutdown-2', payload: { plan: 'q' } }] });
    for (let i = 0; i < 200 && !/event_service_in_flight_bytes\{[^}]*\} [1-9]/.test(slow.metrics.render()); i++) await sleep(10);
    expect(slow.metrics.render()).toMatch(/event_service_in_flight_bytes\{[^}]*\} [1-9]/);
    const closed = slow.close();
    // New connections are refused once closing started.
    await expect(fetch(`${slow.url}/healthz`)).rejects.toThrow();
    const r = await pending;
    await closed;
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(2);
    const c = collectors.get(SIGN_UP)!;
    for (let i = 0; i < 200 && !(c.byId('shutdown-1') && c.byId('shutdown-2')); i++) await sleep(50);
    expect(c.byId('shutdown-1')).toBeDefined();
    expect(c.byId('shutdown-2')).toBeDefined();
    // Shutdown writes the counts final and compacts them into the hours' summaries.
    const counts = [...sink.summaries.values()].flatMap((s) => s.instances).filter((x) => x.eventType === SIGN_UP);
    expect(counts.reduce((n, x) => n + x.accepted, 0)).toBe(2);
    expect(counts.every((x) => x.final === true)).toBe(true);
  });
});
