/**
 * The ETL's objects in the staging bucket, as the ETL writes them and the
 * partition status service reads them (so this is a contract between the
 * two, not a consumer one): staged files
 * `staging/<type>/<period>/<sha256 of the sorted event ids>.avro` (custom
 * metadata `edp-record-count`: records in the file) and the closers' leases
 * `leases/<type>/<period>.json`. Audit objects are the event service's
 * (lib/events/contract.ts).
 */
import type { Period } from './partitions.ts';

export const STAGING_PREFIX = 'staging/';
export const LEASE_PREFIX = 'leases/';

/** Custom metadata of a staged object: its record count (summed without reading the file). */
export const STAGED_COUNT_KEY = 'edp-record-count';

export const stagingTypePrefix = (eventType: string): string => `${STAGING_PREFIX}${eventType}/`;

export const stagingPeriodPrefix = (eventType: string, period: Period): string => `${STAGING_PREFIX}${eventType}/${period.key}/`;

/** The period key of a staged object name, if it is one. */
export function periodKeyOfStagedName(eventType: string, name: string): string | undefined {
  const prefix = stagingTypePrefix(eventType);
  if (!name.startsWith(prefix) || !name.endsWith('.avro')) return undefined;
  const key = name.slice(prefix.length).split('/')[0];
  return key === undefined || key === '' ? undefined : key;
}

export const leaseObjectName = (eventType: string, period: Period): string => `${LEASE_PREFIX}${eventType}/${period.key}.json`;

/** `{eventType, periodKey}` of a lease object name, if it is one. */
export function parseLeaseName(name: string): { eventType: string; periodKey: string } | undefined {
  const m = /^leases\/([^/]+)\/([^/]+)\.json$/.exec(name);
  return m === null ? undefined : { eventType: m[1]!, periodKey: m[2]! };
}

/** `{eventType, periodKey}` of a staged object name under `staging/`, if it is one. */
export function parseStagedName(name: string): { eventType: string; periodKey: string } | undefined {
  // A sharded type's staged files are one folder deeper: `…/<period>/shard-<i>-of-<n>/<sha256>.avro`.
  const m = /^staging\/([^/]+)\/([^/]+)\/(?:shard-\d{1,3}-of-\d{1,3}\/)?[^/]+\.avro$/.exec(name);
  return m === null ? undefined : { eventType: m[1]!, periodKey: m[2]! };
}
