/**
 * Sharded periods (spec `shardsPerPeriod`, N > 1): every record of a period is
 * staged into shard `shardOf(eventId, N)`, a stable function of its id, so all
 * copies of one event meet in one shard and each shard dedups alone. Shards
 * are closed independently, under their own leases (etl/shard-close.ts).
 */
import { createHash } from 'node:crypto';
import { AppError } from '../lib/errors.ts';
import { MAX_SHARDS_PER_PERIOD } from '../lib/registry/types.ts';

/** Shard `index` (0-based) of a period split into `count` shards. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * The shard of an event id: the first 4 bytes of SHA-256 of its UTF-8 bytes,
 * read as an unsigned big-endian integer, modulo `count` (documented in
 * docs/partitions.md; consumers may recompute it).
 */
export function shardOf(eventId: string, count: number): number {
  if (count <= 1) return 0;
  return createHash('sha256').update(eventId, 'utf8').digest().readUInt32BE(0) % count;
}

/** Checks a shard count (registry setting, absent: 1). */
export function shardCount(shardsPerPeriod: number | undefined): number {
  const n = shardsPerPeriod ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS_PER_PERIOD) {
    throw new AppError('CONFIG_INVALID', { message: `shardsPerPeriod must be an integer from 1 to ${MAX_SHARDS_PER_PERIOD}, not ${JSON.stringify(n)}` });
  }
  return n;
}

/** `shard-<index>-of-<count>`: the folder of a shard's staged files, and the name of its lease and records. */
export const shardLabel = (s: Shard): string => `shard-${s.index}-of-${s.count}`;

const LABEL = /^shard-(\d{1,3})-of-(\d{1,3})$/;

/** The shard a label names; undefined if it is not one. */
export function parseShardLabel(label: string): Shard | undefined {
  const m = LABEL.exec(label);
  if (m === null) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return count >= 2 && count <= MAX_SHARDS_PER_PERIOD && index < count ? { index, count } : undefined;
}

/**
 * How a period closes, from the shards its staged files were written to: in
 * `count` shards if every file names the same count, else (no shard, or
 * files of two counts after the setting changed) as one whole, which dedups
 * exactly whatever the files.
 */
export function shardPlan(shards: readonly (Shard | undefined)[]): number {
  let count: number | undefined;
  for (const s of shards) {
    const c = s?.count ?? 1;
    if (count !== undefined && c !== count) return 1;
    count = c;
  }
  return count ?? 1;
}

/**
 * The order in which a worker tries a period's shards: from one derived from
 * its instance id, so workers starting together take different shards.
 */
export function shardOrder(instanceId: string, count: number): number[] {
  const first = shardOf(instanceId, count);
  return Array.from({ length: count }, (_, i) => (first + i) % count);
}
