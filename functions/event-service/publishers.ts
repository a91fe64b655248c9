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

/**
 * `refused`: Pub/Sub refused this message's content (INVALID_ARGUMENT, e.g.
 * the topic's schema validation), even published alone: not retryable.
 */
export type PublishOutcome =
  | { ok: true }
  | { ok: false; reason: 'budget' }
  | { ok: false; reason: 'failed'; error: unknown }
  | { ok: false; reason: 'refused'; detail: string };

/** gRPC status INVALID_ARGUMENT: the request's content was refused, retrying it as it is cannot help. */
const INVALID_ARGUMENT = 3;

function isInvalidArgument(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === INVALID_ARGUMENT;
}

/** Pub/Sub's own words (gRPC details), bounded; never message data. */
function refusalDetail(error: unknown): string {
  const details = (error as { details?: unknown }).details;
  return typeof details === 'string' && details.length > 0 ? details.slice(0, 200) : 'INVALID_ARGUMENT';
}

/** Publisher of one event type's topic. */
export class TypePublisher {
  private inFlightBytes = 0;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly topic: Topic;
  /** The same topic without batching: a message of a refused batch is retried alone to learn whether it was the cause. */
  private readonly alone: Topic;

  constructor(
    pubsub: PubSub,
    readonly eventType: string,
    private readonly options: PublisherOptions,
  ) {
    // Retrying inside the client would hold the budget for minutes; our caller retries instead.
    const gaxOpts = { timeout: options.publishTimeoutMs };
    this.topic = pubsub.topic(resourceNames.topic(eventType), { batching: options.batching, gaxOpts });
    this.alone = pubsub.topic(resourceNames.topic(eventType), { batching: { maxMessages: 1, maxMilliseconds: 0 }, gaxOpts });
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
    const message = { data, attributes: { ...attributes } };
    // Pub/Sub refuses a whole publish request for one bad message, and the client
    // batches messages of many requests into one: retry each message of a refused
    // batch alone, so only the message at fault is refused.
    const settled = this.topic.publishMessage(message).then(
      (): PublishOutcome => ({ ok: true }),
      (error: unknown): PublishOutcome | Promise<PublishOutcome> =>
        isInvalidArgument(error)
          ? this.alone.publishMessage(message).then(
              (): PublishOutcome => ({ ok: true }),
              (again: unknown): PublishOutcome =>
                isInvalidArgument(again) ? { ok: false, reason: 'refused', detail: refusalDetail(again) } : { ok: false, reason: 'failed', error: again },
            )
          : { ok: false, reason: 'failed', error },
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
    await this.alone.flush().catch(() => undefined);
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
    (attributes.instanceId?.length ?? 0) +
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
