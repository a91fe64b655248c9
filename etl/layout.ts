/**
 * The ETL's private objects in the staging bucket (not a contract):
 * `staging/<type>/<period>/<sha256 of the sorted event ids>.avro`, the
 * closers' leases `leases/<type>/<period>.json` and the intermediate sorted
 * runs of a large close `runs/<type>/<period>/<sha256 of the input names>.avro`. The staged files' and leases'
 * names are shared with the partition status service: lib/staging-layout.ts. Audit objects are the event
 * service's (lib/events/contract.ts).
 */
import type { Period } from '../lib/partitions.ts';

export { stagingTypePrefix, stagingPeriodPrefix, periodKeyOfStagedName, leaseObjectName } from '../lib/staging-layout.ts';
import { stagingPeriodPrefix } from '../lib/staging-layout.ts';

export const stagedObjectName = (eventType: string, period: Period, idHash: string): string =>
  `${stagingPeriodPrefix(eventType, period)}${idHash}.avro`;

/** Prefix of a period's intermediate merge runs (outside `staging/`, so they are never taken for staged files). */
export const runPeriodPrefix = (eventType: string, period: Period): string => `runs/${eventType}/${period.key}/`;

export const runObjectName = (eventType: string, period: Period, inputsHash: string): string => `${runPeriodPrefix(eventType, period)}${inputsHash}.avro`;
