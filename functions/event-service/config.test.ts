import { describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors.ts';
import { defaultLimits, loadConfig } from './config.ts';

const minimal = { GCP_PROJECT: 'p', STAGING_BUCKET: 'staging-bucket', REGISTRY_DIR: '/tmp/registry' };

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig(minimal);
    expect(c.service.port).toBe(8080);
    expect(c.service.limits).toEqual(defaultLimits);
    expect(c.service.registryRefreshMs).toBe(2000);
    expect(c.service.auditFlushMs).toBe(1000);
    expect(c.registry).toEqual({ kind: 'file', dir: '/tmp/registry' });
  });

  it('reads the Firestore registry location for production', () => {
    const c = loadConfig({ GCP_PROJECT: 'p', STAGING_BUCKET: 'staging-bucket', REGISTRY_STORE: 'firestore', FIRESTORE_EMULATOR_HOST: '127.0.0.1:8086' });
    expect(c.registry).toEqual({ kind: 'firestore', collection: 'eventTypes', emulatorHost: '127.0.0.1:8086' });
    expect(() => loadConfig({ ...minimal, REGISTRY_STORE: 'sql' })).toThrow(/REGISTRY_STORE/);
  });

  it('reads tunables and makes the instance id unique per process', () => {
    const c = loadConfig({ ...minimal, PORT: '0', MAX_BATCH_EVENTS: '10', REGISTRY_REFRESH_MS: '500', INSTANCE_ID: 'pod-1', PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' });
    expect(c.service.port).toBe(0);
    expect(c.service.limits.maxBatchEvents).toBe(10);
    expect(c.service.registryRefreshMs).toBe(500);
    expect(c.service.instanceId).toMatch(/^pod-1-\d+-[0-9a-f]{8}$/);
    expect(c.service.pubsubEmulatorHost).toBe('127.0.0.1:8085');
  });

  it('names the bad variable', () => {
    expect(() => loadConfig({ ...minimal, PORT: 'x' })).toThrow(/PORT/);
    expect(() => loadConfig({ ...minimal, MAX_BODY_BYTES: '-1' })).toThrow(/MAX_BODY_BYTES/);
    const { GCP_PROJECT: _p, ...noProject } = minimal;
    expect(() => loadConfig(noProject)).toThrow(AppError);
    expect(() => loadConfig(noProject)).toThrow(/GCP_PROJECT/);
  });
});
