import { describe, expect, it } from 'vitest';
import { batchStatus, eventIdProblem, type EventResult } from './ingest.ts';

const accepted: EventResult = { index: 0, status: 'accepted', id: 'a' };
const rejected: EventResult = { index: 1, status: 'rejected', code: 'EVENT_INVALID', reason: 'x', retryable: false };
const failed: EventResult = { index: 2, status: 'failed', id: 'c', code: 'PUBLISH_FAILED', reason: 'x', retryable: true };
const overloaded: EventResult = { index: 3, status: 'failed', id: 'd', code: 'OVERLOADED', reason: 'x', retryable: true };

describe('batch status rule', () => {
  it('is 200 when events were accepted or rejected for their own reasons', () => {
    expect(batchStatus([accepted, rejected])).toBe(200);
    expect(batchStatus([rejected])).toBe(200);
  });
  it('is 503 when any event failed to publish, 429 when only budgets were full', () => {
    expect(batchStatus([accepted, failed])).toBe(503);
    expect(batchStatus([rejected, failed, overloaded])).toBe(503);
    expect(batchStatus([accepted, overloaded])).toBe(429);
  });
});

describe('event ids', () => {
  it('accepts printable ids up to 128 characters', () => {
    expect(eventIdProblem('abc-123_{x}')).toBeUndefined();
    expect(eventIdProblem('x'.repeat(128))).toBeUndefined();
  });
  it('rejects empty, long, non-printable and non-string ids', () => {
    expect(eventIdProblem('')).toMatch(/empty/);
    expect(eventIdProblem('x'.repeat(129))).toMatch(/longer/);
    expect(eventIdProblem('a\nb')).toMatch(/printable/);
    expect(eventIdProblem('é')).toMatch(/printable/);
    expect(eventIdProblem(5)).toMatch(/expected string, got number/);
  });
});
