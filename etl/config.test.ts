import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';
import { loadConfig, resolveTuning } from './config.ts';

const ok = { STAGING_BUCKET: 'stage-b', DATA_BUCKET: 'data-b' };

describe('loadConfig', () => {
  it('applies defaults and overrides', () => {
    const c = loadConfig({ ...ok, EVENT_TYPES: 'page_view, sign_up', ETL_DEADLINE_HIGH_MS: '5000', ETL_CLOSE_GRACE_MS: '0' });
    expect(c.eventTypes).toEqual(['page_view', 'sign_up']);
    expect(c.tuning.closeDeadlineMs).toEqual({ high: 5000, normal: 24 * 3_600_000, low: 72 * 3_600_000 });
    expect(c.tuning.closeGraceMs).toBe(0);
    expect(c.projectId).toBe('local-project');
    expect(c.registry).toEqual({ kind: 'file', dir: '.data/registry' });
    expect(c.padlock).toBeUndefined();
    expect(c.metricsPort).toBeUndefined();
  });
  it('serves metrics on ETL_METRICS_PORT and names a bad port', () => {
    expect(loadConfig({ ...ok, ETL_METRICS_PORT: '9464' }).metricsPort).toBe(9464);
    expect(loadConfig({ ...ok, ETL_METRICS_PORT: 'off' }).metricsPort).toBeUndefined();
    expect(() => loadConfig({ ...ok, ETL_METRICS_PORT: '70000' })).toThrow(/ETL_METRICS_PORT/);
    expect(() => loadConfig({ ...ok, ETL_METRICS_PORT: 'x' })).toThrow(/ETL_METRICS_PORT/);
  });
  it('reads the registry store and padlock settings', () => {
    expect(loadConfig({ ...ok, REGISTRY_DIR: '/srv/registry' }).registry).toEqual({ kind: 'file', dir: '/srv/registry' });
    expect(loadConfig({ ...ok, REGISTRY_STORE: 'firestore', FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' }).registry).toEqual({
      kind: 'firestore',
      emulatorHost: '127.0.0.1:8080',
      collection: 'eventTypes',
    });
    expect(loadConfig({ ...ok, PADLOCK_URL: 'http://127.0.0.1:8091', PADLOCK_SECRET: 's3cret' }).padlock).toEqual({
      urls: ['http://127.0.0.1:8091'],
      idToken: false,
      service: 'etl',
      secret: 's3cret',
      keyContext: 'events',
    });
    expect(
      loadConfig({ ...ok, PADLOCK_URL: 'https://padlock-a.example, https://padlock-mirror-a.example', PADLOCK_ID_TOKEN: 'true', PADLOCK_SECRET: 's' }).padlock,
    ).toMatchObject({ urls: ['https://padlock-a.example', 'https://padlock-mirror-a.example'], idToken: true });
  });
  it('reads where BigQuery types are loaded', () => {
    expect(loadConfig(ok).bigQuery).toEqual({ dataset: 'events', endpoint: undefined, location: undefined, createTables: false });
    const c = loadConfig({ ...ok, BIGQUERY_DATASET: 'events_eu', BIGQUERY_ENDPOINT: 'http://127.0.0.1:9050', BIGQUERY_LOCATION: 'EU', ETL_LOAD_CHECK_MS: '2000' });
    expect(c.bigQuery).toEqual({ dataset: 'events_eu', endpoint: 'http://127.0.0.1:9050', location: 'EU', createTables: true });
    expect(c.tuning.loadCheckIntervalMs).toBe(2000);
  });
  it.each([
    [{ ...ok, BIGQUERY_DATASET: 'events-eu' }, 'BIGQUERY_DATASET'],
    [{ ...ok, BIGQUERY_ENDPOINT: 'nowhere' }, 'BIGQUERY_ENDPOINT'],
    [{ ...ok, ETL_LOAD_CHECK_MS: '0' }, 'ETL_LOAD_CHECK_MS'],
    [{ ...ok, DATA_BUCKET: undefined }, 'DATA_BUCKET'],
    [{ ...ok, PUBSUB_EMULATOR_HOST: 'nope' }, 'PUBSUB_EMULATOR_HOST'],
    [{ ...ok, EVENT_TYPES: 'Bad-Type' }, 'EVENT_TYPES'],
    [{ ...ok, ETL_MAX_MESSAGES: '0' }, 'ETL_MAX_MESSAGES'],
    [{ ...ok, ETL_FLUSH_RECORDS: '9000', ETL_MAX_MESSAGES: '100' }, 'ETL_FLUSH_RECORDS'],
    [{ ...ok, REGISTRY_STORE: 'postgres' }, 'REGISTRY_STORE'],
    [{ ...ok, PADLOCK_URL: 'http://127.0.0.1:8091' }, 'PADLOCK_SECRET'],
    [{ ...ok, PADLOCK_URL: 'not a url', PADLOCK_SECRET: 's' }, 'PADLOCK_URL'],
    [{ ...ok, PADLOCK_URL: 'http://127.0.0.1:8091,', PADLOCK_SECRET: 's' }, 'PADLOCK_URL'],
    [{ ...ok, PADLOCK_URL: 'http://127.0.0.1:8091', PADLOCK_SECRET: 's', PADLOCK_ID_TOKEN: 'yes' }, 'PADLOCK_ID_TOKEN'],
  ])('names the bad variable %#', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(variable);
  });
  it('rejects a flush size flow control can never reach', () => {
    expect(() => resolveTuning({ flushRecords: 10, maxMessagesInFlight: 5 })).toThrow();
  });
});

describe('Backoff', () => {
  it('grows exponentially, jittered into the upper half, capped, and resets', () => {
    const b = new Backoff(100, 1000, () => 1);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    const low = new Backoff(100, 1000, () => 0);
    expect(low.next()).toBe(50);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
