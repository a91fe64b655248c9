/**
 * Audit counts (lib/events/contract.ts): per event type and UTC hour of
 * `receiveTime`, how many events this instance reported accepted. The running
 * totals are written every `flushMs` (only those that changed) and on shutdown,
 * each as one JSON object per (type, hour, instance) overwritten as it grows.
 *
 * Guarantee: a count is written within one flush interval of the acceptance;
 * a crash loses at most the counts of the last interval (and of intervals
 * whose write failed), so the audit can under-count, never over-count. The
 * ETL treats the audit as a lower bound: it closes a partition when it has
 * delivered at least the audited count, or at the type's SLO deadline at the
 * latest, and records the audit result in the manifest.
 *
 * `instanceId` must be unique per process lifetime: a restarted process with
 * the same id would overwrite its predecessor's count with a smaller one.
 */
import { auditObjectName, type AuditCount } from '../../lib/events/contract.ts';
import type { Storage } from '@google-cloud/storage';
import type { Logger } from '../../lib/logger.ts';

/** Where audit counts go. */
export interface AuditSink {
  /** Writes (overwrites) the count's object; rejects on failure. */
  write(count: AuditCount): Promise<void>;
}

/** Keeps the latest count per object in memory (unit tests, local runs without a bucket). */
export class MemoryAuditSink implements AuditSink {
  readonly objects = new Map<string, AuditCount>();
  failNext = 0;

  async write(count: AuditCount): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected audit write failure');
    }
    this.objects.set(auditObjectName(count.eventType, count.hour, count.instanceId), { ...count });
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
}

interface Entry {
  eventType: string;
  hour: string;
  accepted: number;
  /** Last count the sink confirmed. */
  flushed: number;
  /** When a count was last recorded (ms since epoch). */
  touchedAt: number;
}

export interface AuditCounterOptions {
  instanceId: string;
  sink: AuditSink;
  flushMs: number;
  logger: Logger;
  /**
   * Hours an entry stays in memory after its last count (once flushed). Forgetting
   * an entry that is counted again later would overwrite its object with a smaller
   * count; receive times are "now", so an entry untouched for hours is done.
   */
  retainHours?: number;
  now?: () => Date;
}

export class AuditCounter {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly now: () => Date;

  constructor(private readonly options: AuditCounterOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Counts `n` events of `eventType` accepted with a receive time in `hour` (`YYYY-MM-DDTHH`). */
  record(eventType: string, hour: string, n = 1): void {
    const key = `${eventType}\u0000${hour}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      e = { eventType, hour, accepted: 0, flushed: 0, touchedAt: 0 };
      this.entries.set(key, e);
    }
    e.accepted += n;
    e.touchedAt = this.now().getTime();
  }

  /** Current count (tests). */
  count(eventType: string, hour: string): number {
    return this.entries.get(`${eventType}\u0000${hour}`)?.accepted ?? 0;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
  }

  /** Stops the periodic flush and writes what is left. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Writes every count that changed since its last write. One flush at a time; never throws. */
  flush(): Promise<void> {
    // A flush requested while one runs waits for it, then runs again to catch newer counts.
    const previous = this.flushing ?? Promise.resolve();
    const next = previous.then(() => this.doFlush());
    this.flushing = next.finally(() => {
      if (this.flushing === next) this.flushing = undefined;
    });
    return next;
  }

  private async doFlush(): Promise<void> {
    const dirty = [...this.entries.values()].filter((e) => e.accepted !== e.flushed);
    const updatedAt = this.now().toISOString();
    await Promise.all(
      dirty.map(async (e) => {
        const accepted = e.accepted;
        try {
          await this.options.sink.write({ eventType: e.eventType, hour: e.hour, instanceId: this.options.instanceId, accepted, updatedAt });
          e.flushed = Math.max(e.flushed, accepted);
        } catch (err) {
          this.options.logger.warn('audit count write failed; will retry', { eventType: e.eventType, hour: e.hour, error: err });
        }
      }),
    );
    this.forgetOldHours();
  }

  private forgetOldHours(): void {
    const cutoff = this.now().getTime() - (this.options.retainHours ?? 3) * 3_600_000;
    for (const [key, e] of this.entries) {
      if (e.touchedAt < cutoff && e.accepted === e.flushed) this.entries.delete(key);
    }
  }
}
