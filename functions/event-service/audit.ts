/**
 * Audit counts (lib/events/contract.ts): per event type and UTC hour of
 * `receiveTime`, how many events this instance reported accepted. The running
 * totals are written every `flushMs` (those that changed, and every
 * `heartbeatMs` those not yet final even if unchanged: the ETL takes an
 * instance whose counts stop being written for its liveness bound as gone).
 *
 * A count becomes **final** once it can no longer grow: at a graceful shutdown
 * (after intake stopped and every publish settled), or for a live instance
 * once the hour ended plus one flush interval with no request and no publish
 * of that hour in flight. A final count is written, folded into the hour's
 * summary object (audit-summary.ts) and the instance's own object deleted.
 *
 * Guarantee: a count is written within one flush interval of the acceptance;
 * a crash loses at most the counts of the last interval (and of intervals
 * whose write failed), so a non-final count can under-count, never
 * over-count; a final count is exact. Events Pub/Sub confirmed after their
 * client was answered with a timeout are counted apart (`unreported`): they
 * are delivered, though no client was told they were accepted.
 *
 * `instanceId` must be unique per process lifetime: a restarted process with
 * the same id would overwrite its predecessor's count with a smaller one.
 */
import { auditObjectName, auditSummaryObjectName, foldAuditCount, type AuditCount, type AuditSummary } from '../../lib/events/contract.ts';
import type { Storage } from '@google-cloud/storage';
import type { Logger } from '../../lib/logger.ts';
import { deleteInstanceObject, foldIntoSummary } from './audit-summary.ts';

const HOUR_MS = 3_600_000;

/** Where audit counts go. */
export interface AuditSink {
  /** Writes (overwrites) the count's object; rejects on failure. */
  write(count: AuditCount): Promise<void>;
  /** Folds a final count into its hour's summary, then deletes the instance's object; rejects on failure. */
  compact(count: AuditCount): Promise<void>;
}

/** Keeps the latest count per object in memory (unit tests, local runs without a bucket). */
export class MemoryAuditSink implements AuditSink {
  readonly objects = new Map<string, AuditCount>();
  readonly summaries = new Map<string, AuditSummary>();
  failNext = 0;

  async write(count: AuditCount): Promise<void> {
    this.maybeFail();
    this.objects.set(auditObjectName(count.eventType, count.hour, count.instanceId), { ...count });
  }

  async compact(count: AuditCount): Promise<void> {
    this.maybeFail();
    const name = auditSummaryObjectName(count.eventType, count.hour);
    this.summaries.set(name, foldAuditCount(this.summaries.get(name), { ...count }));
    this.objects.delete(auditObjectName(count.eventType, count.hour, count.instanceId));
  }

  private maybeFail(): void {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected audit write failure');
    }
  }
}

/** Writes counts as JSON objects to the staging bucket. */
export class GcsAuditSink implements AuditSink {
  constructor(
    private readonly storage: Storage,
    private readonly bucket: string,
  ) {}

  async write(count: AuditCount): Promise<void> {
    const file = this.storage.bucket(this.bucket).file(auditObjectName(count.eventType, count.hour, count.instanceId));
    await file.save(JSON.stringify(count), { resumable: false, contentType: 'application/json', validation: false });
  }

  async compact(count: AuditCount): Promise<void> {
    const bucket = this.storage.bucket(this.bucket);
    await foldIntoSummary(bucket, count);
    await deleteInstanceObject(bucket, count);
  }
}

interface Entry {
  eventType: string;
  hour: string;
  /** Exclusive end of the hour, epoch ms. */
  hourEndMs: number;
  accepted: number;
  unreported: number;
  /** Publishes of this type and hour not settled yet. */
  inFlight: number;
  /** The last count the sink confirmed (accepted, unreported), and when (ms since epoch; 0 = never). */
  flushed: number;
  flushedUnreported: number;
  writtenAt: number;
  /** `written`: the final count is in the instance's object; `compacted`: folded into the summary. */
  final: 'no' | 'written' | 'compacted';
  /** When a count was last recorded (ms since epoch). */
  touchedAt: number;
}

export interface AuditCounterOptions {
  instanceId: string;
  sink: AuditSink;
  flushMs: number;
  logger: Logger;
  /** A count not yet final is rewritten at least this often, unchanged or not (the ETL's liveness signal). Default 30 s. */
  heartbeatMs?: number;
  /**
   * Hours an entry stays in memory after its last count (once final and
   * compacted). Receive times are "now", so an entry untouched for hours is done.
   */
  retainHours?: number;
  now?: () => Date;
}

/** The default `heartbeatMs`; the ETL's liveness bound (etl/config.ts `auditLivenessMs`) must be well above it. */
export const AUDIT_HEARTBEAT_MS = 30_000;

export class AuditCounter {
  private readonly entries = new Map<string, Entry>();
  /** Requests in flight per hour (any type): an hour's counts cannot be final while one of its requests runs. */
  private readonly requests = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  private readonly now: () => Date;

  constructor(private readonly options: AuditCounterOptions) {
    this.now = options.now ?? (() => new Date());
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** A request received in `hour` starts (before its events are known); pair with `requestDone`. */
  requestStarted(hour: string): void {
    this.requests.set(hour, (this.requests.get(hour) ?? 0) + 1);
  }

  requestDone(hour: string): void {
    const n = (this.requests.get(hour) ?? 1) - 1;
    if (n > 0) this.requests.set(hour, n);
    else this.requests.delete(hour);
  }

  /** A publish of an event of `eventType` received in `hour` starts; pair with `published`. */
  publishing(eventType: string, hour: string): void {
    this.entry(eventType, hour).inFlight++;
  }

  published(eventType: string, hour: string): void {
    const e = this.entry(eventType, hour);
    e.inFlight = Math.max(0, e.inFlight - 1);
  }

  /** Counts `n` events of `eventType` accepted with a receive time in `hour` (`YYYY-MM-DDTHH`). */
  record(eventType: string, hour: string, n = 1): void {
    const e = this.entry(eventType, hour);
    e.accepted += n;
    e.touchedAt = this.now().getTime();
  }

  /** Counts an event Pub/Sub confirmed after its client was answered with a timeout. */
  recordUnreported(eventType: string, hour: string): void {
    const e = this.entry(eventType, hour);
    e.unreported++;
    e.touchedAt = this.now().getTime();
  }

  private entry(eventType: string, hour: string): Entry {
    const key = `${eventType}\u0000${hour}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      const hourEndMs = Date.parse(`${hour}:00:00.000Z`) + HOUR_MS;
      e = { eventType, hour, hourEndMs, accepted: 0, unreported: 0, inFlight: 0, flushed: 0, flushedUnreported: 0, writtenAt: 0, final: 'no', touchedAt: this.now().getTime() };
      this.entries.set(key, e);
    }
    if (e.final !== 'no') {
      // Cannot happen while requests and publishes are tracked; if it does, the final count was wrong: say so loudly.
      this.options.logger.error('audit count changed after it was written final', { eventType, hour });
      e.final = 'no';
    }
    return e;
  }

  /** Current count (tests). */
  count(eventType: string, hour: string): number {
    return this.entries.get(`${eventType}\u0000${hour}`)?.accepted ?? 0;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
  }

  /**
   * Graceful shutdown (after intake stopped and publishes settled): stops the
   * periodic flush and writes every count final.
   */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.stopped = true;
    await this.flush();
  }

  /** Writes every count that changed (or is due final, or due a heartbeat). One flush at a time; never throws. */
  flush(): Promise<void> {
    // A flush requested while one runs waits for it, then runs again to catch newer counts.
    const previous = this.flushing ?? Promise.resolve();
    const next = previous.then(() => this.doFlush());
    this.flushing = next.finally(() => {
      if (this.flushing === next) this.flushing = undefined;
    });
    return next;
  }

  private canBeFinal(e: Entry, nowMs: number): boolean {
    if (e.inFlight > 0 || (this.requests.get(e.hour) ?? 0) > 0) return false;
    return this.stopped || nowMs >= e.hourEndMs + this.options.flushMs;
  }

  private async doFlush(): Promise<void> {
    const nowMs = this.now().getTime();
    const updatedAt = new Date(nowMs).toISOString();
    const heartbeatMs = this.options.heartbeatMs ?? AUDIT_HEARTBEAT_MS;
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        if (e.final === 'compacted') return;
        const final = e.final === 'written' || this.canBeFinal(e, nowMs);
        const changed = e.accepted !== e.flushed || e.unreported !== e.flushedUnreported;
        const due = changed || (final && e.final === 'no') || (!final && nowMs - e.writtenAt >= heartbeatMs);
        const count: AuditCount = { eventType: e.eventType, hour: e.hour, instanceId: this.options.instanceId, accepted: e.accepted, updatedAt };
        if (e.unreported > 0) count.unreported = e.unreported;
        if (final) count.final = true;
        try {
          if (due) {
            await this.options.sink.write(count);
            e.flushed = Math.max(e.flushed, count.accepted);
            e.flushedUnreported = Math.max(e.flushedUnreported, count.unreported ?? 0);
            e.writtenAt = nowMs;
            if (final && e.final === 'no') e.final = 'written';
          }
          if (e.final === 'written') {
            await this.options.sink.compact(count);
            e.final = 'compacted';
          }
        } catch (err) {
          this.options.logger.warn('audit count write failed; will retry', { eventType: e.eventType, hour: e.hour, error: err });
        }
      }),
    );
    this.forgetOldHours(nowMs);
  }

  private forgetOldHours(nowMs: number): void {
    const cutoff = nowMs - (this.options.retainHours ?? 3) * HOUR_MS;
    for (const [key, e] of this.entries) {
      if (e.touchedAt < cutoff && e.final === 'compacted') this.entries.delete(key);
    }
  }
}
