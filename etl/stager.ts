/**
 * Staging: records are buffered per period (UTC hour or day of their receive
 * time) and flushed by size or age into a content-named staged file
 * (`ifGenerationMatch: 0`; 412 = already there = success). A message is acked
 * only once the file holding it is written; storage failures back off
 * (exponential, jittered, capped) with the messages kept un-acked, so flow
 * control pauses the pull instead of a redelivery hot loop. A sharded type
 * (`ctx.shards` > 1) buffers per period and shard (`shardOf(eventId)`) and
 * writes each shard's files in its own folder.
 */
import { periodOf, type Period } from '../lib/partitions.ts';
import { Backoff, sleep } from './backoff.ts';
import { compareIds, idSetHash, type StagedRecord } from './envelope.ts';
import { buildStagedFile, STAGED_COUNT_KEY } from './files.ts';
import { distinctPerInstance, encodeInstanceCounts, STAGED_INSTANCES_KEY } from './completeness.ts';
import { stagedObjectName } from './layout.ts';
import { shardOf, type Shard } from './shards.ts';
import { createIfAbsent } from './storage-io.ts';
import type { TypeContext } from './context.ts';
import type { PartitionCloser } from './closer.ts';
import type { LateWriter } from './late.ts';

/** A record waiting for durability, with its message's ack/nack. */
export interface PendingRecord {
  staged: StagedRecord;
  ack(): void;
  nack(): void;
}

interface PeriodBuffer {
  period: Period;
  /** Undefined for an unsharded type. */
  shard: Shard | undefined;
  items: PendingRecord[];
  bytes: number;
  since: number;
}

export class Stager {
  private readonly buffers = new Map<string, PeriodBuffer>();
  private readonly queue: { period: Period; shard: Shard | undefined; items: PendingRecord[] }[] = [];
  private active = 0;
  private readonly idle: (() => void)[] = [];
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private lastFailureLog = 0;

  constructor(
    private readonly ctx: TypeContext,
    private readonly closer: PartitionCloser,
    private readonly late: LateWriter,
  ) {
    this.backoff = new Backoff(ctx.tuning.backoffInitialMs, ctx.tuning.backoffMaxMs);
  }

  start(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.ctx.tuning.flushAgeMs / 2)));
    this.timer = setInterval(() => this.flushAged(), every);
    this.timer.unref();
  }

  /** Records buffered or being written (not yet acked). */
  get pending(): number {
    let n = 0;
    for (const b of this.buffers.values()) n += b.items.length;
    for (const j of this.queue) n += j.items.length;
    return n + this.active;
  }

  /** True while uploads are failing and backing off. */
  get backingOff(): boolean {
    return this.backoff.failures > 0;
  }

  add(item: PendingRecord): void {
    const period = periodOf(item.staged.receiveTime, this.ctx.granularity);
    const shards = this.ctx.shards ?? 1;
    const shard = shards > 1 ? { index: shardOf(item.staged.eventId, shards), count: shards } : undefined;
    const key = shard === undefined ? period.key : `${period.key}/${shard.index}`;
    let buf = this.buffers.get(key);
    if (buf === undefined) {
      buf = { period, shard, items: [], bytes: 0, since: this.ctx.now() };
      this.buffers.set(key, buf);
    }
    buf.items.push(item);
    buf.bytes += item.staged.record.length + item.staged.eventId.length + 32;
    if (buf.items.length >= this.ctx.tuning.flushRecords || buf.bytes >= this.ctx.tuning.flushBytes) this.flush(key);
  }

  /** Flushes every buffer now (shutdown, tests). */
  flushAll(): void {
    for (const key of [...this.buffers.keys()]) this.flush(key);
  }

  /** Resolves once nothing is buffered or in flight, or after `timeoutMs` (false). */
  async drain(timeoutMs: number): Promise<boolean> {
    this.flushAll();
    if (this.active === 0 && this.queue.length === 0) return true;
    const done = new Promise<true>((resolve) => this.idle.push(() => resolve(true)));
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    return Promise.race([done, timeout]);
  }

  /** Stops retrying: what is not durable yet is nacked, for another worker to take. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.abort.abort();
    for (const b of this.buffers.values()) for (const i of b.items) i.nack();
    this.buffers.clear();
    for (const j of this.queue.splice(0)) for (const i of j.items) i.nack();
  }

  private flushAged(): void {
    const now = this.ctx.now();
    for (const [key, b] of this.buffers) if (now - b.since >= this.ctx.tuning.flushAgeMs) this.flush(key);
  }

  private flush(key: string): void {
    const buf = this.buffers.get(key);
    if (buf === undefined) return;
    this.buffers.delete(key);
    this.queue.push({ period: buf.period, shard: buf.shard, items: buf.items });
    this.pump();
  }

  private pump(): void {
    while (this.active < this.ctx.tuning.flushConcurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active++;
      void this.runJob(job.period, job.shard, job.items).finally(() => {
        this.active--;
        this.pump();
        if (this.active === 0 && this.queue.length === 0) for (const f of this.idle.splice(0)) f();
      });
    }
  }

  private async runJob(period: Period, shard: Shard | undefined, items: PendingRecord[]): Promise<void> {
    for (;;) {
      if (this.abort.signal.aborted) {
        for (const i of items) i.nack();
        return;
      }
      try {
        await this.write(period, shard, items);
        this.backoff.reset();
        for (const i of items) i.ack();
        return;
      } catch (err) {
        this.ctx.metrics.storageFailures++;
        const delay = this.backoff.next();
        const now = Date.now();
        if (now - this.lastFailureLog > 5000) {
          this.lastFailureLog = now;
          this.ctx.logger.warn('staging write failed; backing off with messages un-acked', { period: period.key, delayMs: delay, error: err as Error });
        }
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /**
   * Writes one buffer. The staged file holds every message it acks, a
   * redelivery within the buffer included, so the closer's dedup counts it
   * in `audit.duplicatesDropped` like a redelivery staged in another file.
   */
  private async write(period: Period, shard: Shard | undefined, items: PendingRecord[]): Promise<void> {
    const records = items.map((i) => i.staged);
    if (await this.closer.isClosed(period)) {
      await this.late.write(period, records);
      return;
    }
    records.sort(stagedOrder);
    const ids = [...new Set(records.map((r) => r.eventId))];
    const name = stagedObjectName(this.ctx.eventType, period, idSetHash(ids), shard);
    // Distinct ids per accepting instance: the closer's per-instance completeness check reads them without the file.
    const byInstance = distinctPerInstance(records);
    const instanceCounts = encodeInstanceCounts(byInstance);
    await createIfAbsent(this.ctx.staging, name, buildStagedFile(name, this.ctx.eventType, period, records), {
      contentType: 'avro/binary',
      metadata: { [STAGED_COUNT_KEY]: String(records.length), ...(instanceCounts === undefined ? {} : { [STAGED_INSTANCES_KEY]: instanceCounts }) },
    });
    this.closer.noteStaged(period, name, { records: records.length, byInstance: instanceCounts === undefined ? undefined : byInstance });
    this.ctx.metrics.stagedFiles++;
    this.ctx.metrics.stagedRecords += ids.length;
    this.ctx.telemetry?.staged(records);
  }
}

/** Id order, duplicates in a fixed order too, so the same messages give the same bytes. */
function stagedOrder(a: StagedRecord, b: StagedRecord): number {
  return compareIds(a.eventId, b.eventId) || compareIds(a.schemaFingerprint, b.schemaFingerprint) || a.receiveTime - b.receiveTime || Buffer.compare(a.record, b.record);
}
