import { describe, expect, it } from 'vitest';
import { AppError, errorCatalogue, toAppError } from './errors.ts';

describe('AppError', () => {
  it('takes status and retryability from the catalogue', () => {
    const err = new AppError('PUBLISH_FAILED', { details: { eventType: 'x' } });
    expect(err.status).toBe(503);
    expect(err.retryable).toBe(true);
    expect(err.toJSON()).toEqual({ code: 'PUBLISH_FAILED', message: errorCatalogue.PUBLISH_FAILED.message, details: { eventType: 'x' } });
  });

  it('keeps the cause and wraps foreign errors', () => {
    const cause = new Error('boom');
    const wrapped = toAppError(cause, 'STORAGE_FAILED');
    expect(wrapped.code).toBe('STORAGE_FAILED');
    expect(wrapped.cause).toBe(cause);
    expect(toAppError(wrapped)).toBe(wrapped);
  });

  it('has unique, upper-case codes with HTTP statuses', () => {
    for (const [code, entry] of Object.entries(errorCatalogue)) {
      expect(code).toMatch(/^[A-Z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
    }
  });
});
