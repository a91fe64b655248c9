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

describe('the catalogue covers every error class', () => {
  it('no class outside lib/errors.ts extends Error directly: each extends AppError and so carries a code', async () => {
    const { execFileSync } = await import('node:child_process');
    const root = new URL('..', import.meta.url).pathname;
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '*.ts'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
    const { readFileSync } = await import('node:fs');
    const offenders = files
      .filter((f) => f !== 'lib/errors.ts' && !f.endsWith('.test.ts'))
      .filter((f) => {
        try {
          return /\bextends Error\b/.test(readFileSync(`${root}${f}`, 'utf8'));
        } catch {
          return false; // listed but deleted in the work tree
        }
      });
    expect(offenders).toEqual([]);
  });

  it('the former local error classes carry their codes', async () => {
    const { SchemaError } = await import('./avro/schema.ts');
    const { AvroBinaryError } = await import('./avro/binary.ts');
    const schema = new SchemaError('unknown type nope', 'fields[0].type');
    expect([schema.code, schema.status, schema.message, schema.path]).toEqual(['SCHEMA_INVALID', 400, 'fields[0].type: unknown type nope', 'fields[0].type']);
    const binary = new AvroBinaryError('truncated datum', 'truncated');
    expect([binary.code, binary.problem, binary instanceof AppError]).toEqual(['DECODE_FAILED', 'truncated', true]);
  });
});
