import { describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors.ts';
import { parsePartitionsQuery } from './query.ts';

function problem(query: Record<string, unknown>): { code: string; parameter: unknown; message: string } {
  try {
    parsePartitionsQuery(query);
  } catch (err) {
    if (err instanceof AppError) return { code: err.code, parameter: err.details?.parameter, message: err.message };
    throw err;
  }
  throw new Error('accepted');
}

describe('parsePartitionsQuery', () => {
  it('takes period keys and zoned timestamps', () => {
    expect(parsePartitionsQuery({ type: 'page_view', from: '2026-11-30T10', to: '2026-12-01', priority: 'high', owner: 'team-web' })).toEqual({
      type: 'page_view',
      fromMs: Date.parse('2026-11-30T10:00:00Z'),
      toMs: Date.parse('2026-12-01T00:00:00Z'),
      owner: 'team-web',
      priority: 'high',
    });
    expect(parsePartitionsQuery({ from: '2026-11-30T10:30:00+01:00' }).fromMs).toBe(Date.parse('2026-11-30T09:30:00Z'));
    expect(parsePartitionsQuery({})).toEqual({ type: undefined, fromMs: undefined, toMs: undefined, owner: undefined, priority: undefined });
  });

  it.each([
    [{ from: 'yesterday' }, 'from', /not a time/],
    [{ to: '2026-02-30' }, 'to', /not a valid period/],
    [{ to: '2026-11-30T24' }, 'to', /not a valid period/],
    [{ from: '2026-11-30T10:00:00' }, 'from', /with a zone/],
    [{ type: 'Page-View' }, 'type', /not an event type name/],
    [{ priority: 'urgent' }, 'priority', /one of high, normal, low/],
    [{ from: '2026-11-30T10', to: '2026-11-30T09' }, 'from', /after 'to'/],
    [{ colour: 'red' }, 'colour', /unknown query parameter 'colour'/],
    [{ type: ['a_b_c', 'd_e_f'] }, 'type', /given once/],
    [{ owner: 'x'.repeat(201) }, 'owner', /longer than 200/],
  ])('refuses %j naming %s', (query, parameter, message) => {
    const p = problem(query);
    expect(p.code).toBe('BAD_REQUEST');
    expect(p.parameter).toBe(parameter);
    expect(p.message).toMatch(message);
  });
});
