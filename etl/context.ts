/** What every part of one type's pipeline shares. */
import type { Bucket } from '@google-cloud/storage';
import type { Logger } from '../lib/logger.ts';
import type { Partitioning, Priority } from '../lib/registry/types.ts';
import type { EtlTuning } from './config.ts';
import type { PipelineMetrics } from './metrics.ts';
import type { TypeTelemetry } from './metrics-prometheus.ts';
import type { SchemaResolver } from './schemas.ts';

export interface TypeContext {
  eventType: string;
  granularity: Partitioning;
  priority: Priority;
  /** The type's retention: closed partitions are sealed until their period's end plus this (seal.ts). */
  retentionDays: number;
  staging: Bucket;
  data: Bucket;
  schemas: SchemaResolver;
  tuning: EtlTuning;
  now: () => number;
  logger: Logger;
  instanceId: string;
  metrics: PipelineMetrics;
  /** Shards per period (registry `shardsPerPeriod`); absent: 1, unsharded. */
  shards?: number;
  /** Prometheus observations of the stager and closer (etl/metrics-prometheus.ts); absent: none. */
  telemetry?: TypeTelemetry;
}
