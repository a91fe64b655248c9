import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  auditHoursOf,
  deliveredFileSchema,
  lateCounterObjectName,
  latePrefix,
  parseManifest,
  shardPartObjectName,
  parsePeriodKey,
  partObjectName,
  partitionPrefix,
  periodFromPartitionPath,
  periodOf,
  successObjectName,
} from './partitions.ts';

describe('partition periods and paths', () => {
  it('puts a receive time in its UTC hour or day', () => {
    const t = Date.parse('2026-11-23T09:41:07.123Z');
    expect(periodOf(t, 'hourly')).toEqual({ granularity: 'hourly', key: '2026-11-23T09', startMs: Date.parse('2026-11-23T09:00:00Z'), endMs: Date.parse('2026-11-23T10:00:00Z') });
    expect(periodOf(t, 'daily').key).toBe('2026-11-23');
    expect(periodOf(Date.parse('2026-11-23T23:59:59.999Z'), 'hourly').key).toBe('2026-11-23T23');
    expect(periodOf(Date.parse('2026-11-24T00:00:00.000Z'), 'hourly').key).toBe('2026-11-24T00');
  });

  it('names the contract paths', () => {
    const h = parsePeriodKey('2026-11-23T09');
    const d = parsePeriodKey('2026-11-23');
    expect(partitionPrefix('page_view', h)).toBe('page_view/dt=2026-11-23/hour=09/');
    expect(partitionPrefix('page_view', d)).toBe('page_view/dt=2026-11-23/');
    expect(partObjectName('page_view', h, 7)).toBe('page_view/dt=2026-11-23/hour=09/part-00007.avro');
    expect(successObjectName('page_view', d)).toBe('page_view/dt=2026-11-23/_SUCCESS');
    expect(latePrefix('page_view', h)).toBe('page_view/late/dt=2026-11-23/hour=09/');
    expect(lateCounterObjectName('page_view', d)).toBe('page_view/late/dt=2026-11-23/_LATE');
    expect(auditHoursOf(h)).toEqual(['2026-11-23T09']);
    expect(auditHoursOf(d)).toHaveLength(24);
    expect(auditHoursOf(d)[23]).toBe('2026-11-23T23');
  });

  it('round-trips periods through keys and paths (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constantFrom('hourly' as const, 'daily' as const), (t, g) => {
        const p = periodOf(t, g);
        expect(parsePeriodKey(p.key)).toEqual(p);
        expect(t >= p.startMs && t < p.endMs).toBe(true);
        expect(periodFromPartitionPath('t_x', partObjectName('t_x', p, 0))).toEqual(p);
      }),
    );
  });

  it('rejects malformed period keys', () => {
    for (const k of ['2026-11-23T24', '2026-13-01', '2026-11-23T9', 'x']) expect(() => parsePeriodKey(k)).toThrow();
  });

  it('wraps the delivered payload with id and receive time', () => {
    const s = deliveredFileSchema({ type: 'record', name: 'P', fields: [] });
    expect((s.fields as { name: string }[]).map((f) => f.name)).toEqual(['eventId', 'receiveTime', 'payload']);
  });

  it('validates manifests', () => {
    expect(() => parseManifest('{')).toThrow();
    expect(() => parseManifest('{"formatVersion":1}')).toThrow();
  });

  it('reads the shard count of a sharded partition, absent for an unsharded one', () => {
    const manifest = {
      formatVersion: 1,
      eventType: 'page_view',
      partitioning: 'hourly',
      period: '2026-11-23T09',
      files: [{ name: 'page_view/dt=2026-11-23/hour=09/part-001-00000.avro', size: 10, crc32c: 'AAAAAA==', md5Hash: '', recordCount: 1, schemaFingerprint: 'f' }],
      recordCount: 1,
      schemaFingerprints: ['f'],
      deliveredSchemas: { f: { type: 'record' } },
      timeRange: { start: '2026-11-23T09:00:00.000Z', end: '2026-11-23T10:00:00.000Z' },
      audit: { accepted: 1, delivered: 1, duplicatesDropped: 0, complete: true },
      closedBy: 'complete',
      transformStats: {},
      lateCount: 0,
    };
    expect(parseManifest(JSON.stringify(manifest)).shards).toBeUndefined();
    expect(parseManifest(JSON.stringify({ ...manifest, shards: 4 })).shards).toBe(4);
    for (const bad of [1, 257, 2.5]) expect(() => parseManifest(JSON.stringify({ ...manifest, shards: bad })), String(bad)).toThrow(/manifest is not valid/);
    expect(shardPartObjectName('page_view', parsePeriodKey('2026-11-23T09'), 1, 0)).toBe(manifest.files[0]!.name);
  });
});
