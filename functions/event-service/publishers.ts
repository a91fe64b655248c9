/**
 * One Pub/Sub publisher per event type, each with its own batching and its
 * own budget of in-flight bytes. A type whose topic is slow or failing fills
 * only its own budget; its further events are refused at once (OVERLOADED,
 * retryable) instead of queuing without bound, and other types are untouched.
 */
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { resourceNames } from '../../lib/names.ts';
import type { EventMessageAttributes } from '../../lib/events/contract.ts';

export interface PublisherOptions {
  /** Bytes (data + attributes) a type may have waiting for Pub/Sub's confirmation. */
  budgetBytes: number;
  /** Pub/Sub client batching for each type's topic. */
  batching: { maxMessages: number; maxMilliseconds: number; maxBytes: number };
  /** Deadline of one publish RPC in the client. */
  publishTimeoutMs: number;
}

export type PublishOutcome = { ok: true } | { ok: false; reason: 'budget' } | { ok: false; reason: 'failed'; error: unknown };

/** Publisher of one event type's topic. */
export class TypePublisher {
  private inFlightBytes = 0;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly topic: Topic;

  constructor(
    pubsub: PubSub,
    readonly eventType: string,
    private readonly options: PublisherOptions,
  ) {
    this.topic = pubsub.topic(resourceNames.topic(eventType), {
      batching: options.batching,
      // Retrying inside the client would hold the budget for minutes; our caller retries instead.
      gaxOpts: { timeout: options.publishTimeoutMs },
    });
  }

  /** Bytes currently waiting for confirmation. */
  get bytesInFlight(): number {
    return this.inFlightBytes;
  }

  /**
   * Publishes one message if the type's budget has room. Resolves (never
   * rejects) once Pub/Sub confirmed or failed it; the caller bounds the wait.
   */
  publish(data: Buffer, attributes: EventMessageAttributes): Promise<PublishOutcome> {
    const size = messageSize(data, attributes);
    // An empty budget always admits one message, so an event within the size limit is never refused for ever.
    if (this.inFlightBytes > 0 && this.inFlightBytes + size > this.options.budgetBytes) {
      return Promise.resolve({ ok: false, reason: 'budget' });
    }
    this.inFlightBytes += size;
    const confirmed = this.topic.publishMessage({ data, attributes: { ...attributes } });
    const settled = confirmed.then(
      (): PublishOutcome => ({ ok: true }),
      (error: unknown): PublishOutcome => ({ ok: false, reason: 'failed', error }),
    );
    // The budget is held until Pub/Sub answers, even past our timeout: that is what bounds memory.
    const tracked = settled.finally(() => {
      this.inFlightBytes -= size;
      this.pending.delete(tracked);
    });
    this.pending.add(tracked);
    return settled;
  }

  /** Sends what is batched and waits for every outstanding publish to settle. */
  async drain(): Promise<void> {
    await this.topic.flush().catch(() => undefined);
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

/** Approximate bytes a message holds in memory and on the wire. */
export function messageSize(data: Buffer, attributes: EventMessageAttributes): number {
  return (
    data.length +
    attributes.eventType.length +
    attributes.schemaFingerprint.length +
    attributes.eventId.length +
    attributes.receiveTime.length +
    64
  );
}

/** The per-type publishers of one service instance, created on first use. */
export class PublisherPool {
  private readonly publishers = new Map<string, TypePublisher>();

  constructor(
    private readonly pubsub: PubSub,
    private readonly options: PublisherOptions,
  ) {}

  get(eventType: string): TypePublisher {
    let p = this.publishers.get(eventType);
    if (p === undefined) {
      p = new TypePublisher(this.pubsub, eventType, this.options);
      this.publishers.set(eventType, p);
    }
    return p;
  }

  all(): TypePublisher[] {
    return [...this.publishers.values()];
  }

  async drain(): Promise<void> {
    await Promise.all(this.all().map((p) => p.drain()));
  }
}
