/**
 * Closing partitions: deciding when (audit complete after the grace, or the
 * priority's SLO deadline) and doing it idempotently under a lease:
 * read every staged file of the period → dedup by event id → write
 * `part-NNNNN.avro` (deterministic bytes) → `_SUCCESS` (`ifGenerationMatch: 0`)
 * → delete the staged files. A crash anywhere and a re-run give the same
 * partition; staged files found after `_SUCCESS` are handed to the late writer.
 */
import { AppError } from '../lib/errors.ts';
import {
  parsePeriodKey,
  partitionPrefix,
  partObjectName,
  periodOf,
  readManifest,
  successObjectName,
  type Manifest,
  type ManifestFile,
  type Period,
} from '../lib/partitions.ts';
import { auditTypePrefix, hourOfAuditName, sumAccepted } from './audit.ts';
import { compareIds, type StagedRecord } from './envelope.ts';
import { buildDeliveredFile, checksumsOf, readStagedFile } from './files.ts';
import { LateWriter, readLateCount } from './late.ts';
import { acquireLease, releaseLease } from './lease.ts';
import { leaseObjectName, periodKeyOfStagedName, stagingPeriodPrefix, stagingTypePrefix } from './layout.ts';
import { createIfAbsent, deleteObject, exists, listObjects, replaceIfGeneration, statObject } from './storage-io.ts';
import type { TypeContext } from './context.ts';

export type CloseDecision = 'wait' | 'complete' | 'deadline';

/**
 * When a period may close: complete once it is over plus the grace and every
 * accepted event is staged (distinct ids); at its SLO deadline regardless.
 */
export function closeDecision(p: {
  nowMs: number;
  period: Period;
  graceMs: number;
  deadlineMs: number;
  accepted: number;
  delivered: number;
}): CloseDecision {
  if (p.nowMs >= p.period.endMs + p.graceMs && p.accepted === p.delivered) return 'complete';
  if (p.nowMs >= p.period.endMs + p.deadlineMs) return 'deadline';
  return 'wait';
}

/** Steps after which tests may inject a crash (a hook that throws). */
export type CloseStep = 'leased' | 'staged-read' | 'part-written' | 'parts-written' | 'manifest-written' | 'staging-deleted';

export interface CloserHooks {
  afterStep?(step: CloseStep, period: Period): void | Promise<void>;
}

const PART_NAME = /\/part-\d{5}\.avro$/;

export class PartitionCloser {
  private readonly closed = new Set<string>();
  /** Ids per staged file, per open period: files are immutable, so each is read once. */
  private readonly stagedIds = new Map<string, Map<string, string[]>>();

  constructor(
    private readonly ctx: TypeContext,
    private readonly late: LateWriter,
    private readonly hooks: CloserHooks = {},
  ) {}

  /** The stager tells us what it staged, so the audit need not read it back. */
  noteStaged(period: Period, name: string, ids: string[]): void {
    if (this.closed.has(period.key)) return;
    const files = this.stagedIds.get(period.key) ?? new Map<string, string[]>();
    files.set(name, ids);
    this.stagedIds.set(period.key, files);
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
    this.stagedIds.delete(period.key);
  }

  /** One pass: every period with staged files or audit counts that may be due. */
  async checkAll(): Promise<void> {
    const { ctx } = this;
    const now = ctx.now();
    const deadlineMs = ctx.tuning.closeDeadlineMs[ctx.priority];
    const firstDue = Math.min(ctx.tuning.closeGraceMs, deadlineMs);
    const stagedByPeriod = new Map<string, string[]>();
    for (const o of await listObjects(ctx.staging, stagingTypePrefix(ctx.eventType))) {
      const key = periodKeyOfStagedName(ctx.eventType, o.name);
      if (key === undefined) continue;
      stagedByPeriod.set(key, [...(stagedByPeriod.get(key) ?? []), o.name]);
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
  }

  private async check(period: Period, stagedNames: string[], deadlineMs: number): Promise<void> {
    if (await this.isClosed(period)) {
      if (stagedNames.length > 0) await this.deliverLeftovers(period, stagedNames);
      return;
    }
    const accepted = await sumAccepted(this.ctx.staging, this.ctx.eventType, period);
    const delivered = await this.distinctStaged(period, stagedNames);
    const decision = closeDecision({ nowMs: this.ctx.now(), period, graceMs: this.ctx.tuning.closeGraceMs, deadlineMs, accepted, delivered });
    if (decision === 'wait') return;
    await this.closePartition(period, { force: decision === 'deadline' });
  }

  private async distinctStaged(period: Period, stagedNames: string[]): Promise<number> {
    const files = this.stagedIds.get(period.key) ?? new Map<string, string[]>();
    this.stagedIds.set(period.key, files);
    const ids = new Set<string>();
    for (const name of stagedNames) {
      let fileIds = files.get(name);
      if (fileIds === undefined) {
        fileIds = (await readStagedFile(this.ctx.staging, name)).map((r) => r.eventId);
        files.set(name, fileIds);
      }
      for (const id of fileIds) ids.add(id);
    }
    return ids.size;
  }

  /**
   * Closes `period` if this worker gets the lease. Without `force` it closes
   * only if the audit is complete. Returns the manifest (this run's or the
   * one already there), or undefined if it did not close.
   */
  async closePartition(period: Period, opts: { force: boolean }): Promise<Manifest | undefined> {
    const { ctx } = this;
    const lease = await acquireLease(ctx.staging, leaseObjectName(ctx.eventType, period), ctx.instanceId, ctx.now(), ctx.tuning.leaseMs);
    if (lease === undefined) return undefined;
    try {
      await this.step('leased', period);
      const existing = await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
      if (existing !== undefined) {
        this.markClosed(period);
        const leftovers = (await listObjects(ctx.staging, stagingPeriodPrefix(ctx.eventType, period))).map((o) => o.name);
        if (leftovers.length > 0) await this.deliverLeftovers(period, leftovers);
        return existing;
      }
      const stagedNames = (await listObjects(ctx.staging, stagingPeriodPrefix(ctx.eventType, period))).map((o) => o.name);
      const all: StagedRecord[] = [];
      for (const name of stagedNames) all.push(...(await readStagedFile(ctx.staging, name)));
      await this.step('staged-read', period);

      const unique = dedupById(all);
      const accepted = await sumAccepted(ctx.staging, ctx.eventType, period);
      const complete = accepted === unique.length;
      if (!complete && !opts.force) return undefined;

      const fingerprints = await this.fingerprintsInOrder(unique);
      const files = await this.writeParts(period, unique, fingerprints);
      await this.step('parts-written', period);
      const manifest = buildManifest({
        eventType: ctx.eventType,
        period,
        records: unique,
        files,
        fingerprints,
        deliveredSchemas: await this.deliveredSchemas(fingerprints),
        accepted,
        duplicatesDropped: all.length - unique.length,
        closedBy: complete ? 'complete' : 'deadline',
        lateCount: await readLateCount(ctx, period),
      });
      const written = await createIfAbsent(ctx.data, successObjectName(ctx.eventType, period), Buffer.from(JSON.stringify(manifest, null, 2)), {
        contentType: 'application/json',
      });
      await this.step('manifest-written', period);
      this.markClosed(period);
      for (const name of stagedNames) await deleteObject(ctx.staging, name);
      await this.step('staging-deleted', period);
      if (written === 'exists') return readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period);
      ctx.metrics.partitionsClosed++;
      ctx.logger.info('partition closed', {
        period: period.key,
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

  private async step(step: CloseStep, period: Period): Promise<void> {
    await this.hooks.afterStep?.(step, period);
  }

  private async fingerprintsInOrder(records: readonly StagedRecord[]): Promise<string[]> {
    const fps = [...new Set(records.map((r) => r.schemaFingerprint))];
    const order = new Map<string, number>();
    for (const fp of fps) order.set(fp, (await this.ctx.schemas.resolve(fp))?.version.version ?? Number.MAX_SAFE_INTEGER);
    return fps.sort((a, b) => order.get(a)! - order.get(b)! || compareIds(a, b));
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

  /** One set of parts per writer version (`fingerprints`: oldest first), records sorted by id, split by `partMaxRecords`. */
  private async writeParts(period: Period, unique: readonly StagedRecord[], fingerprints: readonly string[]): Promise<ManifestFile[]> {
    const { ctx } = this;
    const files: ManifestFile[] = [];
    let index = 0;
    for (const fp of fingerprints) {
      const resolved = await ctx.schemas.resolve(fp);
      if (resolved === undefined) throw new AppError('DECODE_FAILED', { message: `unknown schema fingerprint ${fp}` });
      const group = unique.filter((r) => r.schemaFingerprint === fp);
      for (let i = 0; i < group.length; i += ctx.tuning.partMaxRecords) {
        const chunk = group.slice(i, i + ctx.tuning.partMaxRecords);
        const name = partObjectName(ctx.eventType, period, index++);
        const bytes = buildDeliveredFile(name, ctx.eventType, period, fp, resolved.deliveredSchema, chunk);
        const info = await this.writePart(period, name, bytes);
        files.push({ name, size: info.size, crc32c: info.crc32c, md5Hash: info.md5Hash, recordCount: chunk.length, schemaFingerprint: fp });
        await this.step('part-written', period);
      }
    }
    // Parts of a crashed run with a larger staged set (more files) must not linger next to ours.
    const ours = new Set(files.map((f) => f.name));
    for (const o of await listObjects(ctx.data, partitionPrefix(ctx.eventType, period))) {
      if (PART_NAME.test(o.name) && !ours.has(o.name) && o.name.startsWith(partitionPrefix(ctx.eventType, period))) {
        await deleteObject(ctx.data, o.name, o.generation);
      }
    }
    return files;
  }

  /**
   * Writes a part, create-if-absent. A part of the same name from a crashed
   * run is kept if its bytes are ours, replaced otherwise (before `_SUCCESS`
   * nobody reads it). Returns size and checksums as GCS reports them.
   */
  private async writePart(period: Period, name: string, bytes: Buffer) {
    const { ctx } = this;
    const local = checksumsOf(bytes);
    const created = await createIfAbsent(ctx.data, name, bytes, { contentType: 'avro/binary' });
    let info = await statObject(ctx.data, name);
    if (created === 'exists' && info !== undefined && !sameBytes(info, local)) {
      if (await exists(ctx.data, successObjectName(ctx.eventType, period))) {
        throw new AppError('CONFLICT', { message: `partition ${period.key} was closed by another closer` });
      }
      await replaceIfGeneration(ctx.data, name, bytes, info.generation, 'avro/binary');
      info = await statObject(ctx.data, name);
    }
    if (info === undefined || !sameBytes(info, local)) {
      throw new AppError('STORAGE_FAILED', { message: `part ${name} does not hold the bytes written` });
    }
    return info;
  }

  /** Staged files of a closed period: their new ids go to the late location, then the files go. */
  private async deliverLeftovers(period: Period, names: string[]): Promise<void> {
    for (const name of names) {
      const records = await readStagedFile(this.ctx.staging, name);
      if (records.length > 0) await this.late.write(period, records);
      await deleteObject(this.ctx.staging, name);
    }
  }
}

function sameBytes(info: { size: number; md5Hash: string; crc32c: string }, local: { size: number; md5Hash: string; crc32c: string }): boolean {
  if (info.size !== local.size) return false;
  if (info.md5Hash !== '') return info.md5Hash === local.md5Hash;
  return info.crc32c === '' || info.crc32c === local.crc32c;
}

/** One record per event id; of duplicates, the same one on every run (smallest fingerprint, then bytes). */
export function dedupById(records: readonly StagedRecord[]): StagedRecord[] {
  const sorted = [...records].sort(
    (a, b) => compareIds(a.eventId, b.eventId) || compareIds(a.schemaFingerprint, b.schemaFingerprint) || Buffer.compare(a.record, b.record),
  );
  const out: StagedRecord[] = [];
  for (const r of sorted) if (out.length === 0 || out[out.length - 1]!.eventId !== r.eventId) out.push(r);
  return out;
}

/** The manifest of a partition (deterministic: no wall-clock field, so a re-run writes the same bytes). */
export function buildManifest(p: {
  eventType: string;
  period: Period;
  records: readonly StagedRecord[];
  files: ManifestFile[];
  fingerprints: string[];
  deliveredSchemas: Record<string, Record<string, unknown>>;
  accepted: number;
  duplicatesDropped: number;
  closedBy: 'complete' | 'deadline';
  lateCount: number;
}): Manifest {
  let min = Infinity;
  let max = -Infinity;
  const stats: Record<string, number> = {};
  for (const r of p.records) {
    if (r.receiveTime < min) min = r.receiveTime;
    if (r.receiveTime > max) max = r.receiveTime;
    for (const [k, v] of Object.entries(r.stats)) stats[k] = (stats[k] ?? 0) + v;
  }
  const timeRange: Manifest['timeRange'] = { start: new Date(p.period.startMs).toISOString(), end: new Date(p.period.endMs).toISOString() };
  if (p.records.length > 0) {
    timeRange.minReceiveTime = new Date(min).toISOString();
    timeRange.maxReceiveTime = new Date(max).toISOString();
  }
  return {
    formatVersion: 1,
    eventType: p.eventType,
    partitioning: p.period.granularity,
    period: p.period.key,
    files: p.files,
    recordCount: p.records.length,
    schemaFingerprints: p.fingerprints,
    deliveredSchemas: p.deliveredSchemas,
    timeRange,
    audit: { accepted: p.accepted, delivered: p.records.length, duplicatesDropped: p.duplicatesDropped, complete: p.accepted === p.records.length },
    closedBy: p.closedBy,
    transformStats: stats,
    lateCount: p.lateCount,
  };
}
