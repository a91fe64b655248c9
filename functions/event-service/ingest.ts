/**
 * Ingestion of one request's events: recognise the type, validate the id and
 * the payload, encode with the type's current schema, publish, and report
 * every event: accepted (only once Pub/Sub confirmed it), rejected for its own
 * reasons, or failed for a retryable one.
 */
import { randomUUID } from 'node:crypto';
import { hourKey, type EventMessageAttributes } from '../../lib/events/contract.ts';
import type { ErrorCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AuditCounter } from './audit.ts';
import type { EventServiceLimits } from './config.ts';
import { UNKNOWN_TYPE_LABEL, type ServiceMetrics } from './metrics.ts';
import type { PublisherPool, PublishOutcome } from './publishers.ts';
import type { CompiledEventType, RegistryCache } from './registry-cache.ts';
import { checkDatum, parseSingleObject } from './single-object.ts';
import { PayloadMismatch } from './validation.ts';

/** Per-event result in the response body (contract: see README.md). */
export type EventResult =
  | { index: number; status: 'accepted'; id: string }
  | { index: number; status: 'rejected' | 'failed'; id?: string; code: ErrorCode; reason: string; retryable: boolean };

const MAX_ID_LENGTH = 128;
/** Longest stretch validating one batch holds the event loop before yielding to other work. */
const SLICE_MS = 2;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** An event ready to publish. */
interface PreparedEvent {
  index: number;
  eventType: CompiledEventType;
  id: string;
  data: Buffer;
}

export interface IngestorDeps {
  cache: RegistryCache;
  publishers: PublisherPool;
  metrics: ServiceMetrics;
  audit: AuditCounter;
  limits: EventServiceLimits;
  publishTimeoutMs: number;
  logger: Logger;
}

/** Checks a producer-chosen id; returns the problem or undefined. */
export function eventIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return `expected string, got ${id === null ? 'null' : Array.isArray(id) ? 'array' : typeof id}`;
  if (id.length === 0) return 'must not be empty';
  if (id.length > MAX_ID_LENGTH) return `longer than ${MAX_ID_LENGTH} characters`;
  if (!PRINTABLE_ASCII.test(id)) return 'must be printable ASCII (U+0020–U+007E)';
  return undefined;
}

export class Ingestor {
  constructor(private readonly deps: IngestorDeps) {}

  /** `events` is the `events` array of a JSON batch (already checked to be an array within the batch limit). */
  async ingestJson(events: readonly unknown[], receiveTime: Date): Promise<EventResult[]> {
    const results = new Array<EventResult>(events.length);
    const ready: PreparedEvent[] = [];
    let sliceStart = performance.now();
    for (let index = 0; index < events.length; index++) {
      const prepared = this.prepareJson(index, events[index]);
      if ('status' in prepared) results[index] = prepared;
      else ready.push(prepared);
      // A big batch must not hold the event loop: let other requests (and /healthz) in between slices.
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    await this.publishAll(ready, receiveTime, results);
    return results;
  }

  /** One Avro single-object encoded event; `typeHeader`/`idHeader` from X-Event-Type / X-Event-Id. */
  async ingestSingleObject(body: Buffer, typeHeader: string | undefined, idHeader: string | undefined, receiveTime: Date): Promise<EventResult[]> {
    const results = new Array<EventResult>(1);
    const prepared = this.prepareSingleObject(body, typeHeader, idHeader);
    if ('status' in prepared) results[0] = prepared;
    else await this.publishAll([prepared], receiveTime, results);
    return results;
  }

  private reject(index: number, eventType: string | undefined, code: ErrorCode, reason: string, id?: string): EventResult {
    this.deps.metrics.rejected(eventType ?? UNKNOWN_TYPE_LABEL, code);
    return id === undefined
      ? { index, status: 'rejected', code, reason, retryable: false }
      : { index, status: 'rejected', id, code, reason, retryable: false };
  }

  /** Resolves a type name to an active compiled type, or a rejection. */
  private resolveType(index: number, name: unknown, id: string | undefined): CompiledEventType | EventResult {
    if (typeof name !== 'string' || name.length === 0) {
      return this.reject(index, undefined, 'EVENT_INVALID', `type: expected a non-empty string, got ${name === undefined ? 'nothing' : describeJson(name)}`, id);
    }
    const t = this.deps.cache.get(name);
    if (t === undefined || t.status === 'deleted') {
      return this.reject(index, undefined, 'UNKNOWN_EVENT_TYPE', `type: unknown event type ${JSON.stringify(name.slice(0, 80))}`, id);
    }
    if (t.status === 'deprecated') return this.reject(index, t.name, 'DEPRECATED_EVENT_TYPE', `type: event type ${t.name} is deprecated`, id);
    return t;
  }

  private prepareJson(index: number, event: unknown): PreparedEvent | EventResult {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return this.reject(index, undefined, 'EVENT_INVALID', `event: expected an object {type, id?, payload}, got ${describeJson(event)}`);
    }
    const e = event as Record<string, unknown>;
    const rawId = e.id;
    let id: string;
    if (rawId === undefined) id = randomUUID();
    else {
      const problem = eventIdProblem(rawId);
      const typeLabel = typeof e.type === 'string' && this.deps.cache.get(e.type) !== undefined ? e.type : undefined;
      if (problem !== undefined) return this.reject(index, typeLabel, 'EVENT_INVALID', `id: ${problem}`);
      id = rawId as string;
    }
    const type = this.resolveType(index, e.type, id);
    if (!('current' in type)) return type;
    const t = type;
    for (const key of Object.keys(e)) {
      if (key !== 'type' && key !== 'id' && key !== 'payload') {
        return this.reject(index, t.name, 'EVENT_INVALID', `${key}: not an event field (expected type, id, payload)`, id);
      }
    }
    if (!('payload' in e)) return this.reject(index, t.name, 'EVENT_INVALID', 'payload: required field missing', id);
    let data: Buffer;
    try {
      data = t.current.type.toBuffer(t.decodePayload(e.payload));
    } catch (err) {
      if (err instanceof PayloadMismatch) return this.reject(index, t.name, 'EVENT_INVALID', err.message, id);
      this.deps.logger.error('encoding a validated payload failed', { eventType: t.name, error: err });
      return this.reject(index, t.name, 'EVENT_INVALID', 'payload: cannot be encoded with the schema', id);
    }
    if (data.length > this.deps.limits.maxEventBytes) {
      return this.reject(index, t.name, 'EVENT_TOO_LARGE', `payload: ${data.length} bytes encoded, limit ${this.deps.limits.maxEventBytes}`, id);
    }
    const subjectProblem = t.subjectProblem(data);
    if (subjectProblem !== undefined) return this.reject(index, t.name, 'EVENT_INVALID', subjectProblem, id);
    return { index, eventType: t, id, data };
  }

  private prepareSingleObject(body: Buffer, typeHeader: string | undefined, idHeader: string | undefined): PreparedEvent | EventResult {
    let id: string;
    if (idHeader === undefined) id = randomUUID();
    else {
      const problem = eventIdProblem(idHeader);
      if (problem !== undefined) return this.reject(0, undefined, 'EVENT_INVALID', `X-Event-Id: ${problem}`);
      id = idHeader;
    }
    const single = parseSingleObject(body);
    if (single === undefined) {
      return this.reject(0, undefined, 'EVENT_INVALID', 'body: not Avro single-object encoding (C3 01 + 8-byte fingerprint + datum)', id);
    }
    let t: CompiledEventType;
    if (typeHeader !== undefined) {
      const resolved = this.resolveType(0, typeHeader, id);
      if (!('current' in resolved)) return resolved;
      t = resolved;
    } else {
      const candidates = this.deps.cache.typesWithFingerprint(single.fingerprint);
      if (candidates.length === 0) {
        return this.reject(0, undefined, 'UNKNOWN_SCHEMA_FINGERPRINT', `fingerprint: ${single.fingerprint} is not a registered schema of any type`, id);
      }
      if (candidates.length > 1) {
        return this.reject(0, undefined, 'UNKNOWN_EVENT_TYPE', `fingerprint: ${single.fingerprint} is registered for several types; name the type in X-Event-Type`, id);
      }
      const resolved = this.resolveType(0, candidates[0]!.name, id);
      if (!('current' in resolved)) return resolved;
      t = resolved;
    }
    const writer = t.versions.get(single.fingerprint);
    if (writer === undefined) {
      return this.reject(0, t.name, 'UNKNOWN_SCHEMA_FINGERPRINT', `fingerprint: ${single.fingerprint} is not a registered schema of ${t.name}`, id);
    }
    const facts = { longBeyond2p52: false };
    const problem = checkDatum(writer.type, single.datum, facts);
    if (problem !== undefined) {
      return this.reject(0, t.name, 'EVENT_INVALID', `not a valid Avro datum of ${t.name} version ${writer.version}: ${problem}`, id);
    }
    if (writer !== t.current && facts.longBeyond2p52 && t.promotesLong(writer)) {
      // Promoting such a long to a float/double cannot be exact, and avsc's promotion even flips its sign beyond 2^52.
      return this.reject(
        0,
        t.name,
        'EVENT_INVALID',
        `payload: a long beyond ±2^52 that version ${t.current.version} of ${t.name} reads as a float or double cannot be stored exactly; send it written with version ${t.current.version}`,
        id,
      );
    }
    let data: Buffer;
    if (writer === t.current) {
      // checkDatum accepted exactly a value of the current schema: publish its bytes as they are (longs stay exact).
      data = single.datum;
    } else {
      try {
        data = t.current.type.toBuffer(t.current.type.fromBuffer(single.datum, t.resolverFor(writer)));
      } catch (err) {
        const detail = err instanceof Error ? err.message.slice(0, 200) : 'decode failed';
        return this.reject(0, t.name, 'EVENT_INVALID', `payload: cannot be read as ${t.name} version ${t.current.version} from version ${writer.version}: ${detail}`, id);
      }
    }
    if (data.length > this.deps.limits.maxEventBytes) {
      return this.reject(0, t.name, 'EVENT_TOO_LARGE', `payload: ${data.length} bytes encoded, limit ${this.deps.limits.maxEventBytes}`, id);
    }
    const subjectProblem = t.subjectProblem(data);
    if (subjectProblem !== undefined) return this.reject(0, t.name, 'EVENT_INVALID', subjectProblem, id);
    return { index: 0, eventType: t, id, data: Buffer.from(data) };
  }

  /** Publishes every prepared event and fills their results; waits at most publishTimeoutMs. */
  private async publishAll(ready: PreparedEvent[], receiveTime: Date, results: EventResult[]): Promise<void> {
    if (ready.length === 0) return;
    const receiveIso = receiveTime.toISOString();
    const hour = hourKey(receiveTime);
    const { metrics, audit, publishers } = this.deps;
    let pending = ready.length;
    const loggedFailures = new Set<string>();
    let allSettled!: () => void;
    const done = new Promise<void>((resolve) => (allSettled = resolve));
    const settle = (p: PreparedEvent, outcome: PublishOutcome): void => {
      if (results[p.index] !== undefined) return; // already reported (timeout)
      const name = p.eventType.name;
      if (outcome.ok) {
        results[p.index] = { index: p.index, status: 'accepted', id: p.id };
        metrics.accepted(name, p.data.length);
        audit.record(name, hour);
      } else if (outcome.reason === 'refused') {
        // Pub/Sub refused this event's content even published alone: the event's fault, never retryable.
        metrics.rejected(name, 'EVENT_INVALID');
        results[p.index] = {
          index: p.index,
          status: 'rejected',
          id: p.id,
          code: 'EVENT_INVALID',
          reason: `payload: refused by Pub/Sub (INVALID_ARGUMENT: ${outcome.detail}) even when published alone; resending it cannot help`,
          retryable: false,
        };
      } else if (outcome.reason === 'budget') {
        metrics.rejected(name, 'OVERLOADED');
        results[p.index] = {
          index: p.index,
          status: 'failed',
          id: p.id,
          code: 'OVERLOADED',
          reason: `type ${name} has too many events waiting for Pub/Sub; retry later`,
          retryable: true,
        };
      } else {
        metrics.publishFailed(name);
        metrics.rejected(name, 'PUBLISH_FAILED');
        // One line per type and request: a failing topic must not flood the log.
        if (!loggedFailures.has(name)) {
          loggedFailures.add(name);
          this.deps.logger.warn('publish failed', { eventType: name, error: outcome.error });
        }
        results[p.index] = {
          index: p.index,
          status: 'failed',
          id: p.id,
          code: 'PUBLISH_FAILED',
          reason: `publishing to the topic of ${name} failed; retry later`,
          retryable: true,
        };
      }
      if (--pending === 0) allSettled();
    };
    for (const p of ready) {
      const attributes: EventMessageAttributes = {
        eventType: p.eventType.name,
        schemaFingerprint: p.eventType.current.fingerprint,
        eventId: p.id,
        receiveTime: receiveIso,
        instanceId: audit.instanceId,
      };
      // The audit tracks publishes in flight: an hour's count is final only once none is left.
      audit.publishing(p.eventType.name, hour);
      void publishers
        .get(p.eventType.name)
        .publish(p.data, attributes)
        .then((o) => {
          const answered = results[p.index] !== undefined;
          settle(p, o);
          // Confirmed after its client was told it timed out: delivered, so the audit must know.
          if (answered && o.ok) audit.recordUnreported(p.eventType.name, hour);
          audit.published(p.eventType.name, hour);
        });
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.deps.publishTimeoutMs);
    });
    const late = await Promise.race([done.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      for (const p of ready) {
        settle(p, { ok: false, reason: 'failed', error: new Error(`publish not confirmed within ${this.deps.publishTimeoutMs} ms`) });
      }
    }
  }
}

/**
 * The HTTP status of a batch (README.md): 200 when every event was accepted
 * or rejected for its own reasons; when any event failed for a retryable
 * reason, 503 (429 if all such failures are OVERLOADED) with Retry-After, so
 * a client that looks only at the status retries; it resends only the events
 * marked `retryable` (accepted ones again are harmless: ids deduplicate).
 */
export function batchStatus(results: readonly EventResult[]): 200 | 429 | 503 {
  let overloaded = false;
  let failed = false;
  for (const r of results) {
    if (r.status !== 'failed') continue;
    if (r.code === 'OVERLOADED') overloaded = true;
    else failed = true;
  }
  if (failed) return 503;
  if (overloaded) return 429;
  return 200;
}

function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
