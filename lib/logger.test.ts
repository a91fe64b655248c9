import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

describe('createLogger', () => {
  it('writes Cloud Logging JSON lines with labels, filtered by level', () => {
    const lines: string[] = [];
    const log = createLogger({ component: 'etl', level: 'INFO', sink: (l) => lines.push(l) });
    log.debug('hidden');
    log.child({ eventType: 'page_view' }).warn('slow', { ms: 12 });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      severity: 'WARNING',
      message: 'slow',
      ms: 12,
      'logging.googleapis.com/labels': { component: 'etl', eventType: 'page_view' },
    });
    expect(Date.parse(entry.time)).not.toBeNaN();
  });

  it('serialises errors with their code', () => {
    const lines: string[] = [];
    const err = Object.assign(new Error('nope'), { code: 'X' });
    createLogger({ component: 'c', sink: (l) => lines.push(l) }).error('failed', { err });
    expect(JSON.parse(lines[0]!).err).toMatchObject({ name: 'Error', message: 'nope', code: 'X' });
  });
});
