/**
 * The listing pass: what the buckets say about every partition of every
 * registered type in the window, kept in memory between passes.
 *
 * One pass lists the staging bucket's `staging/` and `leases/` once (only
 * unclosed periods have objects there), and per type its data prefix and its
 * audit counts from the type's *frontier*: the oldest period of the window
 * that is not final yet. A period is final once closed (and loaded, for a
 * type stored in BigQuery), or when it ended past its deadline with nothing
 * accepted; nothing before the frontier is listed again, and a manifest is
 * read once (a closed partition never changes). An object is downloaded only
 * when it is new or its generation changed: `_SUCCESS` once, `_LOADED`,
 * `_LATE` and audit counts when rewritten. Late counters are listed every
 * pass (the type's `late/` prefix sorts after its `dt=` prefixes, so it is
 * the tail of the same listing).
 */
import type { Bucket, File, Storage } from '@google-cloud/storage';
import { AUDIT_PREFIX, type AuditCount } from '../../lib/events/contract.ts';
import {
  parseLoadMarker,
  parseManifest,
  parsePeriodKey,
  periodOf,
  type Period,
} from '../../lib/partitions.ts';
import { LEASE_PREFIX, parseLeaseName, parseStagedName, STAGED_COUNT_KEY, STAGING_PREFIX } from '../../lib/staging-layout.ts';
import type { EventTypeRecord, RegistryReader } from '../../lib/registry/types.ts';
import type { Logger } from '../../lib/logger.ts';
import { partitionStatus, type LoadSummary, type ManifestSummary, type PartitionFacts, type PartitionStatus, type TypeSettingsView } from './state.ts';
import type { StatusTuning } from './config.ts';

const HOUR_MS = 3_600_000;
/** Object reads in flight per type (times `listConcurrency` types). */
const READS_PER_TYPE = 4;

/** SLO hours by priority when the registry has no monitoring record yet (composer/monitoring.ts sets the same). */
const DEFAULT_SLO_HOURS = { high: 3, normal: 24, low: 72 } as const;

interface Versioned<T> {
  generation: string;
  value: T;
}

/** What is kept per type between passes. */
interface TypeCache {
  /** Start (epoch ms) of the oldest period listed again by the next pass. */
  frontierMs: number | undefined;
  manifests: Map<string, ManifestSummary>;
  loaded: Map<string, Versioned<LoadSummary>>;
  late: Map<string, Versioned<number>>;
  /** Audit object name → its count (and the hour it counts). */
  audit: Map<string, Versioned<{ hour: string; accepted: number }>>;
}

/** One registered type as the status shows it. */
export interface TypeView extends TypeSettingsView {
  description: string;
  status: EventTypeRecord['status'];
  versions: { version: number; fingerprint: string; createdAt: string }[];
}

export interface Snapshot {
  /** When the pass that made it started. */
  at: string;
  atMs: number;
  /** Oldest period start shown. */
  windowStartMs: number;
  types: TypeView[];
  /** Type name → its partitions in the window, oldest first. */
  partitions: Map<string, PartitionStatus[]>;
}

export interface PassStats {
  /** List requests (pages) made. */
  listRequests: number;
  objectsListed: number;
  /** Objects downloaded (new or changed). */
  downloads: number;
  durationMs: number;
}

export interface ScannerOptions {
  storage: Storage;
  stagingBucket: string;
  dataBucket: string;
  registry: RegistryReader;
  tuning: StatusTuning;
  logger: Logger;
  now?: () => number;
}

interface Staged {
  files: number;
  records: number;
}

/** Runs listing passes and keeps the latest snapshot. */
export class PartitionScanner {
  private readonly caches = new Map<string, TypeCache>();
  private readonly staging: Bucket;
  private readonly data: Bucket;
  private readonly now: () => number;
  private stats: PassStats = { listRequests: 0, objectsListed: 0, downloads: 0, durationMs: 0 };
  private latest: Snapshot | undefined;
  private running: Promise<Snapshot> | undefined;

  constructor(private readonly opts: ScannerOptions) {
    this.staging = opts.storage.bucket(opts.stagingBucket);
    this.data = opts.storage.bucket(opts.dataBucket);
    this.now = opts.now ?? Date.now;
  }

  /** The last completed pass's snapshot, if any. */
  snapshot(): Snapshot | undefined {
    return this.latest;
  }

  lastPass(): PassStats {
    return { ...this.stats };
  }

  /** Runs one pass (or joins the one running) and returns its snapshot. */
  refresh(): Promise<Snapshot> {
    if (this.running !== undefined) return this.running;
    const run = this.pass().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async pass(): Promise<Snapshot> {
    const started = performance.now();
    const stats: PassStats = { listRequests: 0, objectsListed: 0, downloads: 0, durationMs: 0 };
    const nowMs = this.now();
    const windowStartMs = Math.floor((nowMs - this.opts.tuning.windowHours * HOUR_MS) / HOUR_MS) * HOUR_MS;
    const records = (await this.opts.registry.listEventTypes()).filter((r) => r.status !== 'deleted');
    const types = records.map(typeView).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const known = new Set(types.map((t) => t.name));
    for (const name of [...this.caches.keys()]) if (!known.has(name)) this.caches.delete(name);

    const staged = new Map<string, Staged>();
    const stagedPeriods = new Map<string, Set<string>>();
    for (const f of await this.list(this.staging, { prefix: STAGING_PREFIX }, stats)) {
      const s = parseStagedName(f.name);
      if (s === undefined) continue;
      const key = `${s.eventType}/${s.periodKey}`;
      const periods = stagedPeriods.get(s.eventType) ?? new Set<string>();
      periods.add(s.periodKey);
      stagedPeriods.set(s.eventType, periods);
      const entry = staged.get(key) ?? { files: 0, records: 0 };
      entry.files++;
      const n = Number(f.metadata.metadata?.[STAGED_COUNT_KEY]);
      // A staged file always holds at least one record; its count is in its metadata.
      entry.records += Number.isSafeInteger(n) && n > 0 ? n : 1;
      staged.set(key, entry);
    }
    const leased = new Set<string>();
    for (const f of await this.list(this.staging, { prefix: LEASE_PREFIX }, stats)) {
      const l = parseLeaseName(f.name);
      if (l !== undefined) leased.add(`${l.eventType}/${l.periodKey}`);
    }

    const partitions = new Map<string, PartitionStatus[]>();
    await eachLimited(types, this.opts.tuning.listConcurrency, async (type) => {
      partitions.set(type.name, await this.scanType(type, nowMs, windowStartMs, { staged, stagedPeriods, leased }, stats));
    });
    stats.durationMs = performance.now() - started;
    this.stats = stats;
    this.latest = { at: new Date(nowMs).toISOString(), atMs: nowMs, windowStartMs, types, partitions };
    return this.latest;
  }

  private cacheOf(name: string): TypeCache {
    let c = this.caches.get(name);
    if (c === undefined) {
      c = { frontierMs: undefined, manifests: new Map(), loaded: new Map(), late: new Map(), audit: new Map() };
      this.caches.set(name, c);
    }
    return c;
  }

  private async scanType(
    type: TypeView,
    nowMs: number,
    windowStartMs: number,
    staging: { staged: Map<string, Staged>; stagedPeriods: Map<string, Set<string>>; leased: Set<string> },
    stats: PassStats,
  ): Promise<PartitionStatus[]> {
    const { staged, stagedPeriods, leased } = staging;
    const cache = this.cacheOf(type.name);
    const first = periodOf(windowStartMs, type.partitioning);
    const frontier = periodOf(Math.max(first.startMs, cache.frontierMs ?? first.startMs), type.partitioning);
    const t = type.name;

    // Data bucket: partitions from the frontier on, then (same prefix, sorted after `dt=`) the late counters.
    const startOffset = type.partitioning === 'hourly' ? `${t}/dt=${frontier.key.slice(0, 10)}/hour=${frontier.key.slice(11, 13)}/` : `${t}/dt=${frontier.key}/`;
    await eachLimited(await this.list(this.data, { prefix: `${t}/`, startOffset }, stats), READS_PER_TYPE, async (f) => {
      try {
        await this.readMarker(f, type, cache, nowMs, stats);
      } catch (err) {
        // One unreadable object must not hide every other partition: logged, tried again next pass.
        this.opts.logger.warn('status: partition object unreadable', { eventType: t, object: f.name, error: err });
      }
    });

    // Audit counts of the hours from the frontier on (older ones are in the manifests).
    const auditPrefix = `${AUDIT_PREFIX}${t}/`;
    const hours = new Set<string>();
    const auditObjects = await this.list(this.staging, { prefix: auditPrefix, startOffset: `${auditPrefix}${new Date(frontier.startMs).toISOString().slice(0, 13)}` }, stats);
    await eachLimited(auditObjects, READS_PER_TYPE, async (f) => {
      const hour = f.name.slice(auditPrefix.length).split('/')[0] ?? '';
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(hour)) return;
      // A closed partition's accepted count is its manifest's: its audit objects need no reading.
      if (cache.manifests.has(periodOf(Date.parse(`${hour}:00:00.000Z`), type.partitioning).key)) return;
      hours.add(f.name);
      const generation = String(f.metadata.generation ?? '');
      if (cache.audit.get(f.name)?.generation === generation) return;
      const text = await this.download(f, stats);
      if (text === undefined) return;
      cache.audit.set(f.name, { generation, value: { hour, accepted: countField(text, 'accepted') } });
    });
    const acceptedByPeriod = new Map<string, number>();
    for (const [name, a] of cache.audit) {
      if (!hours.has(name)) {
        cache.audit.delete(name);
        continue;
      }
      const key = periodOf(Date.parse(`${a.value.hour}:00:00.000Z`), type.partitioning).key;
      acceptedByPeriod.set(key, (acceptedByPeriod.get(key) ?? 0) + a.value.accepted);
    }

    // Every period of the window, oldest first; the new frontier is the oldest one not final.
    const timing = { graceMs: this.opts.tuning.closeGraceMs, deadlineMs: this.opts.tuning.closeDeadlineMs[type.priority] };
    const inBigQuery = type.storage.includes('bigquery');
    const out: PartitionStatus[] = [];
    let newFrontier: number | undefined;
    for (let p: Period = first; p.startMs <= nowMs; p = periodOf(p.endMs, type.partitioning)) {
      const k = p.key;
      const s = staged.get(`${t}/${k}`);
      const facts: PartitionFacts = {
        accepted: acceptedByPeriod.get(k) ?? 0,
        stagedFiles: s?.files ?? 0,
        stagedRecords: s?.records ?? 0,
        leased: leased.has(`${t}/${k}`),
        ...(cache.manifests.has(k) ? { manifest: cache.manifests.get(k)! } : {}),
        ...(cache.late.has(k) ? { lateCount: cache.late.get(k)!.value } : {}),
        ...(cache.loaded.has(k) ? { loaded: cache.loaded.get(k)!.value } : {}),
      };
      const status = partitionStatus(type, p, facts, nowMs, timing);
      out.push(status);
      const final =
        (facts.manifest !== undefined && (!inBigQuery || facts.loaded !== undefined)) ||
        // Audit counts are written within seconds of acceptance: an hour with none after the grace stays empty.
        (status.state === 'empty' && nowMs >= p.endMs + timing.graceMs);
      if (!final && newFrontier === undefined) newFrontier = p.startMs;
    }
    // Staged files of a period before the frontier (an ETL far behind) pull it back: their period may still close.
    for (const key of stagedPeriods.get(t) ?? []) {
      const startMs = Date.parse(type.partitioning === 'hourly' ? `${key}:00:00.000Z` : `${key}T00:00:00.000Z`);
      if (!Number.isNaN(startMs) && startMs >= first.startMs && (newFrontier === undefined || startMs < newFrontier)) newFrontier = startMs;
    }
    cache.frontierMs = newFrontier ?? periodOf(nowMs, type.partitioning).startMs;
    // Forget what fell out of the window.
    for (const m of [cache.manifests, cache.loaded, cache.late] as Map<string, unknown>[]) {
      for (const k of m.keys()) if (parsePeriodKey(k).endMs <= first.startMs) m.delete(k);
    }
    return out;
  }

  /** Reads a `_SUCCESS`, `_LOADED` or `_LATE` object into the type's cache if new or changed. */
  private async readMarker(f: File, type: TypeView, cache: TypeCache, nowMs: number, stats: PassStats): Promise<void> {
    const t = type.name;
    const rest = f.name.slice(t.length + 1);
    const late = rest.startsWith('late/');
    const m = /^(?:late\/)?dt=(\d{4}-\d{2}-\d{2})\/(?:hour=(\d{2})\/)?(_SUCCESS|_LOADED|_LATE)$/.exec(rest);
    if (m === null) return;
    const key = type.partitioning === 'hourly' ? (m[2] === undefined ? undefined : `${m[1]}T${m[2]}`) : m[2] === undefined ? m[1]! : undefined;
    if (key === undefined) return;
    const marker = m[3]!;
    const generation = String(f.metadata.generation ?? '');
    if (late && marker === '_LATE') {
      if (cache.late.get(key)?.generation === generation) return;
      const text = await this.download(f, stats);
      if (text === undefined) return;
      cache.late.set(key, { generation, value: countField(text, 'count') });
    } else if (!late && marker === '_SUCCESS') {
      if (cache.manifests.has(key)) return;
      const text = await this.download(f, stats);
      if (text === undefined) return;
      const manifest = parseManifest(text);
      const created = Date.parse(String(f.metadata.timeCreated ?? ''));
      cache.manifests.set(key, {
        closedBy: manifest.closedBy,
        recordCount: manifest.recordCount,
        accepted: manifest.audit.accepted,
        delivered: manifest.audit.delivered,
        duplicatesDropped: manifest.audit.duplicatesDropped,
        files: manifest.files.length,
        schemaFingerprints: manifest.schemaFingerprints,
        closedAtMs: Number.isNaN(created) ? nowMs : created,
      });
    } else if (!late && marker === '_LOADED') {
      if (cache.loaded.get(key)?.generation === generation) return;
      const text = await this.download(f, stats);
      if (text === undefined) return;
      const marker = parseLoadMarker(text);
      cache.loaded.set(key, { generation, value: { table: marker.table, rows: marker.rows, lateRows: marker.lateRows, loadedAt: marker.loadedAt } });
    }
  }

  private async list(bucket: Bucket, query: { prefix: string; startOffset?: string }, stats: PassStats): Promise<File[]> {
    const out: File[] = [];
    let pageToken: string | undefined;
    do {
      const [files, next] = await bucket.getFiles({ ...query, autoPaginate: false, maxResults: 1000, ...(pageToken === undefined ? {} : { pageToken }) });
      stats.listRequests++;
      stats.objectsListed += files.length;
      out.push(...files);
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken !== undefined);
    return out;
  }

  private async download(file: File, stats: PassStats): Promise<string | undefined> {
    stats.downloads++;
    try {
      const [bytes] = await file.download({ validation: false });
      return bytes.toString('utf8');
    } catch (err) {
      // Deleted between the listing and the read (a lease released, a staged file closed): next pass.
      if ((err as { code?: unknown }).code === 404) return undefined;
      throw err;
    }
  }
}

/** A non-negative count field of a small JSON object (audit count, late counter); 0 when absent or not JSON. */
function countField(text: string, field: keyof AuditCount | 'count'): number {
  try {
    const v = (JSON.parse(text) as Record<string, unknown>)[field];
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
  } catch {
    return 0;
  }
}

function typeView(r: EventTypeRecord): TypeView {
  const s = r.settings;
  return {
    name: s.name,
    owner: s.owner,
    description: s.description,
    priority: s.priority,
    partitioning: s.partitioning,
    storage: s.storage,
    sloHours: r.provisioning.monitoring?.sloHours ?? DEFAULT_SLO_HOURS[s.priority],
    status: r.status,
    versions: r.versions.map((v) => ({ version: v.version, fingerprint: v.fingerprint, createdAt: v.createdAt })),
  };
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
