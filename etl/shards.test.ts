import { describe, expect, it } from 'vitest';
import { periodOf, shardPartObjectName } from '../lib/partitions.ts';
import { shardOfStagedName, stagedObjectName, shardLeaseObjectName, leaseObjectName } from './layout.ts';
import { parseShardLabel, shardCount, shardOf, shardOrder, shardPlan } from './shards.ts';

describe('shards of a period', () => {
  const period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');

  it('puts an id in the shard given by the first 4 bytes of its SHA-256, big-endian, mod N', () => {
    // sha256("e-1") starts b94f5231 = 3108983345; sha256("evt-000042") 774401e0; sha256("ü-id") 789f1459 (UTF-8).
    expect(shardOf('e-1', 4)).toBe(3108983345 % 4);
    expect(shardOf('e-1', 7)).toBe(3108983345 % 7);
    expect(shardOf('evt-000042', 4)).toBe(0x774401e0 % 4);
    expect(shardOf('ü-id', 3)).toBe(0x789f1459 % 3);
    expect(shardOf('anything', 1)).toBe(0);
  });

  it('spreads ids over every shard', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[shardOf(`id-${i}`, 4)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('names staged files, leases and parts per shard, and reads the shard back from a staged name', () => {
    const name = stagedObjectName('t_a', period, 'abc', { index: 2, count: 4 });
    expect(name).toBe('staging/t_a/2026-01-05T07/shard-2-of-4/abc.avro');
    expect(shardOfStagedName('t_a', period, name)).toEqual({ index: 2, count: 4 });
    expect(shardOfStagedName('t_a', period, stagedObjectName('t_a', period, 'abc'))).toBeUndefined();
    expect(shardLeaseObjectName('t_a', period, { index: 2, count: 4 })).toBe('leases/t_a/2026-01-05T07/shard-2-of-4.json');
    expect(shardLeaseObjectName('t_a', period, { index: 2, count: 4 }).startsWith(leaseObjectName('t_a', period))).toBe(false);
    expect(shardPartObjectName('t_a', period, 3, 12)).toBe('t_a/dt=2026-01-05/hour=07/part-003-00012.avro');
  });

  it('parses only well-formed shard labels', () => {
    expect(parseShardLabel('shard-0-of-2')).toEqual({ index: 0, count: 2 });
    for (const bad of ['shard-2-of-2', 'shard-0-of-1', 'shard-0-of-257', 'shard--of-2', 'x']) expect(parseShardLabel(bad), bad).toBeUndefined();
  });

  it('closes a period in shards only when all its staged files agree on the count', () => {
    expect(shardPlan([])).toBe(1);
    expect(shardPlan([{ index: 0, count: 4 }, { index: 3, count: 4 }])).toBe(4);
    expect(shardPlan([{ index: 0, count: 4 }, undefined])).toBe(1);
    expect(shardPlan([{ index: 0, count: 4 }, { index: 1, count: 2 }])).toBe(1);
  });

  it('validates the count and orders shards from a per-worker start', () => {
    expect(shardCount(undefined)).toBe(1);
    expect(shardCount(16)).toBe(16);
    for (const bad of [0, 257, 1.5]) expect(() => shardCount(bad)).toThrow(/shardsPerPeriod must be an integer from 1 to 256/);
    const order = shardOrder('etl-1', 4);
    expect([...order].sort()).toEqual([0, 1, 2, 3]);
    expect(order[0]).toBe(shardOf('etl-1', 4));
  });
});
