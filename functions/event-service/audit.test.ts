import { describe, expect, it } from 'vitest';
import { auditObjectName, auditSummaryObjectName } from '../../lib/events/contract.ts';
import { silentLogger } from '../../lib/logger.ts';
import { AuditCounter, MemoryAuditSink } from './audit.ts';

const now = (): Date => new Date('2026-01-02T03:04:05.000Z');

function counter(sink: MemoryAuditSink): AuditCounter {
  return new AuditCounter({ instanceId: 'i1', sink, flushMs: 60_000, logger: silentLogger, now });
}

describe('AuditCounter', () => {
  it('writes running totals per type and hour, only when they changed', async () => {
    const sink = new MemoryAuditSink();
    const c = counter(sink);
    c.record('page_view', '2026-01-02T03', 2);
    c.record('page_view', '2026-01-02T03');
    c.record('sign_up', '2026-01-02T03');
    await c.flush();
    expect(sink.objects.get(auditObjectName('page_view', '2026-01-02T03', 'i1'))).toEqual({
      eventType: 'page_view',
      hour: '2026-01-02T03',
      instanceId: 'i1',
      accepted: 3,
      updatedAt: '2026-01-02T03:04:05.000Z',
    });
    expect(sink.objects.get(auditObjectName('sign_up', '2026-01-02T03', 'i1'))?.accepted).toBe(1);
    const writes: string[] = [];
    const spy = { write: async (count: { eventType: string }) => void writes.push(count.eventType), compact: async () => undefined };
    const c2 = new AuditCounter({ instanceId: 'i1', sink: spy as never, flushMs: 60_000, logger: silentLogger, now });
    c2.record('a', '2026-01-02T03');
    await c2.flush();
    await c2.flush();
    expect(writes).toEqual(['a']);
  });

  it('keeps a count dirty after a failed write and writes it on the next flush', async () => {
    const sink = new MemoryAuditSink();
    const c = counter(sink);
    c.record('page_view', '2026-01-02T03', 5);
    sink.failNext = 1;
    await c.flush();
    expect(sink.objects.size).toBe(0);
    await c.flush();
    expect(sink.objects.get(auditObjectName('page_view', '2026-01-02T03', 'i1'))?.accepted).toBe(5);
  });

  it('flushes on stop, and counts recorded during a flush are written by the next one', async () => {
    const sink = new MemoryAuditSink();
    const c = counter(sink);
    c.start();
    c.record('t', '2026-01-02T03');
    const first = c.flush();
    c.record('t', '2026-01-02T03');
    await first;
    await c.stop();
    // A graceful stop writes the count final and compacts it into the hour's summary.
    expect(sink.objects.size).toBe(0);
    expect(sink.summaries.get(auditSummaryObjectName('t', '2026-01-02T03'))?.instances).toEqual([
      { eventType: 't', hour: '2026-01-02T03', instanceId: 'i1', accepted: 2, final: true, updatedAt: '2026-01-02T03:04:05.000Z' },
    ]);
  });

  it('writes a live count final only once the hour ended plus the flush interval with nothing of it in flight', async () => {
    const sink = new MemoryAuditSink();
    let t = Date.parse('2026-01-02T03:59:59.000Z');
    const c = new AuditCounter({ instanceId: 'i1', sink, flushMs: 1000, heartbeatMs: 10_000, logger: silentLogger, now: () => new Date(t) });
    const object = auditObjectName('t', '2026-01-02T03', 'i1');
    const summary = auditSummaryObjectName('t', '2026-01-02T03');
    c.requestStarted('2026-01-02T03');
    c.publishing('t', '2026-01-02T03');
    c.record('t', '2026-01-02T03');
    c.publishing('t', '2026-01-02T03');
    await c.flush();
    expect(sink.objects.get(object)).toMatchObject({ accepted: 1 });
    expect(sink.objects.get(object)?.final).toBeUndefined();
    t = Date.parse('2026-01-02T04:00:05.000Z');
    c.published('t', '2026-01-02T03');
    await c.flush();
    // One publish is still in flight (and its request still runs): not final, however late.
    expect(sink.objects.get(object)?.final).toBeUndefined();
    c.published('t', '2026-01-02T03');
    c.recordUnreported('t', '2026-01-02T03');
    await c.flush();
    expect(sink.objects.get(object)?.final).toBeUndefined();
    c.requestDone('2026-01-02T03');
    await c.flush();
    expect(sink.objects.has(object)).toBe(false);
    expect(sink.summaries.get(summary)?.instances).toEqual([
      { eventType: 't', hour: '2026-01-02T03', instanceId: 'i1', accepted: 1, unreported: 1, final: true, updatedAt: '2026-01-02T04:00:05.000Z' },
    ]);
  });

  it('rewrites a count that is not final every heartbeat, unchanged or not, and stops once it is final', async () => {
    const writes: string[] = [];
    const sink = new MemoryAuditSink();
    const spy = {
      write: async (count: Parameters<MemoryAuditSink['write']>[0]) => {
        writes.push(`${count.accepted}${count.final === true ? ' final' : ''}`);
        await sink.write(count);
      },
      compact: (count: Parameters<MemoryAuditSink['compact']>[0]) => sink.compact(count),
    };
    let t = Date.parse('2026-01-02T03:10:00.000Z');
    const c = new AuditCounter({ instanceId: 'i1', sink: spy, flushMs: 1000, heartbeatMs: 10_000, logger: silentLogger, now: () => new Date(t) });
    c.record('t', '2026-01-02T03');
    await c.flush();
    t += 5_000;
    await c.flush();
    t += 5_000;
    await c.flush();
    t = Date.parse('2026-01-02T04:00:01.000Z');
    await c.flush();
    t += 60_000;
    await c.flush();
    expect(writes).toEqual(['1', '1', '1 final']);
  });

  it('compacts a final count whose compaction failed at the next flush, without rewriting it', async () => {
    const sink = new MemoryAuditSink();
    const c = counter(sink);
    c.record('t', '2026-01-02T03', 4);
    let calls = 0;
    const compact = sink.compact.bind(sink);
    sink.compact = async (count) => {
      if (calls++ === 0) throw new Error('injected compaction failure');
      return compact(count);
    };
    await c.stop();
    expect(sink.objects.get(auditObjectName('t', '2026-01-02T03', 'i1'))).toMatchObject({ accepted: 4, final: true });
    await c.flush();
    expect(sink.objects.size).toBe(0);
    expect(sink.summaries.get(auditSummaryObjectName('t', '2026-01-02T03'))?.instances[0]).toMatchObject({ accepted: 4, final: true });
  });

  it('forgets entries untouched for longer than the retention once flushed, not before', async () => {
    const sink = new MemoryAuditSink();
    let t = new Date('2026-01-02T03:00:00.000Z').getTime();
    const c = new AuditCounter({ instanceId: 'i1', sink, flushMs: 60_000, logger: silentLogger, now: () => new Date(t), retainHours: 3 });
    c.record('t', '2026-01-02T03');
    t += 2 * 3_600_000;
    c.record('u', '2026-01-02T05');
    await c.flush();
    expect(c.count('t', '2026-01-02T03')).toBe(1);
    t += 1.5 * 3_600_000;
    await c.flush();
    expect(c.count('t', '2026-01-02T03')).toBe(0);
    expect(c.count('u', '2026-01-02T05')).toBe(1);
  });
});
