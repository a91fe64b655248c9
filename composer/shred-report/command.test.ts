import { describe, expect, it } from 'vitest';
import { parseShredReportArgs, shredReportCommand, ShredReportUsageError } from './command.ts';

const base = ['--padlock', 'http://127.0.0.1:8091', '--service', 'privacy', '--secret-env', 'PRIVACY_SECRET'];
const env = { PRIVACY_SECRET: 's3cret' };

describe('shred-report options', () => {
  it('parses a complete command line, with defaults', () => {
    expect(parseShredReportArgs(['u1', ...base, '--type', 'a', '--type', 'b', '--json'], env)).toEqual({
      userId: 'u1',
      padlockUrls: ['http://127.0.0.1:8091'],
      service: 'privacy',
      secret: 's3cret',
      dataBucket: 'local-data',
      storageEndpoint: undefined,
      projectId: 'local-project',
      eventTypes: ['a', 'b'],
      json: true,
    });
    expect(parseShredReportArgs(['--help'], {})).toBe('help');
  });

  it('refuses bad usage with a message naming what is wrong', () => {
    const bad = (argv: string[], e: Record<string, string> = env): string => {
      try {
        parseShredReportArgs(argv, e);
      } catch (err) {
        expect(err).toBeInstanceOf(ShredReportUsageError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(base)).toMatch(/exactly one <userId>/);
    expect(bad(['u1', 'u2', ...base])).toMatch(/exactly one <userId> \(got 2\)/);
    expect(bad(['', ...base])).toMatch(/not a user id/);
    expect(bad(['u1', ...base, '--nope'])).toMatch(/--nope/);
    expect(bad(['u1', '--service', 'privacy', '--secret-env', 'PRIVACY_SECRET'])).toMatch(/--padlock/);
    expect(bad(['u1', ...base.slice(0, 4), '--secret-env', 'MISSING'])).toMatch(/MISSING \(from --secret-env\) is not set/);
    expect(bad(['u1', ...base, '--type', '../x'])).toMatch(/--type: expected an event type name/);
  });

  it('exits 2 on a usage error and prints the usage', async () => {
    const err: string[] = [];
    expect(await shredReportCommand(['u1'], env, { out: () => undefined, err: (l) => err.push(l) })).toBe(2);
    expect(err.join('\n')).toContain('usage: npm run composer -- shred-report');
  });
});
