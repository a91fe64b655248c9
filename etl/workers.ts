/**
 * The worker host: one pipeline per hosted event type (own subscriber, flow
 * control, backoff, closer), started for every active registered type with
 * GCS storage and picked up or stopped as the registry changes (polling), so
 * one process can host many types locally and a deployment can host one.
 */
import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import type { EventTypeRecord, RegistryReader } from '../lib/registry/types.ts';
import { resolveTuning, type EtlTuning } from './config.ts';
import { newMetrics, type PipelineMetrics } from './metrics.ts';
import { TypePipeline } from './pipeline.ts';
import { SchemaResolver } from './schemas.ts';
import { identityTransform, type RecordTransform } from './transform.ts';
import type { CloserHooks } from './closer.ts';

export interface EtlWorkersConfig {
  projectId: string;
  /** A client to use; otherwise one is made from `pubsubEmulatorHost` (absent: Google). */
  pubsub?: PubSub;
  pubsubEmulatorHost?: string;
  /** A client to use; otherwise one is made from `storageEndpoint` (absent: Google). */
  storage?: Storage;
  storageEndpoint?: string;
  /** Staged files, leases; the event service's audit counts. */
  stagingBucket: string;
  /** Closed partitions (`<type>/dt=…`) and late events. */
  dataBucket: string;
  registry: RegistryReader;
  /** Host only these types (a deployment per type group); default: all. */
  eventTypes?: string[];
  tuning?: Partial<EtlTuning>;
  /** Injectable clock (epoch ms), for closing periods in tests. */
  now?: () => number;
  /** The transform between decode and stage (field encryption); identity by default. */
  transform?: RecordTransform | ((eventType: string) => RecordTransform);
  logger?: Logger;
  instanceId?: string;
  closerHooks?: CloserHooks;
  /** Run closers (default true). */
  closeEnabled?: boolean;
}

export interface EtlWorkers {
  /** Stops every pipeline (buffered records are written or nacked). */
  close(): Promise<void>;
  /** Re-reads the registry now (the poll does it every `registryPollMs`). */
  refresh(): Promise<void>;
  /** Types currently hosted. */
  eventTypes(): string[];
  pipeline(eventType: string): TypePipeline | undefined;
  stats(): Record<string, PipelineMetrics>;
}

/** Whether a registered type gets a GCS pipeline: active or draining (deprecated), with GCS storage. */
export function hostsType(record: EventTypeRecord, only: readonly string[] | undefined): boolean {
  if (only !== undefined && !only.includes(record.settings.name)) return false;
  return record.status !== 'deleted' && record.settings.storage.includes('gcs') && record.versions.length > 0;
}

export async function startEtlWorkers(config: EtlWorkersConfig): Promise<EtlWorkers> {
  const tuning = resolveTuning(config.tuning);
  const logger = config.logger ?? createLogger({ component: 'etl' });
  const pubsub = config.pubsub ?? createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost });
  const storage = config.storage ?? createStorage({ projectId: config.projectId, apiEndpoint: config.storageEndpoint });
  const now = config.now ?? Date.now;
  const instanceId = config.instanceId ?? `etl-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const pipelines = new Map<string, TypePipeline>();
  let closed = false;

  const transformFor = (eventType: string): RecordTransform =>
    config.transform === undefined ? identityTransform : typeof config.transform === 'function' ? config.transform(eventType) : config.transform;

  const startPipeline = (record: EventTypeRecord): void => {
    const eventType = record.settings.name;
    const transform = transformFor(eventType);
    const schemas = new SchemaResolver(eventType, config.registry, transform, tuning.schemaRefreshMinMs, now);
    schemas.load(record);
    const pipeline = new TypePipeline({
      ctx: {
        eventType,
        granularity: record.settings.partitioning,
        priority: record.settings.priority,
        staging: storage.bucket(config.stagingBucket),
        data: storage.bucket(config.dataBucket),
        schemas,
        tuning,
        now,
        logger: logger.child({ eventType }),
        instanceId,
        metrics: newMetrics(),
      },
      pubsub,
      transform,
      closerHooks: config.closerHooks,
      closeEnabled: config.closeEnabled,
    });
    pipeline.start();
    pipelines.set(eventType, pipeline);
    logger.info('pipeline started', { eventType, partitioning: record.settings.partitioning, priority: record.settings.priority });
  };

  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    refreshing ??= (async () => {
      try {
        const records = await config.registry.listEventTypes();
        if (closed) return;
        const wanted = new Map(records.filter((r) => hostsType(r, config.eventTypes)).map((r) => [r.settings.name, r]));
        for (const [name, record] of wanted) if (!pipelines.has(name)) startPipeline(record);
        for (const [name, p] of pipelines) {
          if (wanted.has(name)) continue;
          pipelines.delete(name);
          await p.close();
          logger.info('pipeline stopped', { eventType: name });
        }
      } catch (err) {
        logger.warn('registry poll failed', { error: err as Error });
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };

  await refresh();
  const poll = setInterval(() => void refresh(), tuning.registryPollMs);
  poll.unref();

  return {
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      await refreshing;
      await Promise.all([...pipelines.values()].map((p) => p.close()));
      pipelines.clear();
      if (config.pubsub === undefined) await pubsub.close().catch(() => undefined);
    },
    refresh,
    eventTypes: () => [...pipelines.keys()].sort(),
    pipeline: (eventType) => pipelines.get(eventType),
    stats: () => Object.fromEntries([...pipelines].map(([name, p]) => [name, { ...p.metrics }])),
  };
}
