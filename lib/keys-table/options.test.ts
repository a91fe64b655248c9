import { describe, expect, it } from 'vitest';
import { parseKeysTableOptions } from './options.ts';

const base = ['--padlock', 'http://127.0.0.1:8091', '--service', 'consumer-analytics', '--secret-env', 'S', '--dataset', 'consumer', '--staging-bucket', 'consumer-staging'];
const env = { S: 'a-secret' };

describe('keys-table CLI options', () => {
  it('takes the required flags with defaults for the rest, the secret from the named variable', () => {
    expect(parseKeysTableOptions(base, env)).toEqual({
      padlockUrls: ['http://127.0.0.1:8091'],
      service: 'consumer-analytics',
      secret: 'a-secret',
      context: undefined,
      categories: undefined,
      dataset: 'consumer',
      table: 'keysets',
      stagingBucket: 'consumer-staging',
      usersFrom: undefined,
      everyMs: undefined,
      bigqueryEndpoint: undefined,
      storageEndpoint: undefined,
      projectId: 'local-project',
      location: undefined,
    });
  });

  it('reads the events table (with a partition), the column, categories and the interval', () => {
    const o = parseKeysTableOptions([...base, '--users-from', 'events.user_profile_updated$2026113016', '--user-column', 'payload.userId', '--categories', 'contact,network', '--every-seconds', '60'], env);
    expect(o.usersFrom).toEqual({ dataset: 'events', table: 'user_profile_updated$2026113016', column: 'payload.userId' });
    expect(o.categories).toEqual(['contact', 'network']);
    expect(o.everyMs).toBe(60_000);
  });

  it.each([
    [['--users-from', 'no_dot'], 'USERS_FROM'],
    [['--user-column', 'payload.user id'], 'USER_COLUMN'],
    [['--categories', 'Contact;x'], 'CATEGORIES'],
    [['--every-seconds', '0'], 'EVERY_SECONDS'],
    [['--table', 'keys-table'], 'TABLE'],
  ])('refuses %j naming the setting', (extra, name) => {
    expect(() => parseKeysTableOptions([...base, ...extra], env)).toThrow(name);
  });

  it('refuses a missing secret naming the variable, and a missing required flag', () => {
    expect(() => parseKeysTableOptions(base, {})).toThrow('S (from --secret-env) is not set');
    expect(() => parseKeysTableOptions(base.slice(0, 8), env)).toThrow('STAGING_BUCKET');
  });
});
