/**
 * The ETL's private objects in the staging bucket (not a contract):
 * `staging/<type>/<period>/<sha256 of the sorted event ids>.avro` (a sharded
 * type: `staging/<type>/<period>/shard-<i>-of-<n>/<sha256>.avro`), the
 * closers' leases `leases/<type>/<period>.json` (a shard's:
 * `leases/<type>/<period>/shard-<i>-of-<n>.json`), the intermediate sorted
 * runs of a large close `runs/<type>/<period>/<sha256 of the input names>.avro`
 * and the records of closing shards `shards/<type>/<period>/shard-<i>-of-<n>/`
 * (`count-<sha256 of the staged set>.json`, `done.json`). The staged files'
 * and leases' names are shared with the partition status service:
 * lib/staging-layout.ts. Audit objects are the event service's
 * (lib/events/contract.ts).
 */
import type { Period } from '../lib/partitions.ts';
import { parseShardLabel, shardLabel, type Shard } from './shards.ts';

export { stagingTypePrefix, stagingPeriodPrefix, periodKeyOfStagedName, leaseObjectName } from '../lib/staging-layout.ts';
import { stagingPeriodPrefix } from '../lib/staging-layout.ts';

/** A staged file's name; in its shard's folder when the type is sharded. */
export const stagedObjectName = (eventType: string, period: Period, idHash: string, shard?: Shard): string =>
  `${shard === undefined ? stagingPeriodPrefix(eventType, period) : stagingShardPrefix(eventType, period, shard)}${idHash}.avro`;

export const stagingShardPrefix = (eventType: string, period: Period, shard: Shard): string =>
  `${stagingPeriodPrefix(eventType, period)}${shardLabel(shard)}/`;

/** The shard a staged object of `period` was written to; undefined for an unsharded one. */
export function shardOfStagedName(eventType: string, period: Period, name: string): Shard | undefined {
  const rest = name.slice(stagingPeriodPrefix(eventType, period).length).split('/');
  return rest.length === 2 ? parseShardLabel(rest[0]!) : undefined;
}

export const shardLeaseObjectName = (eventType: string, period: Period, shard: Shard): string => `leases/${eventType}/${period.key}/${shardLabel(shard)}.json`;

/** Prefix of the closing records of every shard of a period. */
export const shardRecordsPrefix = (eventType: string, period: Period): string => `shards/${eventType}/${period.key}/`;

/** A shard's counting-merge result for one staged set (content-named: written once). */
export const shardCountObjectName = (eventType: string, period: Period, shard: Shard, setKey: string): string =>
  `${shardRecordsPrefix(eventType, period)}${shardLabel(shard)}/count-${setKey}.json`;

/** Written once a shard's parts are stored: what the partition's `_SUCCESS` is assembled from. */
export const shardDoneObjectName = (eventType: string, period: Period, shard: Shard): string =>
  `${shardRecordsPrefix(eventType, period)}${shardLabel(shard)}/done.json`;

/** Prefix of a period's intermediate merge runs (outside `staging/`, so they are never taken for staged files). */
export const runPeriodPrefix = (eventType: string, period: Period): string => `runs/${eventType}/${period.key}/`;

export const runObjectName = (eventType: string, period: Period, inputsHash: string): string => `${runPeriodPrefix(eventType, period)}${inputsHash}.avro`;
