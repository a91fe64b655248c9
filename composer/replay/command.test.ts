import { describe, expect, it } from 'vitest';
import { formatReplay, parseReplayArgs, runReplay } from './command.ts';
import { replayAttributes, unreplayableReason } from './dead-letters.ts';

describe('parseReplayArgs', () => {
  it('reads --dead-letters with --since, --dry-run and --limit', () => {
    expect(parseReplayArgs(['page_view', '--dead-letters', '--since', '2026-11-30T14:00Z', '--dry-run', '--limit', '50'])).toEqual({
      kind: 'dead-letters',
      eventType: 'page_view',
      registryDir: undefined,
      sinceMs: Date.parse('2026-11-30T14:00Z'),
      dryRun: true,
      limit: 50,
    });
    expect(parseReplayArgs(['page_view', '--dead-letters'])).toMatchObject({ sinceMs: undefined, dryRun: false, limit: 100_000 });
    expect(parseReplayArgs(['--help'])).toBe('help');
  });

  it.each([
    [[], 'needs an event-type name'],
    [['page_view'], 'needs --dead-letters'],
    [['Page-View', '--dead-letters'], 'is not an event-type name'],
    [['page_view', 'extra', '--dead-letters'], 'unexpected argument extra'],
    [['page_view', '--dead-letters', '--since', '2026-11-30 14:00'], 'expected an ISO 8601 time with a zone'],
    [['page_view', '--dead-letters', '--since', '2026-11-30T14:00'], 'expected an ISO 8601 time with a zone'],
    [['page_view', '--dead-letters', '--limit', '0'], '--limit 0'],
    [['page_view', '--dead-letters', '--limit', '2000000'], '--limit 2000000'],
    [['page_view', '--dead-letters', '--hours', '3'], "Unknown option '--hours'"],
  ])('refuses %j naming the problem', (argv, message) => {
    expect(() => parseReplayArgs(argv)).toThrow(message);
  });

  it('a usage error exits 2 with the usage, before touching the registry or Pub/Sub', async () => {
    const err: string[] = [];
    expect(await runReplay(['page_view'], {}, { out: () => undefined, err: (l) => err.push(l) })).toBe(2);
    expect(err[0]).toContain('error: replay needs --dead-letters');
    expect(err[0]).toContain('usage: npm run composer -- replay');
  });
});

describe('replayed messages', () => {
  it('keep the original attributes and drop what dead-lettering added', () => {
    const attributes = {
      eventType: 'page_view',
      eventId: 'e1',
      receiveTime: '2026-11-30T14:00:00.000Z',
      schemaFingerprint: 'abc',
      etlDeadLetterReason: 'unknown schema fingerprint',
      etlErrorCode: 'DECODE_FAILED',
      etlAttempts: '3',
      etlWorker: 'etl-1',
      CloudPubSubDeadLetterSourceDeliveryCount: '100',
      CloudPubSubDeadLetterSourceSubscription: 'events-page_view-etl',
    };
    expect(replayAttributes(attributes)).toEqual({ eventType: 'page_view', eventId: 'e1', receiveTime: '2026-11-30T14:00:00.000Z', schemaFingerprint: 'abc' });
    expect(unreplayableReason(attributes)).toBeUndefined();
    expect(unreplayableReason({ ...attributes, eventId: '' })).toBe('no eventId attribute');
    expect(unreplayableReason({ eventId: 'e1', schemaFingerprint: 'abc' })).toBe('no valid receiveTime attribute');
  });

  it('formats the counts', () => {
    const r = { pulled: 5, replayed: 3, eligible: 3, beforeSince: 1, unreplayable: 1, byCode: { DECODE_FAILED: 3 }, limited: false };
    expect(formatReplay('page_view', r, false)).toEqual([
      'page_view: 5 dead letter(s) pulled; 3 replayed to events-page_view',
      '  DECODE_FAILED: 3',
      '  left in events-page_view-dead-letter-sub: 1 dead-lettered before --since, 1 without eventId, receiveTime or schemaFingerprint',
    ]);
  });
});
