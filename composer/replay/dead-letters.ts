/**
 * Replaying a type's dead letters: pull them from its dead-letter subscription,
 * re-publish each to the type's topic with its original data and contract
 * attributes (event id, receive time, fingerprint), and acknowledge the dead
 * letter only once that publish is confirmed. The ETL then treats the event as
 * any redelivery: staged into the period of its receive time, deduplicated by
 * event id when the period closes, or, if the period has closed, written to its
 * late location minus ids the partition already holds. So a replayed event that
 * was delivered already is not delivered twice.
 *
 * Dead letters not replayed (dead-lettered before `since`, without the
 * attributes the ETL needs, or all of them in a dry run) are released for a
 * later run, never acknowledged. Each run handles at most `limit` messages.
 */
import { v1, type protos, type PubSub } from '@google-cloud/pubsub';
import { AppError } from '../../lib/errors.ts';
import { messageAttributes } from '../../lib/events/contract.ts';
import { resourceNames } from '../../lib/names.ts';

/**
 * Attributes the ETL adds when it dead-letters a message (etl/pipeline.ts
 * `deadLetterAttributes`; test/composer/replay.system.test.ts checks both agree),
 * dropped on replay, as are those Pub/Sub adds when it forwards a message after
 * too many delivery attempts.
 */
export const ETL_DEAD_LETTER_ATTRIBUTES = ['etlDeadLetterReason', 'etlErrorCode', 'etlAttempts', 'etlWorker'] as const;
const PUBSUB_DEAD_LETTER_PREFIX = 'CloudPubSubDeadLetterSource';

export interface ReplayOptions {
  eventType: string;
  /** Only dead letters published to the dead-letter topic at or after this time (epoch ms). */
  sinceMs?: number;
  /** Count and classify, publish nothing, acknowledge nothing. */
  dryRun: boolean;
  /** At most this many dead letters handled in one run. */
  limit: number;
  /** How long one pull waits for messages; an empty pull ends the run. */
  pullWaitMs?: number;
}

export interface ReplayResult {
  /** Dead letters received (each once). */
  pulled: number;
  /** Re-published to the type's topic and then acknowledged (0 in a dry run). */
  replayed: number;
  /** Would be replayed (dry run), or were replayed. */
  eligible: number;
  /** Dead-lettered before `since`: left in the subscription. */
  beforeSince: number;
  /** Without an event id or receive time: replaying would dead-letter them again; left in the subscription. */
  unreplayable: number;
  /** Eligible dead letters by the ETL's error code (`etlErrorCode`, `PUBSUB_MAX_DELIVERY` when Pub/Sub forwarded it). */
  byCode: Record<string, number>;
  /** True if the run stopped at `limit` with dead letters possibly left. */
  limited: boolean;
}

const PULL_BATCH = 500;

type ReceivedMessage = protos.google.pubsub.v1.IReceivedMessage;

/** The attributes a dead letter is re-published with: the original ones. */
export function replayAttributes(attributes: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) {
    if ((ETL_DEAD_LETTER_ATTRIBUTES as readonly string[]).includes(k) || k.startsWith(PUBSUB_DEAD_LETTER_PREFIX)) continue;
    out[k] = v;
  }
  return out;
}

/** Why a dead letter cannot be replayed as is, or undefined if it can. */
export function unreplayableReason(attributes: Readonly<Record<string, string>>): string | undefined {
  const id = attributes[messageAttributes.eventId];
  if (id === undefined || id === '') return `no ${messageAttributes.eventId} attribute`;
  if (!Number.isFinite(Date.parse(attributes[messageAttributes.receiveTime] ?? ''))) return `no valid ${messageAttributes.receiveTime} attribute`;
  if ((attributes[messageAttributes.schemaFingerprint] ?? '') === '') return `no ${messageAttributes.schemaFingerprint} attribute`;
  return undefined;
}

function codeOf(attributes: Readonly<Record<string, string>>): string {
  return attributes.etlErrorCode ?? (Object.keys(attributes).some((k) => k.startsWith(PUBSUB_DEAD_LETTER_PREFIX)) ? 'PUBSUB_MAX_DELIVERY' : 'UNKNOWN');
}

/** A protobuf Timestamp (seconds may be a Long) as epoch ms. */
function epochMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  if (t === null || t === undefined) return 0;
  return Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** Replays (or, dry, counts) the type's dead letters. Throws PUBLISH_FAILED if a publish fails; what was acknowledged stays replayed. */
export async function replayDeadLetters(pubsub: PubSub, opts: ReplayOptions): Promise<ReplayResult> {
  const subscriber = new v1.SubscriberClient((await pubsub.getClientConfig()) as ConstructorParameters<typeof v1.SubscriberClient>[0]);
  const subscription = `projects/${pubsub.projectId}/subscriptions/${resourceNames.deadLetterSubscription(opts.eventType)}`;
  const topic = pubsub.topic(resourceNames.topic(opts.eventType), { batching: { maxMessages: 100, maxMilliseconds: 10 } });
  const result: ReplayResult = { pulled: 0, replayed: 0, eligible: 0, beforeSince: 0, unreplayable: 0, byCode: {}, limited: false };
  const seen = new Set<string>();
  /** Ack ids of dead letters left for later: released (deadline 0) when the run ends. */
  const release: string[] = [];
  const waitMs = opts.pullWaitMs ?? 5000;
  try {
    while (result.pulled < opts.limit) {
      let received: ReceivedMessage[];
      try {
        const [response] = await subscriber.pull({ subscription, maxMessages: Math.min(PULL_BATCH, opts.limit - result.pulled) }, { timeout: waitMs, maxRetries: 0 });
        received = response.receivedMessages ?? [];
      } catch (err) {
        // DEADLINE_EXCEEDED: nothing arrived within the wait, the subscription is drained.
        if ((err as { code?: number }).code === 4) break;
        throw err;
      }
      const fresh = received.filter((r) => r.ackId && r.message?.messageId && !seen.has(r.message.messageId));
      // Only dead letters we already hold (redelivered past their deadline) or nothing: drained.
      if (fresh.length === 0) break;
      const publishes: Promise<void>[] = [];
      for (const r of fresh) {
        const message = r.message!;
        seen.add(message.messageId!);
        result.pulled++;
        const attributes = (message.attributes ?? {}) as Record<string, string>;
        if (opts.sinceMs !== undefined && epochMs(message.publishTime) < opts.sinceMs) {
          result.beforeSince++;
          release.push(r.ackId!);
          continue;
        }
        if (unreplayableReason(attributes) !== undefined) {
          result.unreplayable++;
          release.push(r.ackId!);
          continue;
        }
        result.eligible++;
        const code = codeOf(attributes);
        result.byCode[code] = (result.byCode[code] ?? 0) + 1;
        if (opts.dryRun) {
          release.push(r.ackId!);
          continue;
        }
        const data = Buffer.from(message.data ?? new Uint8Array());
        publishes.push(
          topic.publishMessage({ data, attributes: replayAttributes(attributes) }).then(
            async () => {
              // Acknowledged only now: a crash before this leaves the dead letter to replay again, deduplicated downstream.
              await subscriber.acknowledge({ subscription, ackIds: [r.ackId!] });
              result.replayed++;
            },
            (err: unknown) => {
              release.push(r.ackId!);
              throw err;
            },
          ),
        );
      }
      const outcomes = await Promise.allSettled(publishes);
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed !== undefined) {
        throw new AppError('PUBLISH_FAILED', {
          message: `re-publishing to ${resourceNames.topic(opts.eventType)} failed after ${result.replayed} replayed: ${failed.reason instanceof Error ? failed.reason.message : String(failed.reason)}`,
          cause: failed.reason,
        });
      }
    }
    result.limited = result.pulled >= opts.limit;
    return result;
  } finally {
    for (let i = 0; i < release.length; i += PULL_BATCH) {
      await subscriber.modifyAckDeadline({ subscription, ackIds: release.slice(i, i + PULL_BATCH), ackDeadlineSeconds: 0 }).catch(() => undefined);
    }
    await topic.flush().catch(() => undefined);
    await subscriber.close().catch(() => undefined);
  }
}
