/**
 * The ETL's private objects in the staging bucket (not a contract):
 * `staging/<type>/<period>/<sha256 of the sorted event ids>.avro`, the
 * closers' leases `leases/<type>/<period>.json` and the intermediate sorted
 * runs of a large close `runs/<type>/<period>/<sha256 of the input names>.avro`. Audit objects are the event
 * service's (lib/events/contract.ts).
 */
import type { Period } from '../lib/partitions.ts';

export const stagingTypePrefix = (eventType: string): string => `staging/${eventType}/`;

export const stagingPeriodPrefix = (eventType: string, period: Period): string => `staging/${eventType}/${period.key}/`;

export const stagedObjectName = (eventType: string, period: Period, idHash: string): string =>
  `${stagingPeriodPrefix(eventType, period)}${idHash}.avro`;

/** The period key of a staged object name, if it is one. */
export function periodKeyOfStagedName(eventType: string, name: string): string | undefined {
  const prefix = stagingTypePrefix(eventType);
  if (!name.startsWith(prefix) || !name.endsWith('.avro')) return undefined;
  const key = name.slice(prefix.length).split('/')[0];
  return key === undefined || key === '' ? undefined : key;
}

export const leaseObjectName = (eventType: string, period: Period): string => `leases/${eventType}/${period.key}.json`;

/** Prefix of a period's intermediate merge runs (outside `staging/`, so they are never taken for staged files). */
export const runPeriodPrefix = (eventType: string, period: Period): string => `runs/${eventType}/${period.key}/`;

export const runObjectName = (eventType: string, period: Period, inputsHash: string): string => `${runPeriodPrefix(eventType, period)}${inputsHash}.avro`;
