/**
 * Dead letters per type (and per hour of their original receive time), read
 * from each type's dead-letter subscription (`resourceNames.deadLetterSubscription`,
 * acked messages retained) the same way locally and on GCP: a synchronous
 * pull of at most `max` messages, whose leases are given back at once
 * (ack deadline 0), so nothing is acked or removed. Pub/Sub has no count
 * API that both the emulator and Google serve; Cloud Monitoring's
 * `num_undelivered_messages` exists on GCP only, per subscription, and cannot
 * split by hour. A pull may return fewer messages than the subscription holds
 * (Pub/Sub answers from what it has at hand), so a count is a lower bound;
 * a count that reached `max` is shown as `max+`.
 */
import { v1, type PubSub } from '@google-cloud/pubsub';
import { messageAttributes } from '../../lib/events/contract.ts';
import { resourceNames } from '../../lib/names.ts';
import type { Logger } from '../../lib/logger.ts';

export interface DeadLetterCount {
  /** Messages seen (at most `max`). */
  total: number;
  /** True when `max` was reached: there may be more. */
  capped: boolean;
  /** Hour (`YYYY-MM-DDTHH` of the `receiveTime` attribute) → messages; messages without one are in `total` only. */
  byHour: Map<string, number>;
  countedAt: string;
}

/** Pulls per request (Pub/Sub's own cap is 1000). */
const PULL_BATCH = 1000;
/** Bounds one pull; with `returnImmediately` an empty subscription answers at once. */
const PULL_TIMEOUT_MS = 5000;
/** Types counted at once. */
const COUNTS_IN_FLIGHT = 8;

export class DeadLetterCounter {
  private readonly counts = new Map<string, DeadLetterCount>();
  private client: v1.SubscriberClient | undefined;

  constructor(
    private readonly opts: { pubsub: PubSub; projectId: string; max: number; logger: Logger },
  ) {}

  /** The last count of `eventType`, if one was made. */
  get(eventType: string): DeadLetterCount | undefined {
    return this.counts.get(eventType);
  }

  /** Counts every type in turn; a type whose count fails keeps its previous one. */
  async countAll(eventTypes: readonly string[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < eventTypes.length) {
        const t = eventTypes[next++]!;
        try {
          this.counts.set(t, await this.count(t));
        } catch (err) {
          this.opts.logger.warn('dead-letter count failed', { eventType: t, error: err });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(COUNTS_IN_FLIGHT, eventTypes.length) }, worker));
    const known = new Set(eventTypes);
    for (const t of [...this.counts.keys()]) if (!known.has(t)) this.counts.delete(t);
  }

  async close(): Promise<void> {
    await this.client?.close();
  }

  private async subscriber(): Promise<v1.SubscriberClient> {
    if (this.client === undefined) {
      const config = await this.opts.pubsub.getClientConfig();
      this.client = new v1.SubscriberClient({ ...config, port: config.port === undefined ? undefined : Number(config.port) });
    }
    return this.client;
  }

  /** Peeks at up to `max` dead letters of one type and gives them back. */
  async count(eventType: string): Promise<DeadLetterCount> {
    const client = await this.subscriber();
    const subscription = `projects/${this.opts.projectId}/subscriptions/${resourceNames.deadLetterSubscription(eventType)}`;
    const seen = new Set<string>();
    const byHour = new Map<string, number>();
    const ackIds: string[] = [];
    try {
      while (seen.size < this.opts.max) {
        let response;
        try {
          [response] = await client.pull(
            // returnImmediately (discouraged for consuming, where it costs throughput) keeps an empty
            // subscription from holding the count until the pull's deadline.
            { subscription, maxMessages: Math.min(PULL_BATCH, this.opts.max - seen.size), returnImmediately: true },
            { timeout: PULL_TIMEOUT_MS, retry: null },
          );
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          // 4 DEADLINE_EXCEEDED: nothing (more) to pull. 5 NOT_FOUND: the type has no dead-letter subscription (yet).
          if (code === 4) break;
          if (code === 5) return { total: 0, capped: false, byHour, countedAt: new Date().toISOString() };
          throw err;
        }
        const received = response.receivedMessages ?? [];
        if (received.length === 0) break;
        let fresh = 0;
        for (const r of received) {
          if (typeof r.ackId === 'string') ackIds.push(r.ackId);
          const id = r.message?.messageId ?? r.ackId ?? '';
          if (seen.has(id)) continue;
          seen.add(id);
          fresh++;
          const receiveTime = r.message?.attributes?.[messageAttributes.receiveTime];
          if (typeof receiveTime === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}/.test(receiveTime)) {
            const hour = receiveTime.slice(0, 13);
            byHour.set(hour, (byHour.get(hour) ?? 0) + 1);
          }
        }
        if (fresh === 0) break;
      }
    } finally {
      // Give every lease back at once: the messages stay for replay and the next count.
      for (let i = 0; i < ackIds.length; i += PULL_BATCH) {
        await client.modifyAckDeadline({ subscription, ackIds: ackIds.slice(i, i + PULL_BATCH), ackDeadlineSeconds: 0 }).catch((err: unknown) => {
          this.opts.logger.warn('dead-letter lease release failed', { eventType, error: err });
        });
      }
    }
    return { total: seen.size, capped: seen.size >= this.opts.max, byHour, countedAt: new Date().toISOString() };
  }
}
