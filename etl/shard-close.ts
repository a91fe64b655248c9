/**
 * Closing a sharded period (etl/shards.ts): each shard is merged alone, under
 * its own lease `leases/<type>/<period>/shard-<i>-of-<n>.json`, by whichever
 * worker takes it, so N workers close one hour in parallel.
 *
 * 1. Count: the shard's counting merge (distinct ids per writer version, as
 *    in the unsharded close) is stored as `count-<sha256 of its staged set>.json`.
 * 2. Once every shard has a count for its current staged set (or is done), the
 *    closer's audit sees the hour's total (the shards hold disjoint ids, so
 *    the distinct count is the sum). If it says complete, or at the deadline,
 *    the shard's parts `part-SSS-NNNNN.avro` are written and `done.json`
 *    records them.
 * 3. Once every shard is done, under the period's own lease, the subject
 *    index of all parts is written and `_SUCCESS` assembled from the done
 *    records (shard 0's parts first), the partition is sealed, then the shard
 *    records, staged files and runs are removed.
 *
 * Every object is written create-if-absent or replaced with identical bytes,
 * so a crash at any step is recovered by the next worker's pass. Staged files
 * that reach a shard after it is done are left in staging and delivered as
 * late events once `_SUCCESS` is written (the closer's leftover path).
 */
import { createHash } from 'node:crypto';
import { AppError } from '../lib/errors.ts';
import { partitionPrefix, readManifest, successObjectName, type Manifest, type ManifestCompleteness, type ManifestFile, type Period } from '../lib/partitions.ts';
import type { CloseStep, ManifestInput } from './closer.ts';
import type { TypeContext } from './context.ts';
import { compareIds } from './envelope.ts';
import { readLateCount } from './late.ts';
import { acquireLease, leaseHeartbeat, releaseLease } from './lease.ts';
import {
  leaseObjectName,
  runPeriodPrefix,
  shardCountObjectName,
  shardDoneObjectName,
  shardLeaseObjectName,
  shardOfStagedName,
  shardRecordsPrefix,
  stagingPeriodPrefix,
} from './layout.ts';
import { closeMergesFor, type PartPlan } from './close-merges.ts';
import type { MergeSummary } from './merge.ts';
import { reduceToFanIn, type MergeInput } from './runs.ts';
import { shardLabel, shardOrder, shardPlan, type Shard } from './shards.ts';
import { writeSubjectIndex } from './subject-index.ts';
import { createIfAbsent, deleteObject, download, exists, listObjects, type ObjectInfo } from './storage-io.ts';

/** What the shard closer takes from the partition closer (which owns the completeness decision and the manifest). */
export interface ShardCloseHost {
  step(step: CloseStep, period: Period): Promise<void>;
  fingerprintsInOrder(fingerprints: readonly string[]): Promise<string[]>;
  deliveredSchemas(fingerprints: readonly string[]): Promise<Record<string, Record<string, unknown>>>;
  markClosed(period: Period): void;
  /** Seals the closed partition's objects (etl/seal.ts); idempotent. */
  seal(period: Period, manifest: Manifest | undefined): Promise<unknown>;
  buildManifest(p: ManifestInput): Manifest;
}

/** What all of a period's shards hold: distinct ids, in all and per accepting instance (shards hold disjoint ids: they add up). */
export interface PeriodDelivered {
  unique: number;
  byInstance: Map<string, number>;
}

/** The closer's audit of the period against what all its shards hold (etl/completeness.ts decides). */
export type PeriodAudit = (delivered: PeriodDelivered) => Promise<{ accepted: number; complete: boolean; completeness?: ManifestCompleteness }>;

/** A merge summary as stored in a shard record. */
interface SummaryJson {
  read: number;
  unique: number;
  byFingerprint: Record<string, number>;
  minReceiveTime: number | null;
  maxReceiveTime: number | null;
  stats: Record<string, number>;
  /** Distinct ids per accepting instance (absent in records written before per-instance completeness). */
  byInstance?: Record<string, number>;
}

interface CountRecord {
  setKey: string;
  summary: SummaryJson;
}

interface DoneRecord extends CountRecord {
  shard: number;
  shards: number;
  /** The staged files merged (removed once `_SUCCESS` is written). */
  staged: string[];
  /** The shard's parts, in name order. */
  files: ManifestFile[];
}

const SHARD_PART = /\/part-(\d{3})-\d{5}\.avro$/;
const ANY_PART = /\/part-(\d{3}-)?\d{5}\.avro$/;

export class ShardCloser {
  constructor(
    private readonly ctx: TypeContext,
    private readonly host: ShardCloseHost,
  ) {}

  /** The shard count the period closes in, from its staged files (1: close it whole). */
  async planOf(period: Period): Promise<number> {
    const staged = await listObjects(this.ctx.staging, stagingPeriodPrefix(this.ctx.eventType, period));
    return shardPlan(staged.map((o) => shardOfStagedName(this.ctx.eventType, period, o.name)));
  }

  /**
   * Works on the period's shards this worker can lease (counting, or writing
   * once the audit allows), and assembles `_SUCCESS` once all are done.
   * Returns the manifest, or undefined while shards remain.
   */
  async close(period: Period, count: number, opts: { force: boolean }, audit: PeriodAudit): Promise<Manifest | undefined> {
    const { ctx } = this;
    const existing = await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
    if (existing !== undefined) {
      this.host.markClosed(period);
      await this.host.seal(period, existing);
      return existing;
    }
    // A second round when the first counted something: the last count can make every shard ready.
    for (let round = 0; round < 2; round++) {
      let progressed = false;
      for (const index of shardOrder(ctx.instanceId, count)) {
        if (await this.closeShard(period, { index, count }, opts, audit)) progressed = true;
      }
      if ((await this.doneRecords(period, count)) !== undefined) return this.assemble(period, count, opts, audit);
      if (!progressed) break;
    }
    return undefined;
  }

  /** One shard under its lease; true if it counted or wrote something. */
  private async closeShard(period: Period, shard: Shard, opts: { force: boolean }, audit: PeriodAudit): Promise<boolean> {
    const { ctx } = this;
    const doneName = shardDoneObjectName(ctx.eventType, period, shard);
    if (await exists(ctx.staging, doneName)) return false;
    const lease = await acquireLease(ctx.staging, shardLeaseObjectName(ctx.eventType, period, shard), ctx.instanceId, ctx.now(), ctx.tuning.leaseMs);
    if (lease === undefined) return false;
    const heartbeat = leaseHeartbeat(ctx.staging, lease, ctx.instanceId, ctx.now, ctx.tuning.leaseMs);
    try {
      if (await exists(ctx.staging, doneName)) return false;
      const byShard = await this.stagedByShard(period, shard.count);
      const staged = byShard.get(shard.index) ?? [];
      const setKey = setKeyOf(staged);
      const countName = shardCountObjectName(ctx.eventType, period, shard, setKey);
      let counted = await readJson<CountRecord>(ctx, countName);
      let inputs: MergeInput[] | undefined;
      let progressed = false;
      if (counted === undefined) {
        inputs = await this.reduce(period, staged, heartbeat);
        counted = { setKey, summary: summaryToJson(await (await closeMergesFor(ctx, inputs)).count(inputs, heartbeat)) };
        await createIfAbsent(ctx.staging, countName, Buffer.from(JSON.stringify(counted)), { contentType: 'application/json' });
        progressed = true;
      }
      await this.host.step('staged-read', period);

      const total = await this.readyTotal(period, shard.count, byShard);
      if (total === undefined) return progressed;
      const { complete } = await audit(deliveredOf(total));
      if (!complete && !opts.force) return progressed;

      inputs ??= await this.reduce(period, staged, heartbeat);
      const files = await this.writeParts(period, shard, inputs, counted.summary, heartbeat);
      const done: DoneRecord = { shard: shard.index, shards: shard.count, setKey, summary: counted.summary, staged: staged.map((o) => o.name), files };
      await heartbeat();
      await createIfAbsent(ctx.staging, doneName, Buffer.from(JSON.stringify(done)), { contentType: 'application/json' });
      await this.host.step('shard-closed', period);
      return true;
    } finally {
      await releaseLease(ctx.staging, lease).catch(() => undefined);
    }
  }

  /** The period's staged files by shard index (files of another shard count are not this plan's), each list in name order. */
  private async stagedByShard(period: Period, count: number): Promise<Map<number, ObjectInfo[]>> {
    const out = new Map<number, ObjectInfo[]>();
    for (const o of await listObjects(this.ctx.staging, stagingPeriodPrefix(this.ctx.eventType, period))) {
      const s = shardOfStagedName(this.ctx.eventType, period, o.name);
      if (s === undefined || s.count !== count) continue;
      const list = out.get(s.index) ?? [];
      list.push(o);
      out.set(s.index, list);
    }
    for (const list of out.values()) list.sort((a, b) => compareIds(a.name, b.name));
    return out;
  }

  /** The whole period's figures if every shard is done or counted for its current staged set; else undefined. */
  private async readyTotal(period: Period, count: number, byShard: ReadonlyMap<number, ObjectInfo[]>): Promise<SummaryJson | undefined> {
    const { ctx } = this;
    const records = new Set((await listObjects(ctx.staging, shardRecordsPrefix(ctx.eventType, period))).map((o) => o.name));
    const summaries: SummaryJson[] = [];
    for (let index = 0; index < count; index++) {
      const shard = { index, count };
      const doneName = shardDoneObjectName(ctx.eventType, period, shard);
      const countName = shardCountObjectName(ctx.eventType, period, shard, setKeyOf(byShard.get(index) ?? []));
      const name = records.has(doneName) ? doneName : records.has(countName) ? countName : undefined;
      const record = name === undefined ? undefined : await readJson<CountRecord>(ctx, name);
      if (record === undefined) return undefined;
      summaries.push(record.summary);
    }
    return sumSummaries(summaries);
  }

  /** Every shard's done record, or undefined if one is missing. */
  private async doneRecords(period: Period, count: number): Promise<DoneRecord[] | undefined> {
    const out: DoneRecord[] = [];
    for (let index = 0; index < count; index++) {
      const done = await readJson<DoneRecord>(this.ctx, shardDoneObjectName(this.ctx.eventType, period, { index, count }));
      if (done === undefined) return undefined;
      out.push(done);
    }
    return out;
  }

  /** `_SUCCESS` from the done shards, under the period's lease; then the clean-up. */
  private async assemble(period: Period, count: number, opts: { force: boolean }, audit: PeriodAudit): Promise<Manifest | undefined> {
    const { ctx } = this;
    const started = performance.now();
    const lease = await acquireLease(ctx.staging, leaseObjectName(ctx.eventType, period), ctx.instanceId, ctx.now(), ctx.tuning.leaseMs);
    if (lease === undefined) return undefined;
    try {
      const existing = await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
      if (existing !== undefined) {
        this.host.markClosed(period);
        await this.host.seal(period, existing);
        return existing;
      }
      const dones = await this.doneRecords(period, count);
      if (dones === undefined) return undefined;
      const summary = sumSummaries(dones.map((d) => d.summary));
      const { accepted, complete, completeness } = await audit(deliveredOf(summary));
      if (!complete && !opts.force) return undefined;
      const files = dones.flatMap((d) => d.files);
      // Parts of an earlier attempt (another plan, or a shard re-run over more files) must not linger.
      const ours = new Set(files.map((f) => f.name));
      for (const o of await listObjects(ctx.data, partitionPrefix(ctx.eventType, period))) {
        if (ANY_PART.test(o.name) && !ours.has(o.name)) await deleteObject(ctx.data, o.name, o.generation);
      }
      await writeSubjectIndex(ctx, period, files);
      await this.host.step('parts-written', period);
      const fingerprints = await this.host.fingerprintsInOrder(Object.keys(summary.byFingerprint));
      const manifest: Manifest = {
        ...this.host.buildManifest({
          eventType: ctx.eventType,
          period,
          delivered: {
            recordCount: summary.unique,
            minReceiveTime: summary.minReceiveTime ?? undefined,
            maxReceiveTime: summary.maxReceiveTime ?? undefined,
            transformStats: new Map(Object.entries(summary.stats)),
          },
          files,
          fingerprints,
          deliveredSchemas: await this.host.deliveredSchemas(fingerprints),
          accepted,
          duplicatesDropped: summary.read - summary.unique,
          closedBy: complete ? 'complete' : 'deadline',
          lateCount: await readLateCount(ctx, period),
          ...(completeness === undefined ? {} : { completeness }),
        }),
        shards: count,
      };
      const written = await createIfAbsent(ctx.data, successObjectName(ctx.eventType, period), Buffer.from(JSON.stringify(manifest, null, 2)), {
        contentType: 'application/json',
      });
      await this.host.step('manifest-written', period);
      this.host.markClosed(period);
      const stored = written === 'created' ? manifest : await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
      await this.host.seal(period, stored);
      await this.host.step('sealed', period);
      // Shard records first: once they are gone nothing refers to the staged files, which the leftover path then handles.
      for (const o of await listObjects(ctx.staging, shardRecordsPrefix(ctx.eventType, period))) await deleteObject(ctx.staging, o.name);
      for (const d of dones) for (const name of d.staged) await deleteObject(ctx.staging, name);
      for (const o of await listObjects(ctx.staging, runPeriodPrefix(ctx.eventType, period))) await deleteObject(ctx.staging, o.name);
      await this.host.step('staging-deleted', period);
      if (written === 'exists') return stored;
      ctx.metrics.partitionsClosed++;
      // The close's duration as the telemetry sees it is the assembly's: the shards' merges ran under their own leases.
      ctx.telemetry?.closed(period, manifest.closedBy, started);
      ctx.logger.info('partition closed', {
        period: period.key,
        shards: count,
        closedBy: manifest.closedBy,
        records: manifest.recordCount,
        accepted,
        duplicatesDropped: manifest.audit.duplicatesDropped,
      });
      return manifest;
    } finally {
      await releaseLease(ctx.staging, lease).catch(() => undefined);
    }
  }

  private reduce(period: Period, staged: readonly ObjectInfo[], heartbeat: () => Promise<void>): Promise<MergeInput[]> {
    const { ctx } = this;
    return reduceToFanIn({ staging: ctx.staging, eventType: ctx.eventType, period, inputs: staged, fanIn: ctx.tuning.closeMergeFanIn, heartbeat });
  }

  /** The shard's writing merge: `part-SSS-NNNNN.avro`, one set per writer version (oldest first), as the unsharded close writes them. */
  private async writeParts(period: Period, shard: Shard, inputs: readonly MergeInput[], summary: SummaryJson, heartbeat: () => Promise<void>): Promise<ManifestFile[]> {
    const { ctx } = this;
    const max = ctx.tuning.partMaxRecords;
    const fingerprints = await this.host.fingerprintsInOrder(Object.keys(summary.byFingerprint));
    const files: ManifestFile[] = [];
    const plans: PartPlan[] = [];
    const doneName = shardDoneObjectName(ctx.eventType, period, shard);
    let index = 0;
    for (const fp of fingerprints) {
      const resolved = await ctx.schemas.resolve(fp);
      if (resolved === undefined) throw new AppError('DECODE_FAILED', { message: `unknown schema fingerprint ${fp}` });
      plans.push({ fingerprint: fp, deliveredSchema: resolved.deliveredSchema, firstIndex: index });
      index += Math.ceil((summary.byFingerprint[fp] ?? 0) / max);
    }
    const merges = await closeMergesFor(ctx, inputs);
    const written = await merges.write(
      { eventType: ctx.eventType, period, inputs: [...inputs], plans, partMaxRecords: max, shardIndex: shard.index },
      {
        heartbeat,
        assertOpen: async () => {
          if ((await exists(ctx.data, successObjectName(ctx.eventType, period))) || (await exists(ctx.staging, doneName))) {
            throw new AppError('CONFLICT', { message: `${shardLabel(shard)} of ${period.key} was closed by another closer` });
          }
        },
        onPart: async (file) => {
          files.push(file);
          await heartbeat();
          await this.host.step('part-written', period);
        },
      },
    );
    if (written !== summary.unique) {
      throw new AppError('INTERNAL', { message: `merge of ${shardLabel(shard)} of ${period.key} wrote ${written} records, counted ${summary.unique}` });
    }
    files.sort((a, b) => compareIds(a.name, b.name));
    const ours = new Set(files.map((f) => f.name));
    for (const o of await listObjects(ctx.data, partitionPrefix(ctx.eventType, period))) {
      const m = SHARD_PART.exec(o.name);
      if (m !== null && Number(m[1]) === shard.index && !ours.has(o.name)) await deleteObject(ctx.data, o.name, o.generation);
    }
    return files;
  }
}

/** Names a staged set: its files and their generations (staged files are immutable). */
function setKeyOf(staged: readonly ObjectInfo[]): string {
  return createHash('sha256')
    .update(staged.map((o) => `${o.name}#${o.generation}`).join('\n'))
    .digest('hex');
}

async function readJson<T>(ctx: TypeContext, name: string): Promise<T | undefined> {
  const bytes = await download(ctx.staging, name);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (cause) {
    throw new AppError('INTERNAL', { message: `shard record ${name} is not JSON`, cause });
  }
}

function summaryToJson(s: MergeSummary): SummaryJson {
  return {
    read: s.read,
    unique: s.unique,
    byFingerprint: Object.fromEntries(s.byFingerprint),
    minReceiveTime: s.minReceiveTime ?? null,
    maxReceiveTime: s.maxReceiveTime ?? null,
    stats: Object.fromEntries(s.stats),
    byInstance: Object.fromEntries([...s.byInstance].sort(([a], [b]) => compareIds(a, b))),
  };
}

function deliveredOf(s: SummaryJson): PeriodDelivered {
  return { unique: s.unique, byInstance: new Map(Object.entries(s.byInstance ?? {})) };
}

/** The period's figures from its shards' (disjoint ids: counts add up). */
function sumSummaries(list: readonly SummaryJson[]): SummaryJson {
  const out: SummaryJson = { read: 0, unique: 0, byFingerprint: {}, minReceiveTime: null, maxReceiveTime: null, stats: {} };
  const byFingerprint = new Map<string, number>();
  const stats = new Map<string, number>();
  const byInstance = new Map<string, number>();
  for (const s of list) {
    for (const [k, v] of Object.entries(s.byInstance ?? {})) byInstance.set(k, (byInstance.get(k) ?? 0) + v);
    out.read += s.read;
    out.unique += s.unique;
    for (const [k, v] of Object.entries(s.byFingerprint)) byFingerprint.set(k, (byFingerprint.get(k) ?? 0) + v);
    for (const [k, v] of Object.entries(s.stats)) stats.set(k, (stats.get(k) ?? 0) + v);
    if (s.minReceiveTime !== null && (out.minReceiveTime === null || s.minReceiveTime < out.minReceiveTime)) out.minReceiveTime = s.minReceiveTime;
    if (s.maxReceiveTime !== null && (out.maxReceiveTime === null || s.maxReceiveTime > out.maxReceiveTime)) out.maxReceiveTime = s.maxReceiveTime;
  }
  // Sorted keys: the manifest's transform stats must not depend on which shard saw a stat first.
  out.byFingerprint = Object.fromEntries([...byFingerprint].sort(([a], [b]) => compareIds(a, b)));
  out.stats = Object.fromEntries([...stats].sort(([a], [b]) => compareIds(a, b)));
  out.byInstance = Object.fromEntries([...byInstance].sort(([a], [b]) => compareIds(a, b)));
  return out;
}
