/**
 * Late events: records whose partition already has `_SUCCESS`. They are never
 * lost and never touch the closed partition: they go to
 * `<type>/late/dt=…[/hour=…]/late-<hash>.avro` (same format as part files),
 * minus ids the partition or earlier late files already hold (redeliveries),
 * and the `_LATE` counter object is recomputed after each write.
 */
import { compareIds, idSetHash, type StagedRecord } from './envelope.ts';
import { lateCounterObjectName, latePrefix, readManifest, type LateCounter, type Period } from '../lib/partitions.ts';
import { buildDeliveredFile, deliveredIds } from './files.ts';
import { createIfAbsent, download, listObjects, replaceIfGeneration, statObject } from './storage-io.ts';
import type { TypeContext } from './context.ts';
import { AppError } from '../lib/errors.ts';

const KNOWN_CACHE = 8;
const RECORD_COUNT_KEY = 'edp-record-count';

export class LateWriter {
  /** Ids already delivered per closed period (partition + late files); a few periods at most. */
  private readonly known = new Map<string, Set<string>>();

  constructor(private readonly ctx: TypeContext) {}

  /** Writes the records not yet delivered for `period`; returns how many were new. */
  async write(period: Period, records: readonly StagedRecord[]): Promise<number> {
    const { ctx } = this;
    const known = await this.knownIds(period);
    const fresh = new Map<string, StagedRecord>();
    for (const r of records) if (!known.has(r.eventId) && !fresh.has(r.eventId)) fresh.set(r.eventId, r);
    ctx.metrics.lateDuplicatesDropped += records.length - fresh.size;
    if (fresh.size === 0) return 0;
    const byFingerprint = new Map<string, StagedRecord[]>();
    for (const r of fresh.values()) {
      const list = byFingerprint.get(r.schemaFingerprint) ?? [];
      list.push(r);
      byFingerprint.set(r.schemaFingerprint, list);
    }
    for (const [fingerprint, list] of byFingerprint) {
      const resolved = await ctx.schemas.resolve(fingerprint);
      if (resolved === undefined) throw new AppError('DECODE_FAILED', { message: `unknown schema fingerprint ${fingerprint}` });
      list.sort((a, b) => compareIds(a.eventId, b.eventId));
      const name = `${latePrefix(ctx.eventType, period)}late-${idSetHash(list.map((r) => r.eventId), fingerprint)}.avro`;
      const bytes = buildDeliveredFile(name, ctx.eventType, period, fingerprint, resolved.deliveredSchema, list);
      await createIfAbsent(ctx.data, name, bytes, { contentType: 'avro/binary', metadata: { [RECORD_COUNT_KEY]: String(list.length) } });
      for (const r of list) known.add(r.eventId);
    }
    await this.updateCounter(period);
    ctx.metrics.lateEvents += fresh.size;
    ctx.logger.warn('late events written', { period: period.key, count: fresh.size });
    return fresh.size;
  }

  private async knownIds(period: Period): Promise<Set<string>> {
    const cached = this.known.get(period.key);
    if (cached !== undefined) return cached;
    const ids = new Set<string>();
    const manifest = await readManifest(this.ctx.data.storage, this.ctx.data.name, this.ctx.eventType, period);
    const names = [...(manifest?.files.map((f) => f.name) ?? []), ...(await this.lateFiles(period)).map((f) => f.name)];
    for (const name of names) {
      const bytes = await download(this.ctx.data, name);
      if (bytes !== undefined) for (const id of deliveredIds(bytes)) ids.add(id);
    }
    if (this.known.size >= KNOWN_CACHE) this.known.delete(this.known.keys().next().value as string);
    this.known.set(period.key, ids);
    return ids;
  }

  private async lateFiles(period: Period) {
    return (await listObjects(this.ctx.data, latePrefix(this.ctx.eventType, period))).filter((o) => o.name.endsWith('.avro'));
  }

  /** Recomputes `_LATE` from the late files, conditional on its generation (concurrent writers converge). */
  private async updateCounter(period: Period): Promise<void> {
    const name = lateCounterObjectName(this.ctx.eventType, period);
    for (let attempt = 0; attempt < 8; attempt++) {
      const current = await statObject(this.ctx.data, name);
      const files = (await this.lateFiles(period)).map((f) => ({ name: f.name, recordCount: Number(f.metadata[RECORD_COUNT_KEY] ?? 0) }));
      const counter: LateCounter = {
        eventType: this.ctx.eventType,
        period: period.key,
        count: files.reduce((s, f) => s + f.recordCount, 0),
        files,
        updatedAt: new Date(this.ctx.now()).toISOString(),
      };
      const body = Buffer.from(JSON.stringify(counter, null, 2));
      const r =
        current === undefined
          ? await createIfAbsent(this.ctx.data, name, body, { contentType: 'application/json' })
          : await replaceIfGeneration(this.ctx.data, name, body, current.generation, 'application/json');
      if (r === 'created' || r === 'replaced') return;
    }
  }
}

/** The live late count of a closed partition (0 without `_LATE`). */
export async function readLateCount(ctx: TypeContext, period: Period): Promise<number> {
  const bytes = await download(ctx.data, lateCounterObjectName(ctx.eventType, period));
  if (bytes === undefined) return 0;
  return (JSON.parse(bytes.toString('utf8')) as LateCounter).count;
}
