import { describe, expect, it } from 'vitest';
import { auditObjectName } from '../../lib/events/contract.ts';
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
    const spy = { write: async (count: { eventType: string }) => void writes.push(count.eventType) };
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
    expect(sink.objects.get(auditObjectName('t', '2026-01-02T03', 'i1'))?.accepted).toBe(2);
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
