import { describe, expect, it } from 'vitest';
import { loadMarkerObjectName, parseLoadMarker, parsePeriodKey, type LoadMarker } from '../lib/partitions.ts';
import type { EventTypeRecord } from '../lib/registry/types.ts';
import { eventTypeRecord } from '../test/support/etl.ts';
import { classifyRequestError, isRetryableJobError, lateJobId, loadConfiguration, partitionDecorator, partitionJobId, sha256Hex } from './bigquery-jobs.ts';
import { hostsType, loadsIntoBigQuery } from './workers.ts';

const hour = parsePeriodKey('2026-11-30T07');
const day = parsePeriodKey('2026-11-30');
const sha = sha256Hex('{"manifest":1}');

describe('partition decorators and job ids', () => {
  it('decorates hours as YYYYMMDDHH and days as YYYYMMDD', () => {
    expect(partitionDecorator(hour)).toBe('2026113007');
    expect(partitionDecorator(day)).toBe('20261130');
  });

  it('derives the same id from the same type, period, manifest and attempt, and a different one otherwise', () => {
    const id = partitionJobId('track_played', hour, sha, 0);
    expect(id).toBe(`edp_load_track_played_2026113007_${sha.slice(0, 32)}_0`);
    expect(partitionJobId('track_played', hour, sha, 0)).toBe(id);
    const others = [
      partitionJobId('track_played', hour, sha, 1),
      partitionJobId('track_played', parsePeriodKey('2026-11-30T08'), sha, 0),
      partitionJobId('track_played', hour, sha256Hex('{"manifest":2}'), 0),
      partitionJobId('track_skipped', hour, sha, 0),
    ];
    expect(new Set([id, ...others]).size).toBe(5);
    // BigQuery job ids: letters, digits, underscores and dashes, at most 1,024 characters.
    for (const j of [id, ...others, lateJobId('track_played', hour, 'track_played/late/dt=2026-11-30/hour=07/late-ab.avro', 'AAAAAA==', 3)]) {
      expect(j).toMatch(/^[A-Za-z0-9_-]{1,1024}$/);
    }
  });

  it('gives each late file its own id, stable for the same object', () => {
    const a = lateJobId('t_x', hour, 't_x/late/dt=2026-11-30/hour=07/late-a.avro', 'crcA', 0);
    expect(lateJobId('t_x', hour, 't_x/late/dt=2026-11-30/hour=07/late-a.avro', 'crcA', 0)).toBe(a);
    expect(lateJobId('t_x', hour, 't_x/late/dt=2026-11-30/hour=07/late-b.avro', 'crcA', 0)).not.toBe(a);
    expect(lateJobId('t_x', hour, 't_x/late/dt=2026-11-30/hour=07/late-a.avro', 'crcB', 0)).not.toBe(a);
    expect(a.startsWith('edp_late_t_x_2026113007_')).toBe(true);
  });
});

describe('loadConfiguration', () => {
  const target = { projectId: 'p', datasetId: 'events', tableId: 'track_played' };
  it('loads Avro with logical types into the decorated partition, never creating the table', () => {
    expect(loadConfiguration({ target, period: hour, sourceUris: ['gs://b/x.avro'], writeDisposition: 'WRITE_TRUNCATE', allowSchemaUpdates: false })).toEqual({
      sourceUris: ['gs://b/x.avro'],
      sourceFormat: 'AVRO',
      useAvroLogicalTypes: true,
      destinationTable: { projectId: 'p', datasetId: 'events', tableId: 'track_played$2026113007' },
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_NEVER',
    });
  });
  it('lets a type with several writer versions add and relax columns', () => {
    const c = loadConfiguration({ target, period: day, sourceUris: [], writeDisposition: 'WRITE_APPEND', allowSchemaUpdates: true });
    expect(c.schemaUpdateOptions).toEqual(['ALLOW_FIELD_ADDITION', 'ALLOW_FIELD_RELAXATION']);
    expect(c.destinationTable).toMatchObject({ tableId: 'track_played$20261130' });
  });
});

describe('BigQuery errors', () => {
  it.each([
    [{ code: 409, errors: [{ reason: 'duplicate' }] }, 'duplicate'],
    [{ code: 404, errors: [{ reason: 'notFound' }] }, 'notFound'],
    [{ code: 503, errors: [{ reason: 'backendError' }] }, 'retryable'],
    [{ code: 500 }, 'retryable'],
    [{ code: 429 }, 'retryable'],
    [{ code: 403, errors: [{ reason: 'rateLimitExceeded' }] }, 'retryable'],
    [{ code: 403, errors: [{ reason: 'accessDenied' }] }, 'permanent'],
    [{ code: 400, errors: [{ reason: 'invalid' }] }, 'permanent'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'retryable'],
  ])('%j is %s', (err, kind) => {
    expect(classifyRequestError(err)).toBe(kind);
  });

  it('retries jobs that failed for a transient reason only', () => {
    for (const reason of ['backendError', 'internalError', 'rateLimitExceeded', 'jobBackendError', 'notFound']) expect(isRetryableJobError({ reason })).toBe(true);
    for (const reason of ['invalid', 'accessDenied', 'stopped', undefined]) expect(isRetryableJobError({ reason })).toBe(false);
  });
});

describe('hosting', () => {
  const withStorage = (storage: EventTypeRecord['settings']['storage']): EventTypeRecord => {
    const r = eventTypeRecord('track_played');
    return { ...r, settings: { ...r.settings, storage } };
  };
  it('hosts BigQuery-only, GCS-only and both types; loads the BigQuery ones', () => {
    for (const storage of [['gcs'], ['bigquery'], ['bigquery', 'gcs']] as const) expect(hostsType(withStorage([...storage]), undefined)).toBe(true);
    expect(loadsIntoBigQuery(withStorage(['gcs']))).toBe(false);
    expect(loadsIntoBigQuery(withStorage(['bigquery']))).toBe(true);
    expect(loadsIntoBigQuery(withStorage(['bigquery', 'gcs']))).toBe(true);
    expect(hostsType({ ...withStorage(['bigquery']), status: 'deleted' }, undefined)).toBe(false);
    expect(hostsType(withStorage(['bigquery']), ['other_type'])).toBe(false);
  });
});

describe('the _LOADED marker', () => {
  it('sits next to _SUCCESS and validates', () => {
    expect(loadMarkerObjectName('page_view', hour)).toBe('page_view/dt=2026-11-30/hour=07/_LOADED');
    expect(loadMarkerObjectName('page_view', day)).toBe('page_view/dt=2026-11-30/_LOADED');
    const marker: LoadMarker = {
      formatVersion: 1,
      eventType: 'page_view',
      period: hour.key,
      table: 'p.events.page_view$2026113007',
      jobId: partitionJobId('page_view', hour, sha, 0),
      rows: 3,
      manifestSha256: sha,
      loadedAt: '2026-11-30T09:00:00.000Z',
      late: [{ name: 'page_view/late/dt=2026-11-30/hour=07/late-x.avro', jobId: 'edp_late_x', rows: 1, loadedAt: '2026-11-30T10:00:00.000Z' }],
      lateRows: 1,
    };
    expect(parseLoadMarker(JSON.stringify(marker))).toEqual(marker);
    expect(() => parseLoadMarker('{')).toThrow(/not JSON/);
    expect(() => parseLoadMarker(JSON.stringify({ ...marker, rows: -1 }))).toThrow(/not valid/);
  });
});
