/**
 * Property-based fuzzing of the event service over real HTTP with the real
 * Pub/Sub emulator: thousands of malformed bodies and events always get a 4xx
 * or a per-event rejection with a reason, never a 5xx or a crash, and every
 * message that reaches the topic decodes with the schema and belongs to an
 * event the service reported accepted.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
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
import { startEventService, type RunningEventService } from '../../functions/event-service/server.ts';
import { parseSchema } from '../../functions/event-service/validation.ts';

const projectId = inject('projectId');
const TYPE = `fuzzed_${randomBytes(3).toString('hex')}`;
const MAX_BODY = 128 * 1024;

const schema = {
  type: 'record',
  name: 'Fuzzed',
  namespace: 'test.fuzz',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'count', type: 'int' },
    { name: 'ts', type: 'long' },
    { name: 'score', type: 'double' },
    { name: 'flag', type: 'boolean' },
    { name: 'blob', type: 'bytes' },
    { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 4 } },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B', 'C'] } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'attrs', type: { type: 'map', values: ['null', 'long'] } },
    { name: 'note', type: ['null', 'string'], default: null },
    {
      name: 'user',
      type: {
        type: 'record',
        name: 'User',
        fields: [
          { name: 'country', type: 'string' },
          { name: 'age', type: ['null', 'int'], default: null },
          { name: 'nested', type: { type: 'array', items: { type: 'map', values: 'float' } } },
        ],
      },
    },
  ],
};
const avroType = parseSchema(schema);
const fingerprint = schemaFingerprint(schema);

const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 8 });
const validPayload = fc.record({
  id: fc.string({ maxLength: 20 }),
  count: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  ts: fc.maxSafeInteger(),
  score: fc.double({ noNaN: true, noDefaultInfinity: true }),
  flag: fc.boolean(),
  blob: latin1,
  hash: fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), minLength: 4, maxLength: 4 }),
  kind: fc.constantFrom('A', 'B', 'C'),
  tags: fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
  attrs: fc.dictionary(fc.string({ maxLength: 6 }), fc.option(fc.maxSafeInteger(), { nil: null }), { maxKeys: 3 }),
  note: fc.option(fc.string({ maxLength: 10 }), { nil: null }),
  user: fc.record({
    country: fc.string({ maxLength: 3 }),
    age: fc.option(fc.integer({ min: 0, max: 120 }), { nil: null }),
    nested: fc.array(fc.dictionary(fc.string({ maxLength: 4 }), fc.float({ noNaN: true, noDefaultInfinity: true }), { maxKeys: 2 }), { maxLength: 2 }),
  }),
});

/** Values that break payloads in interesting ways. */
const nasty = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 2, 1.5, -0, 1e308, '', '\u0100', '\uD800', 'x'.repeat(5000), [], {}, null, true),
  fc.integer({ min: 1, max: 60_000 }).map((n) => 'y'.repeat(n)),
  fc.integer({ min: 1, max: 2000 }).map((n) => JSON.parse('['.repeat(n) + ']'.repeat(n)) as unknown),
);

type Path = Array<string | number>;

function allPaths(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...allPaths(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...allPaths(v, [...prefix, k]));
  return out;
}

function replaceAt(value: unknown, path: Path, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) }) as Record<string | number, unknown>;
  copy[head!] = replaceAt(copy[head!], rest, replacement);
  return copy;
}

let nextId = 0;
const freshId = (): string => `fz-${nextId++}`;

/** A valid event with one value replaced (or deleted, or an extra field added) at a random path. */
const mutatedEvent = fc.tuple(validPayload, fc.nat(), nasty, fc.constantFrom('replace', 'delete', 'extra', 'none')).map(([payload, pick, bad, how]) => {
  const paths = allPaths(payload);
  const path = paths[pick % paths.length]!;
  let mutated: unknown = payload;
  if (how === 'replace') mutated = replaceAt(payload, path, bad);
  else if (how === 'delete' && path.length > 0) {
    const parentPath = path.slice(0, -1);
    const parent = parentPath.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], payload);
    if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
      const { [path[path.length - 1]!]: _gone, ...rest } = parent as Record<string, unknown>;
      mutated = replaceAt(payload, parentPath, rest);
    }
  } else if (how === 'extra') mutated = { ...payload, unexpected: bad };
  return { type: TYPE, id: freshId(), payload: mutated };
});

/** Whole events that are wrong in their envelope. */
const brokenEnvelope = fc.oneof(
  nasty,
  fc.record({ type: nasty, id: fc.constant('x'), payload: validPayload }),
  fc.record({ type: fc.constant(TYPE), id: nasty, payload: validPayload }),
  fc.record({ type: fc.constant(TYPE), payload: validPayload, more: nasty }),
);

interface Check {
  acceptedIds: Set<string>;
  requests: number;
  events: number;
}

describe('event service under fuzzing', () => {
  let pubsub: PubSub;
  let service: RunningEventService;
  let sub: Subscription;
  const published: Message[] = [];
  const check: Check = { acceptedIds: new Set(), requests: 0, events: 0 };

  beforeAll(async () => {
    pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(TYPE, [schema]), 0);
    const [topic] = await pubsub.createTopic(resourceNames.topic(TYPE));
    [sub] = await topic.createSubscription(`${resourceNames.etlSubscription(TYPE)}-fuzz`);
    sub.on('message', (m: Message) => {
      m.ack();
      published.push(m);
    });
    service = await startEventService(withDefaults({ projectId, limits: { maxBodyBytes: MAX_BODY, maxBatchEvents: 20, maxEventBytes: 32 * 1024 } }), {
      registry,
      pubsub,
      auditSink: new MemoryAuditSink(),
      logger: silentLogger,
    });
  });

  afterAll(async () => {
    await service?.close();
    await sub?.close();
    await pubsub?.close();
  });

  /** Sends a body and asserts the invariants of every answer; records accepted ids. */
  async function send(body: Uint8Array | string, contentType: string, headers: Record<string, string> = {}): Promise<void> {
    check.requests++;
    const res = await fetch(`${service.url}/v1/events`, { method: 'POST', headers: { 'Content-Type': contentType, ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    const text = await res.text();
    expect(res.status, text).toBeLessThan(500);
    const json = JSON.parse(text) as { code?: string; message?: string; results?: Array<{ status: string; id?: string; code?: string; reason?: string }> };
    if (res.status !== 200) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(typeof json.code).toBe('string');
      expect(json.message?.length).toBeGreaterThan(0);
      return;
    }
    for (const r of json.results!) {
      check.events++;
      if (r.status === 'accepted') check.acceptedIds.add(r.id!);
      else {
        expect(r.status).toBe('rejected');
        expect(typeof r.code).toBe('string');
        expect(r.reason!.length).toBeGreaterThan(0);
      }
    }
  }

  it('answers random bytes with a 4xx or per-event rejection', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => send(bytes, 'application/json')),
      { numRuns: 400 },
    );
    const header = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintToSingleObjectBytes(fingerprint)]);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.boolean(), async (bytes, withHeader, named) =>
        send(withHeader ? Buffer.concat([header, bytes]) : bytes, 'application/vnd.apache.avro+binary', {
          ...(named ? { 'X-Event-Type': TYPE } : {}),
          'X-Event-Id': freshId(),
        }),
      ),
      { numRuns: 600 },
    );
  });

  it('answers random JSON documents with a 4xx or per-event rejection', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), fc.record({ events: fc.jsonValue() }), fc.record({ events: fc.array(fc.jsonValue(), { maxLength: 25 }) })), async (doc) =>
        send(JSON.stringify(doc) ?? 'null', 'application/json'),
      ),
      { numRuns: 400 },
    );
  });

  it('rejects events with wrong values at random paths, huge strings and broken envelopes, each with a reason', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof({ weight: 4, arbitrary: mutatedEvent }, { weight: 1, arbitrary: brokenEnvelope }), { minLength: 1, maxLength: 8 }), async (events) =>
        send(JSON.stringify({ events }), 'application/json'),
      ),
      { numRuns: 800 },
    );
    // 800 requests take ~15 s alone; beside the heaviest system tests on 2 cores, up to ten times that.
  }, 300_000);

  it('published only well-formed messages of accepted events, and is still serving', async () => {
    expect(check.requests).toBeGreaterThanOrEqual(2000);
    expect(check.acceptedIds.size).toBeGreaterThan(0);
    for (let i = 0; i < 400 && published.length < check.acceptedIds.size; i++) await sleep(50);
    await sleep(500);
    const seen = new Set<string>();
    for (const m of published) {
      expect(check.acceptedIds.has(m.attributes.eventId!), `message ${m.attributes.eventId} was not reported accepted`).toBe(true);
      expect(m.attributes).toMatchObject({ eventType: TYPE, schemaFingerprint: fingerprint });
      const value = avroType.fromBuffer(m.data); // throws if malformed
      expect(avroType.isValid(value)).toBe(true);
      seen.add(m.attributes.eventId!);
    }
    expect(seen).toEqual(check.acceptedIds);
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
  });
});
