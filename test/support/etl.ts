/**
 * Helpers for the ETL's tests and benchmark (not used by the workers): event
 * type records, publishing per the message contract, audit objects, and
 * reading closed partitions back.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { avroType } from '../../lib/avro/long.ts';
import { schemaFingerprint } from '../../lib/avro/fingerprint.ts';
import { auditObjectName, type AuditCount } from '../../lib/events/contract.ts';
import { resourceNames } from '../../lib/names.ts';
import { readManifest, type Manifest, type Period } from '../../lib/partitions.ts';
import type { AvroSchemaJson, EventTypeRecord, Partitioning, Priority } from '../../lib/registry/types.ts';
import { decodeRecords, readContainer } from '../../lib/avro/container.ts';

export const pageViewSchema: AvroSchemaJson = {
  type: 'record',
  name: 'PageView',
  namespace: 'com.example',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'url', type: 'string' },
    { name: 'durationMs', type: 'long' },
  ],
};

export const pageViewSchemaV2: AvroSchemaJson = {
  ...pageViewSchema,
  fields: [...(pageViewSchema.fields as object[]), { name: 'referrer', type: ['null', 'string'], default: null }],
};

export function eventTypeRecord(
  name: string,
  schemas: AvroSchemaJson[] = [pageViewSchema],
  opts: { priority?: Priority; partitioning?: Partitioning } = {},
): EventTypeRecord {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    settings: {
      name,
      owner: 'team-test',
      description: 'test type',
      priority: opts.priority ?? 'normal',
      storage: ['gcs'],
      partitioning: opts.partitioning ?? 'hourly',
      retentionDays: 30,
      compatibility: 'BACKWARD_TRANSITIVE',
    },
    versions: schemas.map((schema, i) => ({ version: i + 1, fingerprint: schemaFingerprint(schema), schema, createdAt: at })),
    status: 'active',
    provisioning: { state: 'provisioned', resources: {}, updatedAt: at },
    revision: 0,
    createdAt: at,
    updatedAt: at,
  };
}

/** Creates the type's topic, ETL subscription and dead-letter topic + subscription. */
export async function provisionType(pubsub: PubSub, eventType: string): Promise<{ topic: Topic }> {
  const [topic] = await pubsub.createTopic(resourceNames.topic(eventType));
  await topic.createSubscription(resourceNames.etlSubscription(eventType), { ackDeadlineSeconds: 30 });
  const [dlq] = await pubsub.createTopic(resourceNames.deadLetterTopic(eventType));
  await dlq.createSubscription(resourceNames.deadLetterSubscription(eventType));
  return { topic };
}

export interface TestEvent {
  eventId: string;
  receiveTime: number;
  payload: Record<string, unknown>;
}

/**
 * Publishes events as the event service does (lib/events/contract.ts), as
 * accepted by `instanceId` (the instance `writeAudit` counts for by default);
 * `null` publishes as a direct producer (no instance).
 */
export async function publishEvents(
  topic: Topic,
  eventType: string,
  schema: AvroSchemaJson,
  events: readonly TestEvent[],
  instanceId: string | null = 'test-instance',
): Promise<void> {
  const type = avroType(schema);
  const fingerprint = schemaFingerprint(schema);
  const batchTopic = topic.pubsub.topic(topic.name, { batching: { maxMessages: 1000, maxMilliseconds: 10 } });
  const chunk = 2000;
  for (let i = 0; i < events.length; i += chunk) {
    await Promise.all(
      events.slice(i, i + chunk).map((e) =>
        batchTopic.publishMessage({
          data: type.toBuffer(e.payload),
          attributes: {
            eventType,
            schemaFingerprint: fingerprint,
            eventId: e.eventId,
            receiveTime: new Date(e.receiveTime).toISOString(),
            ...(instanceId === null ? {} : { instanceId }),
          },
        }),
      ),
    );
  }
}

/**
 * Writes the accepted counts of `events` as one event-service instance would
 * (per hour), final by default (as its graceful shutdown writes them).
 */
export async function writeAudit(
  storage: Storage,
  stagingBucket: string,
  eventType: string,
  events: readonly TestEvent[],
  instanceId = 'test-instance',
  opts: { final?: boolean; updatedAt?: Date } = {},
): Promise<void> {
  const perHour = new Map<string, number>();
  for (const e of events) {
    const hour = new Date(e.receiveTime).toISOString().slice(0, 13);
    perHour.set(hour, (perHour.get(hour) ?? 0) + 1);
  }
  for (const [hour, accepted] of perHour) {
    const count: AuditCount = { eventType, hour, instanceId, accepted, updatedAt: (opts.updatedAt ?? new Date()).toISOString() };
    if (opts.final ?? true) count.final = true;
    await storage.bucket(stagingBucket).file(auditObjectName(eventType, hour, instanceId)).save(JSON.stringify(count), { resumable: false });
  }
}

export function makeEvents(n: number, receiveTime: (i: number) => number, prefix = 'ev'): TestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    eventId: `${prefix}-${String(i).padStart(7, '0')}`,
    receiveTime: receiveTime(i),
    payload: { userId: `user-${i % 97}`, url: `https://example.com/p/${i}`, durationMs: i },
  }));
}

export interface ReadPartition {
  manifest: Manifest;
  records: { eventId: string; receiveTime: number; payload: Record<string, unknown> }[];
  fileBytes: Map<string, Buffer>;
}

/** Reads a closed partition (manifest + every listed file); undefined if not closed. */
export async function readPartition(storage: Storage, dataBucket: string, eventType: string, period: Period): Promise<ReadPartition | undefined> {
  const manifest = await readManifest(storage, dataBucket, eventType, period);
  if (manifest === undefined) return undefined;
  const records: ReadPartition['records'] = [];
  const fileBytes = new Map<string, Buffer>();
  for (const f of manifest.files) {
    const [bytes] = await storage.bucket(dataBucket).file(f.name).download();
    fileBytes.set(f.name, bytes);
    const contents = readContainer(bytes);
    const type = avroType(contents.schema);
    // One push per record: spreading a part of 100k+ records overflows the call stack.
    for (const r of decodeRecords(contents, (b, p) => type.decode(b, p) as { value: ReadPartition['records'][number]; offset: number })) records.push(r);
  }
  return { manifest, records, fileBytes };
}

/** Writes bytes to a fresh temp file (for avsc's file decoder and avrocat). */
export function tempFile(name: string, bytes: Buffer): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'etl-'));
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

export async function waitUntil(cond: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return cond();
}
