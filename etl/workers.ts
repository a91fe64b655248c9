/**
 * The worker host: one pipeline per hosted event type (own subscriber, flow
 * control, backoff, closer), started for every active registered type (GCS,
 * BigQuery or both: a BigQuery type stages and closes in GCS too, its
 * manifest is the proof the load is checked against) and picked up or
 * stopped as the registry changes (polling), so one process can host many
 * types locally and a deployment can host one. A type stored in BigQuery
 * also gets a `BigQueryLoader` (etl/bigquery-load.ts) loading its closed
 * partitions into `<dataset>.<type>`.
 *
 * A type whose schema has personal fields the transform would deliver in
 * clear (no encryption transform configured) is refused: its pipeline does
 * not start (or stops, if such a version is registered while it runs), an
 * ERROR log names the type and the fields, `refused()` lists it and the
 * `pipelinesRefused` counter of `hostMetrics()` counts it. Other types run.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { createBigQuery, createPubSub, createStorage } from '../lib/gcp/clients.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';
import type { EventTypeRecord, RegistryReader } from '../lib/registry/types.ts';
import { resolveTuning, type EtlTuning } from './config.ts';
import { newMetrics, type PipelineMetrics } from './metrics.ts';
import { TypePipeline } from './pipeline.ts';
import { SchemaResolver } from './schemas.ts';
import { identityTransform, type RecordTransform } from './transform.ts';
import type { CloserHooks } from './closer.ts';
import { shardCount } from './shards.ts';
import { refusalError, type ClearPersonalData } from './personal-guard.ts';
import { BigQueryLoader, type LoaderMetrics, type LoaderStopped } from './bigquery-load.ts';
import { EtlTelemetry } from './metrics-prometheus.ts';
import { startMetricsServer, type MetricsServer } from './metrics-server.ts';

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
  /** Catalogue of semantic types (default: lib/semantic-types.ts), to find personal fields. */
  catalogue?: SemanticCatalogue;
  logger?: Logger;
  instanceId?: string;
  closerHooks?: CloserHooks;
  /** Run closers (default true). */
  closeEnabled?: boolean;
  /** Where types stored in BigQuery are loaded; absent: they are staged and closed, not loaded (a WARNING says so). */
  bigQuery?: EtlBigQueryTarget;
  /** Serve the Prometheus metrics (etl/metrics-prometheus.ts) on `GET /metrics` at this port (0: a free one); absent: not served. */
  metrics?: { port: number; host?: string; processMetrics?: boolean };
}

export interface EtlBigQueryTarget {
  /** A client to use; otherwise one is made from `endpoint` (absent: Google). */
  client?: BigQuery;
  endpoint?: string | undefined;
  /** Dataset of the event tables; tables are named by `resourceNames.bigQueryTable`. */
  dataset: string;
  location?: string | undefined;
  /** Create the dataset and missing tables (default true; etl/config.ts `createTables`). */
  createTables?: boolean;
  /** Run the loaders' periodic passes (default true; tests may drive `loader(type).pass()`). */
  loadEnabled?: boolean;
}

export interface EtlWorkers {
  /**
   * Keeps every pipeline pulling and staging until its subscription is drained
   * (see `DrainOptions`), or the timeout passes; then `close()` stops them.
   * For a graceful stop once intake has stopped: what Pub/Sub still holds is
   * staged first.
   */
  drain(options: DrainOptions): Promise<DrainResult>;
  /** Stops every pipeline (buffered records are written or nacked). */
  close(): Promise<void>;
  /** Re-reads the registry now (the poll does it every `registryPollMs`). */
  refresh(): Promise<void>;
  /** Types currently hosted. */
  eventTypes(): string[];
  pipeline(eventType: string): TypePipeline | undefined;
  stats(): Record<string, PipelineMetrics>;
  /** Types refused because they would deliver personal fields in clear, with why. */
  refused(): Record<string, RefusedPipeline>;
  hostMetrics(): HostMetrics;
  /** The BigQuery loader of a hosted type stored in BigQuery. */
  loader(eventType: string): BigQueryLoader | undefined;
  /** Loader counters per type stored in BigQuery (`loadingStopped` = 1: a permanent failure stopped it). */
  loaderStats(): Record<string, LoaderMetrics & { stopped?: LoaderStopped }>;
  /** The Prometheus metrics of every hosted type. */
  telemetry: EtlTelemetry;
  /** `http://…/metrics` when `metrics` was configured. */
  metricsUrl: string | undefined;
}

export interface DrainOptions {
  /**
   * A pipeline is drained when it holds no un-acked message and has received
   * none for this long: its subscription then has nothing left to deliver.
   * Default 3000.
   */
  quietMs?: number;
  /** Bound on the whole drain. */
  timeoutMs: number;
  /** Called about every `progressEveryMs` (default 2000) while draining. */
  onProgress?: (progress: DrainProgress) => void;
  progressEveryMs?: number;
}

export interface DrainProgress {
  /** Records staged since the drain began, over all types. */
  staged: number;
  /** Messages received and not yet acked (or dead-lettered), over all types. */
  outstanding: number;
  /** Types not drained yet. */
  draining: string[];
}

export interface DrainResult extends DrainProgress {
  /** False if the timeout passed first. */
  drained: boolean;
}

/** A type whose pipeline does not run: its schema has personal fields and the transform does not encrypt them. */
export interface RefusedPipeline {
  code: 'CONFIG_INVALID';
  message: string;
  versions: ClearPersonalData[];
  since: string;
}

export interface HostMetrics {
  /** Times a type's pipeline was refused (or stopped) for personal data in clear. */
  pipelinesRefused: number;
}

/**
 * Whether a registered type gets a pipeline: active or draining (deprecated),
 * stored in GCS or BigQuery (a BigQuery-only type stages and closes in GCS too).
 */
export function hostsType(record: EventTypeRecord, only: readonly string[] | undefined): boolean {
  if (only !== undefined && !only.includes(record.settings.name)) return false;
  const stored = record.settings.storage.includes('gcs') || record.settings.storage.includes('bigquery');
  return record.status !== 'deleted' && stored && record.versions.length > 0;
}

/** Whether a hosted type's closed partitions are loaded into BigQuery. */
export function loadsIntoBigQuery(record: EventTypeRecord): boolean {
  return record.settings.storage.includes('bigquery');
}

export async function startEtlWorkers(config: EtlWorkersConfig): Promise<EtlWorkers> {
  const tuning = resolveTuning(config.tuning);
  const logger = config.logger ?? createLogger({ component: 'etl' });
  const pubsub = config.pubsub ?? createPubSub({ projectId: config.projectId, emulatorHost: config.pubsubEmulatorHost });
  const storage = config.storage ?? createStorage({ projectId: config.projectId, apiEndpoint: config.storageEndpoint });
  const now = config.now ?? Date.now;
  const instanceId = config.instanceId ?? `etl-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const pipelines = new Map<string, TypePipeline>();
  const resolvers = new Map<string, SchemaResolver>();
  const refusedTypes = new Map<string, RefusedPipeline>();
  const loaders = new Map<string, BigQueryLoader>();
  const versionCounts = new Map<string, number>();
  const bigquery =
    config.bigQuery === undefined ? undefined : (config.bigQuery.client ?? createBigQuery({ projectId: config.projectId, apiEndpoint: config.bigQuery.endpoint }));
  const hostMetrics: HostMetrics = { pipelinesRefused: 0 };
  const telemetry = new EtlTelemetry({ now, pipelines: () => [...pipelines].map(([name, p]) => [name, p.metrics] as const), processMetrics: config.metrics?.processMetrics });
  let closed = false;

  const transformFor = (eventType: string): RecordTransform =>
    config.transform === undefined ? identityTransform : typeof config.transform === 'function' ? config.transform(eventType) : config.transform;

  const refuse = (eventType: string, versions: ClearPersonalData[]): void => {
    if (refusedTypes.has(eventType)) return;
    const err = refusalError(eventType, versions);
    refusedTypes.set(eventType, { code: 'CONFIG_INVALID', message: err.message, versions, since: new Date(now()).toISOString() });
    hostMetrics.pipelinesRefused++;
    logger.error('pipeline refused: personal fields would be delivered in clear', {
      eventType,
      code: err.code,
      error: err,
      fields: [...new Set(versions.flatMap((v) => v.fields))],
    });
  };

  /** A registry value the composer would have refused falls back to one shard (always exact), with an ERROR. */
  const shardsOf = (record: EventTypeRecord): number => {
    try {
      return shardCount(record.settings.shardsPerPeriod);
    } catch (err) {
      logger.error('bad shardsPerPeriod in the registry; closing unsharded', { eventType: record.settings.name, error: err as Error });
      return 1;
    }
  };

  const startPipeline = (record: EventTypeRecord): void => {
    const eventType = record.settings.name;
    const transform = transformFor(eventType);
    const schemas = new SchemaResolver(eventType, config.registry, transform, tuning.schemaRefreshMinMs, now, config.catalogue);
    const refusedVersions = schemas.load(record);
    if (refusedVersions.length > 0) {
      refuse(eventType, refusedVersions);
      return;
    }
    const pipeline = new TypePipeline({
      ctx: {
        shards: shardsOf(record),
        eventType,
        granularity: record.settings.partitioning,
        priority: record.settings.priority,
        retentionDays: record.settings.retentionDays,
        staging: storage.bucket(config.stagingBucket),
        data: storage.bucket(config.dataBucket),
        schemas,
        tuning,
        now,
        logger: logger.child({ eventType }),
        instanceId,
        metrics: newMetrics(),
        telemetry: telemetry.forType(eventType),
      },
      pubsub,
      transform,
      closerHooks: config.closerHooks,
      closeEnabled: config.closeEnabled,
      onRefusedVersion: () => void refresh(),
    });
    pipeline.start();
    pipelines.set(eventType, pipeline);
    resolvers.set(eventType, schemas);
    logger.info('pipeline started', { eventType, partitioning: record.settings.partitioning, priority: record.settings.priority });
    if (loadsIntoBigQuery(record)) startLoader(record);
  };

  const startLoader = (record: EventTypeRecord): void => {
    const eventType = record.settings.name;
    if (config.bigQuery === undefined || bigquery === undefined) {
      logger.warn('bigquery loading not configured: closed partitions stay in GCS only', { eventType });
      return;
    }
    versionCounts.set(eventType, record.versions.length);
    const loader = new BigQueryLoader({
      eventType,
      granularity: record.settings.partitioning,
      retentionDays: record.settings.retentionDays,
      description: record.settings.description,
      data: storage.bucket(config.dataBucket),
      target: { client: bigquery, dataset: config.bigQuery.dataset, location: config.bigQuery.location, createTables: config.bigQuery.createTables !== false },
      tuning,
      multipleVersions: () => (versionCounts.get(eventType) ?? 1) > 1,
      now,
      logger: logger.child({ eventType }),
    });
    if (config.bigQuery.loadEnabled !== false) loader.start();
    loaders.set(eventType, loader);
  };

  const stopLoader = async (eventType: string): Promise<void> => {
    const loader = loaders.get(eventType);
    loaders.delete(eventType);
    versionCounts.delete(eventType);
    await loader?.close();
  };

  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    refreshing ??= (async () => {
      try {
        const records = await config.registry.listEventTypes();
        if (closed) return;
        const wanted = new Map(records.filter((r) => hostsType(r, config.eventTypes)).map((r) => [r.settings.name, r]));
        for (const name of refusedTypes.keys()) if (!wanted.has(name)) refusedTypes.delete(name);
        for (const [name, record] of wanted) {
          if (refusedTypes.has(name)) continue;
          // A running type may have gained a version with personal fields: stop it rather than stage them in clear.
          const refusedVersions = resolvers.get(name)?.load(record) ?? [];
          if (versionCounts.has(name)) versionCounts.set(name, record.versions.length);
          if (refusedVersions.length > 0) refuse(name, refusedVersions);
          else if (!pipelines.has(name)) startPipeline(record);
        }
        for (const [name, p] of pipelines) {
          if (wanted.has(name) && !refusedTypes.has(name)) continue;
          pipelines.delete(name);
          resolvers.delete(name);
          await stopLoader(name);
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

  // Before any pipeline starts: a port already taken fails the start with nothing to undo.
  const metricsServer: MetricsServer | undefined = config.metrics === undefined ? undefined : await startMetricsServer(telemetry, { ...config.metrics, logger });
  await refresh();
  const poll = setInterval(() => void refresh(), tuning.registryPollMs);
  poll.unref();

  const drain = async (options: DrainOptions): Promise<DrainResult> => {
    const quietMs = options.quietMs ?? 3000;
    const progressEveryMs = options.progressEveryMs ?? 2000;
    const started = Date.now();
    const stagedAtStart = new Map([...pipelines].map(([name, p]) => [name, p.metrics.stagedRecords]));
    /** Per type: its `received` count when last seen, and when it last changed. */
    const seen = new Map<string, { received: number; at: number }>();
    let lastProgress = started;
    for (;;) {
      const now = Date.now();
      let staged = 0;
      let outstanding = 0;
      const draining: string[] = [];
      for (const [name, p] of pipelines) {
        const m = p.metrics;
        staged += m.stagedRecords - (stagedAtStart.get(name) ?? 0);
        // Un-acked: received, not yet acked, nacked (redelivered later) or dead-lettered.
        const held = Math.max(0, m.received - m.acked - m.nacked - m.deadLettered, p.stager.pending);
        outstanding += held;
        const last = seen.get(name);
        if (last === undefined || last.received !== m.received) seen.set(name, { received: m.received, at: now });
        const quietFor = now - (seen.get(name)?.at ?? now);
        // Nothing new for a moment: write what is buffered now rather than at its flush age.
        if (quietFor >= 250 && p.stager.pending > 0) p.stager.flushAll();
        if (held > 0 || quietFor < quietMs) draining.push(name);
      }
      if (draining.length === 0) return { drained: true, staged, outstanding, draining };
      if (now - started >= options.timeoutMs) return { drained: false, staged, outstanding, draining };
      if (now - lastProgress >= progressEveryMs) {
        lastProgress = now;
        options.onProgress?.({ staged, outstanding, draining });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  return {
    drain,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      await metricsServer?.close();
      await refreshing;
      await Promise.all([...loaders.keys()].map(stopLoader));
      await Promise.all([...pipelines.values()].map((p) => p.close()));
      pipelines.clear();
      if (config.pubsub === undefined) await pubsub.close().catch(() => undefined);
    },
    refresh,
    eventTypes: () => [...pipelines.keys()].sort(),
    pipeline: (eventType) => pipelines.get(eventType),
    stats: () => Object.fromEntries([...pipelines].map(([name, p]) => [name, { ...p.metrics }])),
    refused: () => Object.fromEntries([...refusedTypes].map(([name, r]) => [name, structuredClone(r)])),
    hostMetrics: () => ({ ...hostMetrics }),
    loader: (eventType) => loaders.get(eventType),
    telemetry,
    metricsUrl: metricsServer?.url,
    loaderStats: () =>
      Object.fromEntries(
        [...loaders].map(([name, l]) => [name, { ...l.metrics, ...(l.stopped === undefined ? {} : { stopped: { ...l.stopped } }) }]),
      ),
  };
}
