/**
 * Closing partitions: deciding when (audit complete after the grace, or the
 * priority's SLO deadline) and doing it idempotently under a lease. Staged
 * files are sorted by event id, so closing is a k-way merge (etl/merge.ts)
 * in bounded memory, whatever the period's size: merge rounds through
 * intermediate runs if there are more files than `closeMergeFanIn` → a
 * counting merge (distinct ids per writer version, the audit) → a writing
 * merge that streams `part-NNNNN.avro` out (deterministic bytes) →
 * `_SUCCESS` (`ifGenerationMatch: 0`) → seal the manifest's objects against
 * deletion and replacement (seal.ts) → delete the runs and staged files.
 * A crash anywhere and a re-run give the same partition (and seal it); staged
 * files found after `_SUCCESS` are handed to the late writer. A period staged
 * in shards is closed shard by shard (etl/shard-close.ts).
 */
import { createHash } from 'node:crypto';
import { AppError } from '../lib/errors.ts';
import {
  parsePeriodKey,
  partitionPrefix,
  periodOf,
  readManifest,
  successObjectName,
  type Manifest,
  type ManifestCompleteness,
  type ManifestFile,
  type Period,
} from '../lib/partitions.ts';
import { auditTypePrefix, hourOfAuditName, readInstanceAudits } from './audit.ts';
import {
  judgeCompleteness,
  manifestCompleteness,
  parseInstanceCounts,
  STAGED_INSTANCES_KEY,
  upperBoundsPerInstance,
  type Completeness,
  type InstanceAudit,
  type StagedFileCounts,
} from './completeness.ts';
import { compareIds, type StagedRecord } from './envelope.ts';
import { countStagedRecords, readStagedFile, STAGED_COUNT_KEY } from './files.ts';
import { LateWriter, readLateCount } from './late.ts';
import { acquireLease, releaseLease, renewLease, type Lease } from './lease.ts';
import { leaseObjectName, periodKeyOfStagedName, runPeriodPrefix, shardRecordsPrefix, stagingPeriodPrefix, stagingTypePrefix } from './layout.ts';
import { closeMergesFor, type PartPlan } from './close-merges.ts';
import { compareStaged, type MergeSummary } from './merge.ts';
import { ShardCloser } from './shard-close.ts';
import { reduceToFanIn, type MergeInput } from './runs.ts';
import { PartitionSealer } from './seal.ts';
import { writeSubjectIndex } from './subject-index.ts';
import { createIfAbsent, deleteObject, exists, listObjects, type ObjectInfo } from './storage-io.ts';
import type { TypeContext } from './context.ts';

export type CloseDecision = Completeness['decision'];

/**
 * When a period may close (etl/completeness.ts): complete once it is over
 * plus the grace and every accepting instance is accounted for (its final
 * count delivered, or gone with its last durable count delivered); at its
 * SLO deadline regardless. With `upperBound`, `delivered` are the staged
 * files' counts (duplicates across files included): a final instance then
 * needs at least its count, and only the counting merge decides.
 */
export function closeDecision(p: {
  nowMs: number;
  period: Period;
  graceMs: number;
  deadlineMs: number;
  livenessMs: number;
  audits: readonly InstanceAudit[];
  delivered: ReadonlyMap<string, number>;
  upperBound?: boolean;
  stagingQuietMs: number;
}): Completeness {
  return judgeCompleteness(p);
}

/** Steps after which tests may inject a crash (a hook that throws); `staged-read` is the end of the counting merge. */
export type CloseStep = 'leased' | 'staged-read' | 'part-written' | 'parts-written' | 'manifest-written' | 'sealed' | 'staging-deleted' | 'shard-closed';

export interface CloserHooks {
  afterStep?(step: CloseStep, period: Period): void | Promise<void>;
}

/** Parts of an unsharded or a sharded close (`part-SSS-NNNNN.avro`): either can be stale after the shard count changed. */
const PART_NAME = /\/part-(\d{3}-)?\d{5}\.avro$/;

/**
 * The counting merge of one set of staged files, reused while that set is
 * unchanged (after an incomplete check, or a close attempt that failed later).
 */
interface CountedSet {
  key: string;
  inputs: MergeInput[];
  summary: MergeSummary;
}

export class PartitionCloser {
  private readonly closed = new Set<string>();
  /** Counts per staged file, per open period: upper bounds of the distinct counts without reading ids. */
  private readonly stagedCounts = new Map<string, Map<string, StagedFileCounts>>();
  /** The last counting merge per open period. */
  private readonly counted = new Map<string, CountedSet>();
  /** Per open period: its staged set's signature and since when (ms) this closer has seen it unchanged. */
  private readonly stagedSince = new Map<string, { signature: string; sinceMs: number }>();
  private readonly sharded: ShardCloser;
  private readonly sealer: PartitionSealer;

  constructor(
    private readonly ctx: TypeContext,
    private readonly late: LateWriter,
    private readonly hooks: CloserHooks = {},
  ) {
    this.sealer = new PartitionSealer(ctx, ctx.retentionDays);
    this.sharded = new ShardCloser(ctx, {
      step: (s, p) => this.step(s, p),
      fingerprintsInOrder: (fps) => this.fingerprintsInOrder(fps),
      deliveredSchemas: (fps) => this.deliveredSchemas(fps),
      markClosed: (p) => this.markClosed(p),
      buildManifest,
      seal: (p, m) => this.sealer.seal(p, m),
    });
  }

  /** The stager tells us what it staged (distinct ids, and per instance), so the audit need not read it back. */
  noteStaged(period: Period, name: string, counts: StagedFileCounts): void {
    if (this.closed.has(period.key)) return;
    const files = this.stagedCounts.get(period.key) ?? new Map<string, StagedFileCounts>();
    files.set(name, counts);
    this.stagedCounts.set(period.key, files);
  }

  async isClosed(period: Period): Promise<boolean> {
    if (this.closed.has(period.key)) return true;
    if (await exists(this.ctx.data, successObjectName(this.ctx.eventType, period))) {
      this.markClosed(period);
      return true;
    }
    return false;
  }

  private markClosed(period: Period): void {
    this.closed.add(period.key);
    this.stagedCounts.delete(period.key);
    this.counted.delete(period.key);
    this.stagedSince.delete(period.key);
  }

  /** How long the period's staged set has been unchanged, as far as this closer has seen (0 when first seen). */
  private stagingQuietMs(period: Period, staged: readonly ObjectInfo[], nowMs: number): number {
    const signature = staged
      .map((o) => `${o.name}#${o.generation}`)
      .sort()
      .join('\n');
    const seen = this.stagedSince.get(period.key);
    if (seen?.signature !== signature) {
      this.stagedSince.set(period.key, { signature: signature, sinceMs: nowMs });
      return 0;
    }
    return nowMs - seen.sinceMs;
  }

  /** One pass: every period with staged files or audit counts that may be due. */
  async checkAll(): Promise<void> {
    const { ctx } = this;
    const now = ctx.now();
    const deadlineMs = ctx.tuning.closeDeadlineMs[ctx.priority];
    const firstDue = Math.min(ctx.tuning.closeGraceMs, deadlineMs);
    const stagedByPeriod = new Map<string, ObjectInfo[]>();
    for (const o of await listObjects(ctx.staging, stagingTypePrefix(ctx.eventType))) {
      const key = periodKeyOfStagedName(ctx.eventType, o.name);
      if (key === undefined) continue;
      const list = stagedByPeriod.get(key) ?? [];
      list.push(o);
      stagedByPeriod.set(key, list);
    }
    const candidates = new Set(stagedByPeriod.keys());
    for (const o of await listObjects(ctx.staging, auditTypePrefix(ctx.eventType))) {
      const hour = hourOfAuditName(ctx.eventType, o.name);
      if (hour === undefined) continue;
      const p = periodOf(Date.parse(`${hour}:00:00.000Z`), ctx.granularity);
      if (p.endMs + ctx.tuning.auditLookbackMs < now || this.closed.has(p.key)) continue;
      candidates.add(p.key);
    }
    for (const key of [...candidates].sort()) {
      let period: Period;
      try {
        period = parsePeriodKey(key);
      } catch {
        continue;
      }
      if (period.granularity !== ctx.granularity || now < period.endMs + firstDue) continue;
      try {
        await this.check(period, stagedByPeriod.get(key) ?? [], deadlineMs);
      } catch (err) {
        ctx.metrics.closeFailures++;
        ctx.logger.warn('closing a partition failed; will retry', { period: key, error: err as Error });
      }
    }
    ctx.telemetry?.openPeriods([...candidates].filter((k) => !this.closed.has(k)));
  }

  private async check(period: Period, staged: ObjectInfo[], deadlineMs: number): Promise<void> {
    if (await this.isClosed(period)) {
      // A close that crashed between `_SUCCESS` and its seal is sealed here (once per process and period).
      await this.sealer.seal(period);
      if (staged.length > 0) await this.deliverLeftovers(period, staged.map((o) => o.name));
      return;
    }
    const audits = await readInstanceAudits(this.ctx.staging, this.ctx.eventType, period);
    // Staged counts bound the distinct ids per instance from above: short of an instance's
    // count the period cannot be complete, and nothing needs merging. Otherwise closePartition recounts.
    const nowMs = this.ctx.now();
    const verdict = closeDecision({
      nowMs,
      period,
      graceMs: this.ctx.tuning.closeGraceMs,
      deadlineMs,
      livenessMs: this.ctx.tuning.auditLivenessMs,
      audits,
      delivered: await this.stagedUpperBounds(period, staged, audits),
      upperBound: true,
      stagingQuietMs: this.stagingQuietMs(period, staged, nowMs),
    });
    if (verdict.decision === 'wait') return;
    await this.closePartition(period, { force: nowMs >= period.endMs + deadlineMs });
  }

  /**
   * Distinct ids per instance, bounded from above by the staged files' counts: noted by the
   * stager, in the object's metadata, or (older files) the file's record count for every instance.
   */
  private async stagedUpperBounds(period: Period, staged: readonly ObjectInfo[], audits: readonly InstanceAudit[]): Promise<Map<string, number>> {
    const files = this.stagedCounts.get(period.key) ?? new Map<string, StagedFileCounts>();
    this.stagedCounts.set(period.key, files);
    const listed = new Set<string>();
    const perFile: StagedFileCounts[] = [];
    for (const o of staged) {
      listed.add(o.name);
      let counts = files.get(o.name);
      if (counts === undefined) {
        const meta = Number(o.metadata[STAGED_COUNT_KEY]);
        const records = Number.isSafeInteger(meta) && meta >= 0 ? meta : await countStagedRecords(this.ctx.staging, o);
        counts = { records, byInstance: parseInstanceCounts(o.metadata[STAGED_INSTANCES_KEY]) };
        files.set(o.name, counts);
      }
      perFile.push(counts);
    }
    for (const name of files.keys()) if (!listed.has(name)) files.delete(name);
    return upperBoundsPerInstance(
      perFile,
      audits.map((a) => a.instanceId),
    );
  }

  /**
   * Closes `period` if this worker gets the lease. Without `force` it closes
   * only if the audit is complete. Returns the manifest (this run's or the
   * one already there), or undefined if it did not close.
   */
  async closePartition(period: Period, opts: { force: boolean }): Promise<Manifest | undefined> {
    const { ctx } = this;
    const started = performance.now();
    const shards = await this.sharded.planOf(period);
    if (shards > 1) {
      // Sharded periods keep the total-count rule for now: ShardCloser passes only the delivered total,
      // not the per-instance counts (summary.byInstance, which sum across shards) the per-instance rule needs.
      // The same rule as below, over what all the shards hold (their per-instance counts add up).
      return this.sharded.close(period, shards, opts, async (delivered) => {
        const audits = await readInstanceAudits(ctx.staging, ctx.eventType, period);
        const staged = await listObjects(ctx.staging, stagingPeriodPrefix(ctx.eventType, period));
        const nowMs = ctx.now();
        const verdict = closeDecision({
          nowMs,
          stagingQuietMs: this.stagingQuietMs(period, staged, nowMs),
          period,
          graceMs: 0,
          deadlineMs: Number.POSITIVE_INFINITY,
          livenessMs: ctx.tuning.auditLivenessMs,
          audits,
          delivered: delivered.byInstance,
        });
        const complete = verdict.decision === 'complete' || verdict.decision === 'complete-after-instance-loss';
        return {
          accepted: audits.reduce((n, a) => n + a.accepted, 0),
          complete,
          completeness: manifestCompleteness(complete ? verdict : { ...verdict, decision: 'deadline' }, ctx.tuning.auditLivenessMs),
        };
      });
    }
    const lease = await acquireLease(ctx.staging, leaseObjectName(ctx.eventType, period), ctx.instanceId, ctx.now(), ctx.tuning.leaseMs);
    if (lease === undefined) return undefined;
    const heartbeat = this.heartbeat(lease);
    try {
      await this.step('leased', period);
      const existing = await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
      if (existing !== undefined) {
        this.markClosed(period);
        await this.sealer.seal(period, existing);
        const leftovers = (await listObjects(ctx.staging, stagingPeriodPrefix(ctx.eventType, period))).map((o) => o.name);
        if (leftovers.length > 0) await this.deliverLeftovers(period, leftovers);
        await this.deleteRuns(period);
        return existing;
      }
      const staged = (await listObjects(ctx.staging, stagingPeriodPrefix(ctx.eventType, period))).sort((a, b) => compareIds(a.name, b.name));
      const { inputs, summary } = await this.count(period, staged, heartbeat);
      await this.step('staged-read', period);

      // The caller judged the grace; here every instance must be accounted for by the exact counts.
      const audits = await readInstanceAudits(ctx.staging, ctx.eventType, period);
      const nowMs = ctx.now();
      const verdict = closeDecision({
        nowMs,
        stagingQuietMs: this.stagingQuietMs(period, staged, nowMs),
        period,
        graceMs: 0,
        deadlineMs: Number.POSITIVE_INFINITY,
        livenessMs: ctx.tuning.auditLivenessMs,
        audits,
        delivered: summary.byInstance,
      });
      const complete = verdict.decision === 'complete' || verdict.decision === 'complete-after-instance-loss';
      if (!complete && !opts.force) return undefined;
      const accepted = audits.reduce((n, a) => n + a.accepted, 0);

      const fingerprints = await this.fingerprintsInOrder([...summary.byFingerprint.keys()]);
      const files = await this.writeParts(period, inputs, summary, fingerprints, heartbeat);
      await writeSubjectIndex(ctx, period, files);
      await this.step('parts-written', period);
      const manifest = buildManifest({
        eventType: ctx.eventType,
        period,
        delivered: { recordCount: summary.unique, minReceiveTime: summary.minReceiveTime, maxReceiveTime: summary.maxReceiveTime, transformStats: summary.stats },
        files,
        fingerprints,
        deliveredSchemas: await this.deliveredSchemas(fingerprints),
        accepted,
        duplicatesDropped: summary.read - summary.unique,
        closedBy: complete ? 'complete' : 'deadline',
        lateCount: await readLateCount(ctx, period),
        completeness: manifestCompleteness(complete ? verdict : { ...verdict, decision: 'deadline' }, ctx.tuning.auditLivenessMs),
      });
      const written = await createIfAbsent(ctx.data, successObjectName(ctx.eventType, period), Buffer.from(JSON.stringify(manifest, null, 2)), {
        contentType: 'application/json',
      });
      await this.step('manifest-written', period);
      this.markClosed(period);
      const stored = written === 'created' ? manifest : await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
      await this.sealer.seal(period, stored);
      await this.step('sealed', period);
      await this.deleteRuns(period);
      for (const o of staged) await deleteObject(ctx.staging, o.name);
      await this.step('staging-deleted', period);
      if (written === 'exists') return stored;
      ctx.metrics.partitionsClosed++;
      ctx.telemetry?.closed(period, manifest.closedBy, started);
      ctx.logger.info('partition closed', {
        period: period.key,
        closedBy: manifest.closedBy,
        rule: manifest.completeness?.rule,
        lostInstances: manifest.completeness?.lostInstances,
        records: manifest.recordCount,
        accepted,
        duplicatesDropped: manifest.audit.duplicatesDropped,
      });
      return manifest;
    } finally {
      await releaseLease(ctx.staging, lease).catch(() => undefined);
    }
  }

  /** Renews the lease when a third of it has passed (called between blocks of a long close). */
  private heartbeat(lease: Lease): () => Promise<void> {
    const { ctx } = this;
    let renewed = ctx.now();
    return async () => {
      const now = ctx.now();
      if (now - renewed < ctx.tuning.leaseMs / 3) return;
      await renewLease(ctx.staging, lease, ctx.instanceId, now, ctx.tuning.leaseMs);
      renewed = now;
    };
  }

  /** The counting merge of the staged set (through merge rounds if it is large); reused while the set is unchanged. */
  private async count(period: Period, staged: readonly ObjectInfo[], heartbeat: () => Promise<void>): Promise<CountedSet> {
    const key = createHash('sha256')
      .update(staged.map((o) => `${o.name}#${o.generation}`).join('\n'))
      .digest('hex');
    const cached = this.counted.get(period.key);
    if (cached?.key === key) return cached;
    const { ctx } = this;
    const inputs = await reduceToFanIn({ staging: ctx.staging, eventType: ctx.eventType, period, inputs: staged, fanIn: ctx.tuning.closeMergeFanIn, heartbeat });
    const summary = await (await closeMergesFor(ctx, inputs)).count(inputs, heartbeat);
    const set = { key, inputs, summary };
    this.counted.set(period.key, set);
    return set;
  }

  private async step(step: CloseStep, period: Period): Promise<void> {
    await this.hooks.afterStep?.(step, period);
  }

  private async fingerprintsInOrder(fps: readonly string[]): Promise<string[]> {
    const order = new Map<string, number>();
    for (const fp of fps) order.set(fp, (await this.ctx.schemas.resolve(fp))?.version.version ?? Number.MAX_SAFE_INTEGER);
    return [...fps].sort((a, b) => order.get(a)! - order.get(b)! || compareIds(a, b));
  }

  private async deliveredSchemas(fingerprints: readonly string[]): Promise<Record<string, Record<string, unknown>>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const fp of fingerprints) {
      const resolved = await this.ctx.schemas.resolve(fp);
      if (resolved === undefined) throw new AppError('DECODE_FAILED', { message: `unknown schema fingerprint ${fp}` });
      out[fp] = resolved.deliveredSchema;
    }
    return out;
  }

  /**
   * The writing merge: one set of parts per writer version (`fingerprints`:
   * oldest first, numbered on from the previous version's, as the counting
   * merge sized them), records sorted by id, split by `partMaxRecords`.
   */
  private async writeParts(
    period: Period,
    inputs: readonly MergeInput[],
    summary: MergeSummary,
    fingerprints: readonly string[],
    heartbeat: () => Promise<void>,
  ): Promise<ManifestFile[]> {
    const { ctx } = this;
    const max = ctx.tuning.partMaxRecords;
    const files: ManifestFile[] = [];
    const plans: PartPlan[] = [];
    let index = 0;
    for (const fp of fingerprints) {
      const resolved = await ctx.schemas.resolve(fp);
      if (resolved === undefined) throw new AppError('DECODE_FAILED', { message: `unknown schema fingerprint ${fp}` });
      plans.push({ fingerprint: fp, deliveredSchema: resolved.deliveredSchema, firstIndex: index });
      index += Math.ceil((summary.byFingerprint.get(fp) ?? 0) / max);
    }
    const merges = await closeMergesFor(ctx, inputs);
    const written = await merges.write(
      { eventType: ctx.eventType, period, inputs: [...inputs], plans, partMaxRecords: max },
      {
        heartbeat,
        assertOpen: async () => {
          if (await exists(ctx.data, successObjectName(ctx.eventType, period))) {
            throw new AppError('CONFLICT', { message: `partition ${period.key} was closed by another closer` });
          }
        },
        onPart: async (file) => {
          files.push(file);
          await heartbeat();
          await this.step('part-written', period);
        },
      },
    );
    if (written !== summary.unique) {
      this.counted.delete(period.key);
      throw new AppError('INTERNAL', { message: `merge of ${period.key} wrote ${written} records, counted ${summary.unique}` });
    }
    files.sort((a, b) => compareIds(a.name, b.name));
    // Parts of a crashed run with a larger staged set (more files) must not linger next to ours.
    const ours = new Set(files.map((f) => f.name));
    for (const o of await listObjects(ctx.data, partitionPrefix(ctx.eventType, period))) {
      if (PART_NAME.test(o.name) && !ours.has(o.name) && o.name.startsWith(partitionPrefix(ctx.eventType, period))) {
        await deleteObject(ctx.data, o.name, o.generation);
      }
    }
    return files;
  }

  /** Removes the period's intermediate runs and shard records (a closed period needs neither). */
  private async deleteRuns(period: Period): Promise<void> {
    for (const o of await listObjects(this.ctx.staging, runPeriodPrefix(this.ctx.eventType, period))) await deleteObject(this.ctx.staging, o.name);
    for (const o of await listObjects(this.ctx.staging, shardRecordsPrefix(this.ctx.eventType, period))) await deleteObject(this.ctx.staging, o.name);
  }

  /** Staged files of a closed period: their new ids go to the late location, then the files go. */
  private async deliverLeftovers(period: Period, names: string[]): Promise<void> {
    for (const name of names) {
      const records = await readStagedFile(this.ctx.staging, name);
      if (records.length > 0) await this.late.write(period, records);
      await deleteObject(this.ctx.staging, name);
    }
    await this.deleteRuns(period);
  }
}

/** One record per event id; of duplicates, the same one on every run (the smallest by `compareStaged`). The in-memory form of the merge. */
export function dedupById(records: readonly StagedRecord[]): StagedRecord[] {
  const sorted = [...records].sort(compareStaged);
  const out: StagedRecord[] = [];
  for (const r of sorted) if (out.length === 0 || out[out.length - 1]!.eventId !== r.eventId) out.push(r);
  return out;
}

/** What the manifest says of the delivered records (from the counting merge). */
export interface DeliveredSummary {
  recordCount: number;
  minReceiveTime: number | undefined;
  maxReceiveTime: number | undefined;
  transformStats: ReadonlyMap<string, number>;
}

/** The summary of records held in memory (tests, small sets). */
export function summarizeRecords(records: readonly StagedRecord[]): DeliveredSummary {
  let min: number | undefined;
  let max: number | undefined;
  const stats = new Map<string, number>();
  for (const r of records) {
    if (min === undefined || r.receiveTime < min) min = r.receiveTime;
    if (max === undefined || r.receiveTime > max) max = r.receiveTime;
    for (const [k, v] of Object.entries(r.stats)) stats.set(k, (stats.get(k) ?? 0) + v);
  }
  return { recordCount: records.length, minReceiveTime: min, maxReceiveTime: max, transformStats: stats };
}

/** What a partition's manifest is built from (the unsharded and the sharded close alike). */
export interface ManifestInput {
  eventType: string;
  period: Period;
  delivered: DeliveredSummary;
  files: ManifestFile[];
  fingerprints: string[];
  deliveredSchemas: Record<string, Record<string, unknown>>;
  accepted: number;
  duplicatesDropped: number;
  closedBy: 'complete' | 'deadline';
  lateCount: number;
  completeness?: ManifestCompleteness;
}

/** The manifest of a partition (deterministic: no wall-clock field, so a re-run writes the same bytes). */
export function buildManifest(p: ManifestInput): Manifest {
  const d = p.delivered;
  const timeRange: Manifest['timeRange'] = { start: new Date(p.period.startMs).toISOString(), end: new Date(p.period.endMs).toISOString() };
  if (d.recordCount > 0 && d.minReceiveTime !== undefined && d.maxReceiveTime !== undefined) {
    timeRange.minReceiveTime = new Date(d.minReceiveTime).toISOString();
    timeRange.maxReceiveTime = new Date(d.maxReceiveTime).toISOString();
  }
  return {
    formatVersion: 1,
    eventType: p.eventType,
    partitioning: p.period.granularity,
    period: p.period.key,
    files: p.files,
    recordCount: d.recordCount,
    schemaFingerprints: p.fingerprints,
    deliveredSchemas: p.deliveredSchemas,
    timeRange,
    audit: {
      accepted: p.accepted,
      delivered: d.recordCount,
      duplicatesDropped: p.duplicatesDropped,
      complete: p.completeness === undefined ? p.accepted === d.recordCount : p.completeness.rule !== 'deadline',
    },
    closedBy: p.closedBy,
    transformStats: Object.fromEntries(d.transformStats),
    lateCount: p.lateCount,
    ...(p.completeness === undefined ? {} : { completeness: p.completeness }),
  };
}
