/**
 * Partitions of delivered events in Cloud Storage (DESIGN.md §3, contract):
 * periods (UTC hours or days), their object paths, the `_SUCCESS` manifest and
 * the layout of the records in the delivered Avro files. Written by the ETL,
 * read by consumers and the decrypt CLI.
 *
 * Layout in the data bucket:
 * - `<type>/dt=YYYY-MM-DD/hour=HH/part-NNNNN.avro` + `_SUCCESS` (hourly)
 * - `<type>/dt=YYYY-MM-DD/part-NNNNN.avro` + `_SUCCESS` (daily)
 * - `part-SSS-NNNNN.avro` instead of `part-NNNNN.avro` when the period is
 *   closed in shards (`shards` in the manifest): shard SSS's parts
 * - `<type>/late/dt=YYYY-MM-DD[/hour=HH]/late-<hash>.avro` + `_LATE` (events
 *   that arrived after their partition closed)
 * - `<type>/dt=…/_LOADED` next to `_SUCCESS`: the partition's BigQuery load
 *   (types stored in BigQuery), written after the load is verified
 * - `<type>/dt=…/_SUBJECTS` next to `_SUCCESS`, written before it: the
 *   partition's subject index (lib/privacy/subject-index.ts)
 */
import { z } from 'zod';
import type { Storage } from '@google-cloud/storage';
import { AppError } from './errors.ts';
import { MAX_SHARDS_PER_PERIOD, type AvroSchemaJson, type Partitioning } from './registry/types.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** One partition's period: the UTC hour (`YYYY-MM-DDTHH`) or day (`YYYY-MM-DD`). */
export interface Period {
  granularity: Partitioning;
  /** `YYYY-MM-DDTHH` (hourly) or `YYYY-MM-DD` (daily). */
  key: string;
  /** Inclusive start, epoch ms. */
  startMs: number;
  /** Exclusive end, epoch ms. */
  endMs: number;
}

/** The period holding `timeMs` (a receive time). */
export function periodOf(timeMs: number, granularity: Partitioning): Period {
  const length = granularity === 'hourly' ? HOUR_MS : DAY_MS;
  const startMs = Math.floor(timeMs / length) * length;
  const iso = new Date(startMs).toISOString();
  return { granularity, key: granularity === 'hourly' ? iso.slice(0, 13) : iso.slice(0, 10), startMs, endMs: startMs + length };
}

const hourlyKey = /^(\d{4}-\d{2}-\d{2})T(\d{2})$/;
const dailyKey = /^(\d{4}-\d{2}-\d{2})$/;

/** The period named by `key` (`YYYY-MM-DDTHH` or `YYYY-MM-DD`). */
export function parsePeriodKey(key: string): Period {
  const h = hourlyKey.exec(key);
  const d = h === null ? dailyKey.exec(key) : null;
  const granularity: Partitioning | undefined = h !== null ? 'hourly' : d !== null ? 'daily' : undefined;
  const startMs = granularity === undefined ? NaN : Date.parse(h !== null ? `${key}:00:00.000Z` : `${key}T00:00:00.000Z`);
  if (granularity === undefined || Number.isNaN(startMs)) {
    throw new AppError('BAD_REQUEST', { message: `not a partition period: '${key}'` });
  }
  const p = periodOf(startMs, granularity);
  if (p.key !== key) throw new AppError('BAD_REQUEST', { message: `not a partition period: '${key}'` });
  return p;
}

/** The audit hours (`YYYY-MM-DDTHH`, contract.ts `hourKey`) a period spans: 1 or 24. */
export function auditHoursOf(period: Period): string[] {
  const hours: string[] = [];
  for (let t = period.startMs; t < period.endMs; t += HOUR_MS) hours.push(new Date(t).toISOString().slice(0, 13));
  return hours;
}

function datePath(period: Period): string {
  const date = period.key.slice(0, 10);
  return period.granularity === 'hourly' ? `dt=${date}/hour=${period.key.slice(11, 13)}/` : `dt=${date}/`;
}

/** `<type>/dt=YYYY-MM-DD/hour=HH/` or `<type>/dt=YYYY-MM-DD/` in the data bucket. */
export function partitionPrefix(eventType: string, period: Period): string {
  return `${eventType}/${datePath(period)}`;
}

/** The `_SUCCESS` manifest's object name; it is written last. */
export function successObjectName(eventType: string, period: Period): string {
  return `${partitionPrefix(eventType, period)}_SUCCESS`;
}

/** `part-NNNNN.avro` (index from 0) inside the partition. */
export function partObjectName(eventType: string, period: Period, index: number): string {
  return `${partitionPrefix(eventType, period)}part-${String(index).padStart(5, '0')}.avro`;
}

/**
 * `part-SSS-NNNNN.avro` inside the partition: the parts of shard `shard` of a
 * sharded period (`shardsPerPeriod` > 1), numbered from 0 within the shard.
 */
export function shardPartObjectName(eventType: string, period: Period, shard: number, index: number): string {
  return `${partitionPrefix(eventType, period)}part-${String(shard).padStart(3, '0')}-${String(index).padStart(5, '0')}.avro`;
}

/** `<type>/late/dt=YYYY-MM-DD[/hour=HH]/`: events that arrived after their partition closed. */
export function latePrefix(eventType: string, period: Period): string {
  return `${eventType}/late/${datePath(period)}`;
}

/** The late counter object (JSON `LateCounter`) of a partition. */
export function lateCounterObjectName(eventType: string, period: Period): string {
  return `${latePrefix(eventType, period)}_LATE`;
}

/** The BigQuery load marker (JSON `LoadMarker`) next to the manifest, written once the partition is loaded. */
export function loadMarkerObjectName(eventType: string, period: Period): string {
  return `${partitionPrefix(eventType, period)}_LOADED`;
}

/** The subject index (JSON `SubjectIndex`, lib/privacy/subject-index.ts) next to the manifest, written before `_SUCCESS`. */
export function subjectIndexObjectName(eventType: string, period: Period): string {
  return `${partitionPrefix(eventType, period)}_SUBJECTS`;
}

/** Parses `dt=…/hour=…/` back from an object name under `<type>/`; undefined if not a partition path. */
export function periodFromPartitionPath(eventType: string, objectName: string): Period | undefined {
  const rest = objectName.startsWith(`${eventType}/`) ? objectName.slice(eventType.length + 1) : undefined;
  if (rest === undefined) return undefined;
  const m = /^dt=(\d{4}-\d{2}-\d{2})\/(?:hour=(\d{2})\/)?/.exec(rest);
  if (m === null) return undefined;
  try {
    return parsePeriodKey(m[2] === undefined ? m[1]! : `${m[1]}T${m[2]}`);
  } catch {
    return undefined;
  }
}

/**
 * The schema of the records in delivered files (parts and late files): the
 * event id and receive time next to the payload, which has the *delivered*
 * schema of its writer version (personal fields encrypted, see the manifest's
 * `deliveredSchemas`). One writer version per file.
 */
export function deliveredFileSchema(deliveredPayloadSchema: AvroSchemaJson): AvroSchemaJson {
  return {
    type: 'record',
    // No namespace, so the payload's own names keep resolving as registered.
    name: 'edp_DeliveredEvent',
    fields: [
      { name: 'eventId', type: 'string' },
      { name: 'receiveTime', type: { type: 'long', logicalType: 'timestamp-millis' } },
      { name: 'payload', type: deliveredPayloadSchema },
    ],
  };
}

const fileEntry = z.object({
  /** Object name inside the data bucket. */
  name: z.string(),
  size: z.number().int().nonnegative(),
  /** As GCS reports it: base64 of the big-endian CRC32C. */
  crc32c: z.string(),
  /** As GCS reports it: base64 MD5. */
  md5Hash: z.string(),
  recordCount: z.number().int().nonnegative(),
  schemaFingerprint: z.string(),
});

const completenessSchema = z.object({
  /**
   * `complete`: every accepting instance wrote a final count and exactly that
   * many distinct ids were delivered for it; `complete-after-instance-loss`:
   * the same, except for the instances in `lostInstances`, gone without a
   * final count, for which at least their last count was delivered;
   * `deadline`: closed at the SLO deadline without either.
   */
  rule: z.enum(['complete', 'complete-after-instance-loss', 'deadline']),
  lostInstances: z.array(z.string()),
  /** The liveness bound the rule used: an instance silent for longer, without a final count, was gone. */
  livenessMs: z.number().int().nonnegative(),
  instances: z.array(
    z.object({
      instanceId: z.string(),
      /** Events the instance told its clients were accepted. */
      audited: z.number().int().nonnegative(),
      /** Events Pub/Sub confirmed after the instance answered their client with a timeout. */
      unreported: z.number().int().nonnegative(),
      final: z.boolean(),
      /** Distinct event ids delivered that this instance accepted. */
      delivered: z.number().int().nonnegative(),
      state: z.enum(['final', 'lost', 'live']),
    }),
  ),
  /** Events of direct producers (no accepting instance): delivered, not part of the audit. */
  direct: z.object({ delivered: z.number().int().nonnegative() }),
});
/** The manifest's per-instance completeness section. */
export type ManifestCompleteness = z.infer<typeof completenessSchema>;

export const manifestSchema = z.object({
  formatVersion: z.literal(1),
  eventType: z.string(),
  partitioning: z.enum(['hourly', 'daily']),
  /** The period key, `YYYY-MM-DDTHH` or `YYYY-MM-DD`. */
  period: z.string(),
  files: z.array(fileEntry),
  recordCount: z.number().int().nonnegative(),
  /** Writer schema fingerprints present, oldest version first. */
  schemaFingerprints: z.array(z.string()),
  /** Writer fingerprint → the delivered payload schema of that version. */
  deliveredSchemas: z.record(z.string(), z.record(z.string(), z.unknown())),
  /** The period's bounds and the receive times actually seen (ISO UTC); min/max absent if empty. */
  timeRange: z.object({
    start: z.string(),
    end: z.string(),
    minReceiveTime: z.string().optional(),
    maxReceiveTime: z.string().optional(),
  }),
  audit: z.object({
    accepted: z.number().int().nonnegative(),
    delivered: z.number().int().nonnegative(),
    duplicatesDropped: z.number().int().nonnegative(),
    complete: z.boolean(),
  }),
  closedBy: z.enum(['complete', 'deadline']),
  /** Summed per-record transform stats, e.g. `nulledFields`. */
  transformStats: z.record(z.string(), z.number()),
  /** Late events already counted when the partition closed; the live count is in `_LATE`. */
  lateCount: z.number().int().nonnegative(),
  /** Per accepting instance, audited vs delivered, and the rule that closed the partition (absent from manifests written before it). */
  completeness: completenessSchema.optional(),
  /**
   * Present when the period was closed in shards (2 or more): `files` then lists
   * shard 0's parts first, then shard 1's, …, each shard's in name order. The
   * files hold disjoint event ids, each shard's sorted by id; nothing else changes.
   */
  shards: z.number().int().min(2).max(MAX_SHARDS_PER_PERIOD).optional(),
});

/** The `_SUCCESS` manifest (contract). */
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = z.infer<typeof fileEntry>;

export const lateCounterSchema = z.object({
  eventType: z.string(),
  period: z.string(),
  count: z.number().int().nonnegative(),
  files: z.array(z.object({ name: z.string(), recordCount: z.number().int().nonnegative() })),
  updatedAt: z.string(),
});
/** The `_LATE` object: how many late events a closed partition has, and where. */
export type LateCounter = z.infer<typeof lateCounterSchema>;

const loadedFile = z.object({
  /** The late file (object name in the data bucket). */
  name: z.string(),
  jobId: z.string(),
  rows: z.number().int().nonnegative(),
  loadedAt: z.string(),
});

export const loadMarkerSchema = z.object({
  formatVersion: z.literal(1),
  eventType: z.string(),
  period: z.string(),
  /** `project.dataset.table$YYYYMMDDHH` (or `$YYYYMMDD`): the partition loaded. */
  table: z.string(),
  /** The WRITE_TRUNCATE load job of the partition's part files. */
  jobId: z.string(),
  /** Rows the partition held after that job: the manifest's record count. */
  rows: z.number().int().nonnegative(),
  /** SHA-256 (hex) of the `_SUCCESS` manifest the job ids derive from. */
  manifestSha256: z.string(),
  loadedAt: z.string(),
  /** Late files appended since (WRITE_APPEND, one job each), oldest first. */
  late: z.array(loadedFile),
  /** Rows those late files added. */
  lateRows: z.number().int().nonnegative(),
});
/** The `_LOADED` object: a closed partition's BigQuery load, verified (contract: ops and the partition status read it). */
export type LoadMarker = z.infer<typeof loadMarkerSchema>;

/** Validates a load marker's JSON text. */
export function parseLoadMarker(text: string): LoadMarker {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new AppError('BODY_INVALID', { message: 'load marker is not JSON', cause });
  }
  const r = loadMarkerSchema.safeParse(json);
  if (!r.success) throw new AppError('BODY_INVALID', { message: `load marker is not valid: ${r.error.issues[0]?.message ?? ''}` });
  return r.data;
}

/** Validates a manifest's JSON text. */
export function parseManifest(text: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new AppError('BODY_INVALID', { message: 'manifest is not JSON', cause });
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) throw new AppError('BODY_INVALID', { message: `manifest is not valid: ${r.error.issues[0]?.message ?? ''}` });
  return r.data;
}

/** Reads a partition's manifest; undefined when the partition is not closed (no `_SUCCESS`). */
export async function readManifest(
  storage: Storage,
  dataBucket: string,
  eventType: string,
  period: Period,
): Promise<Manifest | undefined> {
  try {
    const [bytes] = await storage.bucket(dataBucket).file(successObjectName(eventType, period)).download();
    return parseManifest(bytes.toString('utf8'));
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return undefined;
    throw err;
  }
}
