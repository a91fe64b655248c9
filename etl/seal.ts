/**
 * Sealing a closed partition: once `_SUCCESS` is written, every object its
 * manifest lists, its subject index `_SUBJECTS`, then `_SUCCESS` itself, gets an Unlocked object retention
 * (Object Retention Lock) until the end of the type's retention. From then on
 * nobody can delete or replace them before that time: not the ETL (its role
 * has `storage.objects.setRetention`, which can set or extend a retention,
 * but not `storage.objects.overrideUnlockedRetention`, which shortening or
 * removing one needs), not a consumer; only an admin holding that permission.
 * Objects never in a manifest (stale parts of a crashed close, late files, the
 * `_LATE` counter, `_LOADED`) stay writable, which crash recovery and the late
 * writer need.
 *
 * Idempotent and crash-safe: `_SUCCESS` is retained last, so a retained
 * `_SUCCESS` means the partition is sealed; the closer seals before it deletes
 * the staged files, so a crash in between leaves work that leads back here.
 * A data bucket without object retention (created without it, e.g. by hand) is
 * reported once and not sealed.
 */
import type { Bucket } from '@google-cloud/storage';
import { readManifest, subjectIndexObjectName, successObjectName, type Manifest, type Period } from '../lib/partitions.ts';
import type { TypeContext } from './context.ts';
import { httpCode, isNotFound, storageFailure } from './storage-io.ts';

const DAY_MS = 86_400_000;
/** Periods remembered as sealed (one process seals each at most once; a few days of hours). */
const SEALED_MEMORY = 512;

/** The retention mode the sealer sets: an admin can still lift it (Locked could never be). */
export const SEAL_MODE = 'Unlocked';

export class PartitionSealer {
  private bucketRetains: Promise<boolean> | undefined;
  private readonly sealed = new Set<string>();

  constructor(
    private readonly ctx: TypeContext,
    private readonly retentionDays: number,
  ) {}

  /** When the retention of `period`'s objects ends: the end of the period plus the type's retention. */
  retainUntil(period: Period): Date {
    return new Date(period.endMs + this.retentionDays * DAY_MS);
  }

  /**
   * Retains the objects of closed `period` (its manifest, read if not given).
   * Returns how many objects it retained now (0: already sealed, not closed,
   * past its retention, or a bucket without object retention).
   */
  async seal(period: Period, manifest?: Manifest): Promise<number> {
    const { ctx } = this;
    if (this.sealed.has(period.key) || !(await this.retentionEnabled())) return 0;
    const until = this.retainUntil(period);
    if (until.getTime() <= ctx.now()) return 0; // past its retention: the bucket's lifecycle deletes it
    const success = successObjectName(ctx.eventType, period);
    if (await isRetained(ctx.data, success)) {
      this.remember(period);
      return 0;
    }
    const m = manifest ?? (await readManifest(ctx.data.storage, ctx.data.name, ctx.eventType, period));
    if (m === undefined) return 0;
    // The subject index (written before `_SUCCESS`, absent for partitions closed before it existed) too.
    const names = [...m.files.map((f) => f.name), subjectIndexObjectName(ctx.eventType, period), success];
    for (const name of names) await retain(ctx.data, name, until);
    this.remember(period);
    ctx.logger.info('partition sealed', { period: period.key, objects: names.length, retainUntil: until.toISOString() });
    return names.length;
  }

  private remember(period: Period): void {
    if (this.sealed.size >= SEALED_MEMORY) this.sealed.delete(this.sealed.values().next().value as string);
    this.sealed.add(period.key);
  }

  private retentionEnabled(): Promise<boolean> {
    this.bucketRetains ??= (async () => {
      const [meta] = await this.ctx.data.getMetadata();
      const on = (meta as { objectRetention?: { mode?: string } }).objectRetention?.mode === 'Enabled';
      if (!on) {
        this.ctx.logger.warn('the data bucket has no object retention: closed partitions are not sealed against deletion or replacement', {
          bucket: this.ctx.data.name,
        });
      }
      return on;
    })().catch((err: unknown) => {
      this.bucketRetains = undefined; // ask again next time
      throw storageFailure(`read bucket ${this.ctx.data.name}`, err);
    });
    return this.bucketRetains;
  }
}

async function isRetained(bucket: Bucket, name: string): Promise<boolean> {
  try {
    const [meta] = await bucket.file(name).getMetadata();
    return meta.retention?.retainUntilTime !== undefined;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw storageFailure(`stat ${name}`, err);
  }
}

/** Sets an Unlocked retention until `until` on `name`; one already there (ours, or extended by an admin) is kept. */
async function retain(bucket: Bucket, name: string, until: Date): Promise<void> {
  const file = bucket.file(name);
  try {
    await file.setMetadata({ retention: { mode: SEAL_MODE, retainUntilTime: until.toISOString() } });
  } catch (err) {
    // 403: a retention is there already and ours would shorten it (a re-run after an admin extended it).
    if (httpCode(err) === 403 && (await isRetained(bucket, name))) return;
    // 404: an admin lifted the seal and deleted the object; there is nothing left to seal.
    if (isNotFound(err)) return;
    throw storageFailure(`retain ${name}`, err);
  }
}
