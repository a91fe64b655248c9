/**
 * One event type's pipeline: its own subscriber (streaming pull, flow
 * control), decode with the writer schema named by the fingerprint,
 * transform in batches, stage, and a periodic closer. Nothing here is shared
 * with other types' pipelines, so one failing type does not slow the others.
 */
import type { Message, PubSub, Subscription, Topic } from '@google-cloud/pubsub';
import { Duration } from '@google-cloud/pubsub';
import { AppError, toAppError } from '../lib/errors.ts';
import { isInstanceId, messageAttributes } from '../lib/events/contract.ts';
import { resourceNames } from '../lib/names.ts';
import { Backoff, sleep } from './backoff.ts';
import { PartitionCloser, type CloserHooks } from './closer.ts';
import { LateWriter } from './late.ts';
import { Stager, type PendingRecord } from './stager.ts';
import type { StagedRecord } from './envelope.ts';
import { compileSkipper, decodeExactDatum, isExactDatum } from '../lib/avro/skip.ts';
import { identityTransform, notOneDatum, type EncodedOutput, type RecordTransform } from './transform.ts';
import type { TypeContext } from './context.ts';
import type { ResolvedVersion } from './schemas.ts';
import type { PipelineMetrics } from './metrics.ts';

interface Decoded {
  message: Message;
  eventId: string;
  receiveTime: number;
  resolved: ResolvedVersion;
  /** The decoded record, only for a transform without `transformEncodedBatch`. */
  record: unknown;
}

/** Attributes the worker adds to a dead-lettered message. */
export const deadLetterAttributes = {
  reason: 'etlDeadLetterReason',
  code: 'etlErrorCode',
  attempts: 'etlAttempts',
  worker: 'etlWorker',
} as const;

export interface PipelineOptions {
  ctx: TypeContext;
  pubsub: PubSub;
  transform?: RecordTransform;
  closerHooks?: CloserHooks;
  /** Run the periodic closer (default true). */
  closeEnabled?: boolean;
  /** Called when a record of a refused schema version (personal fields in clear) shows up. */
  onRefusedVersion?: (fingerprint: string) => void;
}

export class TypePipeline {
  readonly closer: PartitionCloser;
  readonly stager: Stager;
  private readonly ctx: TypeContext;
  private readonly transform: RecordTransform;
  /** The transform takes decoded records (no `transformEncodedBatch`, not the identity). */
  private readonly needsObjects: boolean;
  private readonly deadLetterTopic: Topic;
  private subscription: Subscription | undefined;
  private readonly transformQueue: Decoded[] = [];
  private transforming = false;
  private scheduled = false;
  private closing = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private closerRun: Promise<void> | undefined;
  private readonly transformBackoff: Backoff;
  private readonly abort = new AbortController();

  constructor(private readonly opts: PipelineOptions) {
    this.ctx = opts.ctx;
    this.transform = opts.transform ?? identityTransform;
    this.needsObjects = this.transform !== identityTransform && this.transform.transformEncodedBatch === undefined;
    const late = new LateWriter(this.ctx);
    this.closer = new PartitionCloser(this.ctx, late, opts.closerHooks);
    this.stager = new Stager(this.ctx, this.closer, late);
    this.deadLetterTopic = opts.pubsub.topic(resourceNames.deadLetterTopic(this.ctx.eventType), {
      batching: { maxMessages: 100, maxMilliseconds: 20 },
    });
    this.transformBackoff = new Backoff(this.ctx.tuning.backoffInitialMs, this.ctx.tuning.backoffMaxMs);
  }

  get eventType(): string {
    return this.ctx.eventType;
  }

  get metrics(): PipelineMetrics {
    return this.ctx.metrics;
  }

  start(): void {
    this.stager.start();
    this.openSubscription();
    if (this.opts.closeEnabled !== false) {
      this.closeTimer = setInterval(() => void this.runCloser(), this.ctx.tuning.closeCheckIntervalMs);
      this.closeTimer.unref();
    }
  }

  /** One closer pass now (tests; also what the timer runs). */
  runCloser(): Promise<void> {
    if (this.closerRun !== undefined) return this.closerRun;
    this.closerRun = this.closer
      .checkAll()
      .catch((err: unknown) => this.ctx.logger.warn('closer pass failed', { error: err as Error }))
      .finally(() => {
        this.closerRun = undefined;
      });
    return this.closerRun;
  }

  /** Stops pulling, writes what is buffered (bounded wait), nacks the rest. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.closeTimer !== undefined) clearInterval(this.closeTimer);
    await this.waitTransforms(this.ctx.tuning.shutdownTimeoutMs);
    await this.stager.drain(this.ctx.tuning.shutdownTimeoutMs);
    this.abort.abort();
    this.stager.stop();
    for (const d of this.transformQueue.splice(0)) d.message.nack();
    await this.subscription?.close().catch(() => undefined);
    await this.closerRun;
    await this.deadLetterTopic.flush().catch(() => undefined);
  }

  private async waitTransforms(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while ((this.transforming || this.transformQueue.length > 0) && Date.now() < end) {
      this.kickTransform();
      await sleep(20);
    }
  }

  private openSubscription(): void {
    const { tuning } = this.ctx;
    const sub = this.opts.pubsub.subscription(resourceNames.etlSubscription(this.ctx.eventType), {
      flowControl: { maxMessages: tuning.maxMessagesInFlight, maxBytes: tuning.maxBytesInFlight, allowExcessMessages: false },
      streamingOptions: { maxStreams: tuning.maxStreams },
      maxExtensionTime: Duration.from({ minutes: 60 }),
      closeOptions: { behavior: 'NACK' },
    });
    sub.on('message', (m: Message) => this.onMessage(m));
    const backoff = new Backoff(1000, 30_000);
    sub.on('error', (err: Error) => {
      if (this.closing) return;
      this.ctx.logger.warn('subscriber error; reopening', { error: err });
      void sub.close().catch(() => undefined);
      void sleep(backoff.next(), this.abort.signal).then((ok) => {
        if (ok && !this.closing) this.openSubscription();
      });
    });
    this.subscription = sub;
  }

  private onMessage(m: Message): void {
    if (this.closing) {
      m.nack();
      return;
    }
    this.ctx.metrics.received++;
    const a = m.attributes;
    const eventId = a[messageAttributes.eventId];
    const fingerprint = a[messageAttributes.schemaFingerprint];
    const receiveTime = Date.parse(a[messageAttributes.receiveTime] ?? '');
    if (eventId === undefined || eventId === '' || fingerprint === undefined || !Number.isFinite(receiveTime)) {
      void this.deadLetter(m, 'BAD_REQUEST', 'message attributes eventId, schemaFingerprint and receiveTime are required', 1);
      return;
    }
    const instanceId = a[messageAttributes.instanceId];
    if (instanceId !== undefined && !isInstanceId(instanceId)) {
      void this.deadLetter(m, 'BAD_REQUEST', 'message attribute instanceId must be 1-128 letters, digits, . _ or -', 1);
      return;
    }
    const resolved = this.ctx.schemas.get(fingerprint);
    // Unknown fingerprint or corrupt bytes: retried after a registry refresh, then dead-lettered.
    if (resolved === undefined || !this.decodeAndEnqueue(m, eventId, receiveTime, resolved)) void this.decodeSlowly(m, eventId, receiveTime, fingerprint);
  }

  /** Unknown fingerprint or undecodable bytes: retry with registry refreshes, then dead-letter. */
  private async decodeSlowly(m: Message, eventId: string, receiveTime: number, fingerprint: string): Promise<void> {
    const attempts = this.ctx.tuning.decodeAttempts;
    let reason = 'unknown schema fingerprint';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.ctx.schemas.refresh(attempt > 1);
      } catch (err) {
        // registry down: not the record's fault, keep it un-acked for a later delivery
        this.ctx.logger.warn('registry refresh failed', { error: err as Error });
        m.nack();
        return;
      }
      if (this.ctx.schemas.isRefused(fingerprint)) {
        // would be staged in clear: keep it un-acked (not dead-lettered) until encryption is configured
        m.nack();
        this.opts.onRefusedVersion?.(fingerprint);
        return;
      }
      const resolved = this.ctx.schemas.get(fingerprint);
      if (resolved !== undefined) {
        if (this.decodeAndEnqueue(m, eventId, receiveTime, resolved)) return;
        reason = notOneDatum.reason;
      }
      if (attempt < attempts) await sleep(this.ctx.tuning.schemaRefreshMinMs, this.abort.signal);
    }
    await this.deadLetter(m, 'DECODE_FAILED', reason, attempts);
  }

  /**
   * Checks that `m` holds exactly one datum of its writer schema and enqueues
   * it; false if it does not. Only a transform that works on objects gets the
   * record decoded; the identity path and a byte transform never build it,
   * and one that `checksEncoded` checks the bytes itself.
   */
  private decodeAndEnqueue(m: Message, eventId: string, receiveTime: number, resolved: ResolvedVersion): boolean {
    let record: unknown;
    if (this.needsObjects) {
      const decoded = decodeExactDatum(resolved.writerType, m.data);
      if (decoded === undefined) return false;
      record = decoded.value;
    } else if (this.transform.checksEncoded !== true && !isExactDatum(compileSkipper(resolved.writerType), m.data)) return false;
    this.enqueue({ message: m, eventId, receiveTime, resolved, record });
    return true;
  }

  private enqueue(d: Decoded): void {
    this.transformQueue.push(d);
    if (this.transformQueue.length >= this.ctx.tuning.transformBatchSize) this.kickTransform();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.kickTransform();
      });
    }
  }

  private kickTransform(): void {
    if (this.transforming || this.transformQueue.length === 0) return;
    this.transforming = true;
    void (async () => {
      try {
        while (this.transformQueue.length > 0) {
          await this.transformAndStage(this.transformQueue.splice(0, this.ctx.tuning.transformBatchSize));
        }
      } finally {
        this.transforming = false;
      }
    })();
  }

  private async transformAndStage(batch: Decoded[]): Promise<void> {
    const identity = this.transform === identityTransform;
    let outputs: EncodedOutput[] | undefined;
    while (outputs === undefined) {
      if (identity) {
        // The message bytes are the delivered bytes.
        outputs = batch.map((d) => ({ payload: d.message.data }));
        break;
      }
      try {
        outputs = await this.transformBatch(batch);
        if (outputs.length !== batch.length) throw new AppError('INTERNAL', { message: 'transform returned a different number of records' });
        this.transformBackoff.reset();
      } catch (err) {
        const e = toAppError(err);
        this.ctx.metrics.transformFailures++;
        if (!e.retryable) {
          for (const d of batch) void this.deadLetter(d.message, e.code, `transform failed: ${e.code}`, 1);
          return;
        }
        if (this.closing) {
          for (const d of batch) d.message.nack();
          return;
        }
        const delay = this.transformBackoff.next();
        this.ctx.logger.warn('transform failed; backing off with messages un-acked', { delayMs: delay, code: e.code });
        await sleep(delay, this.abort.signal);
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i]!;
      const out = outputs[i]!;
      if (out.rejected !== undefined) {
        // This record alone can never be delivered: dead-letter it, the rest of the batch goes on.
        this.ctx.metrics.transformFailures++;
        void this.deadLetter(d.message, out.rejected.code, out.rejected.reason, 1);
        continue;
      }
      const payload = out.payload;
      if (payload === undefined) {
        void this.deadLetter(d.message, 'DECODE_FAILED', 'transformed record does not match the delivered schema', 1);
        continue;
      }
      this.stager.add(
        new PendingMessage(
          { eventId: d.eventId, receiveTime: d.receiveTime, schemaFingerprint: d.resolved.version.fingerprint, stats: out.stats ?? NO_STATS, record: payload, ...(d.message.attributes[messageAttributes.instanceId] ? { instanceId: d.message.attributes[messageAttributes.instanceId] } : {}) },
          d.message,
          this.ctx.metrics,
        ),
      );
    }
  }

  /** The transform's delivered bytes of a batch: from the message bytes, or (an object transform) decoded records re-encoded. */
  private async transformBatch(batch: Decoded[]): Promise<EncodedOutput[]> {
    const eventType = this.ctx.eventType;
    if (this.transform.transformEncodedBatch !== undefined) {
      return this.transform.transformEncodedBatch(
        eventType,
        batch.map((d) => ({ bytes: d.message.data, version: d.resolved.version, eventId: d.eventId, writerType: d.resolved.writerType, deliveredType: d.resolved.deliveredType })),
      );
    }
    const outputs = await this.transform.transformBatch(
      eventType,
      batch.map((d) => ({ record: d.record, version: d.resolved.version, eventId: d.eventId })),
    );
    return outputs.map((out, i) => {
      if (out.rejected !== undefined) return { rejected: out.rejected };
      let payload: Buffer | undefined;
      try {
        payload = batch[i]!.resolved.deliveredType.toBuffer(out.record);
      } catch {
        payload = undefined; // dead-lettered by the caller: does not match the delivered schema
      }
      return { payload, ...(out.stats ? { stats: out.stats } : {}) };
    });
  }

  /** Publishes the message to the type's dead-letter topic (reason in attributes), then acks it. */
  private async deadLetter(m: Message, code: string, reason: string, attempts: number): Promise<void> {
    const backoff = new Backoff(this.ctx.tuning.backoffInitialMs, this.ctx.tuning.backoffMaxMs);
    for (;;) {
      try {
        await this.deadLetterTopic.publishMessage({
          data: m.data,
          attributes: {
            ...m.attributes,
            [deadLetterAttributes.reason]: reason,
            [deadLetterAttributes.code]: code,
            [deadLetterAttributes.attempts]: String(attempts),
            [deadLetterAttributes.worker]: this.ctx.instanceId,
          },
        });
        this.ctx.metrics.deadLettered++;
        this.ctx.logger.warn('record dead-lettered', { code, reason, messageId: m.id });
        m.ack();
        return;
      } catch (err) {
        if (this.closing) {
          m.nack();
          return;
        }
        this.ctx.logger.warn('dead-letter publish failed; retrying', { error: err as Error });
        await sleep(backoff.next(), this.abort.signal);
      }
    }
  }
}

/** A staged record and its message's ack/nack, counted (a class: no closures per message). */
class PendingMessage implements PendingRecord {
  constructor(
    readonly staged: StagedRecord,
    private readonly message: Message,
    private readonly metrics: PipelineMetrics,
  ) {}

  ack(): void {
    this.metrics.acked++;
    this.message.ack();
  }

  nack(): void {
    this.metrics.nacked++;
    this.message.nack();
  }
}

/** Shared empty stats of records whose transform gives none (the envelope writer only reads it). */
const NO_STATS: Record<string, number> = Object.freeze({}) as Record<string, number>;

