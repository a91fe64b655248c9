/**
 * The migration jobs between a source store A (`from`) and a target B (`to`),
 * run while padlock serves with `primary=A, darkload=B` on every instance:
 *
 * - **backfill** walks A and copies every keychain B lacks (`copyKeychain`:
 *   tombstones through B's deletes, keys through B's create-if-absent, so a
 *   keychain created meanwhile, which the darkload also copies, ends with the
 *   one key A holds: B keeps the first, and both copies carry A's key). Then it
 *   **re-checks A** for the users it copied and applies any deletion A gained
 *   meanwhile to B: a user deleted in A while being copied does not reappear in
 *   B even if that deletion's darkload write failed. (A deletion after the
 *   re-check reaches B through the darkload; verify reports any it missed.)
 * - **verify** compares A and B, both ways, and counts differences by kind with
 *   sample user ids (never key material). A difference seen during the scan is
 *   read again at the end, so writes still in flight on the darkload are not
 *   reported; what remains is real.
 * - **repair** merges the two for every difference: deletions win (applied to
 *   the store that lacks them: nothing deleted comes back), keys are copied to
 *   the store that lacks them (no key is lost), and two different keys for one
 *   category are reported, never overwritten (which one encrypted data is not
 *   something a store can know).
 *
 * Each job saves a checkpoint (the scan cursor and its counts) after every
 * page and resumes from it after a crash.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { copyKeychain, differenceKinds, differences, type DifferenceKind } from './migration.ts';
import type { ScannableKeyStore, StoredKeychain } from './store.ts';

export type JobName = 'backfill' | 'verify' | 'repair';

export interface JobOptions {
  from: ScannableKeyStore;
  to: ScannableKeyStore;
  /** Users per page (one scan, one multi-get of the other store). */
  pageSize: number;
  /** Checkpoint file; resumed from if it exists for the same job and stores, removed when the job completes. */
  checkpointFile?: string;
  /** Called after each page. */
  onProgress?: (stats: JobStats) => void;
  /** Called for each repair action (user id and what was done; never key material). */
  onRepair?: (userId: string, kinds: DifferenceKind[], action: string) => void;
  /** Verify: differing users kept for the final re-read; beyond it, counted as found. */
  maxRecheck?: number;
}

export interface DifferenceStats {
  count: number;
  /** Up to `SAMPLES` user ids. */
  samples: string[];
}

export interface JobStats {
  job: JobName;
  /** Which store the scan walks: A, then (verify, repair) B for users A lacks. */
  phase: 'a' | 'b' | 'done';
  scannedA: number;
  scannedB: number;
  /** Backfill: users copied to B; repair: users repaired. */
  copied: number;
  /** Backfill: deletions A gained during the copy, applied to B by the re-check. */
  recheckDeletes: number;
  /** Verify and repair: differences by kind (repair: those left after repairing). */
  differences: Record<DifferenceKind, DifferenceStats>;
  startedAt: number;
  elapsedMs: number;
}

interface Checkpoint {
  job: JobName;
  from: string;
  to: string;
  cursor: string | undefined;
  stats: JobStats;
  /** Verify: users that differed so far, to re-read at the end. */
  differing: string[];
}

const SAMPLES = 5;

export function emptyStats(job: JobName, now = Date.now()): JobStats {
  return {
    job,
    phase: 'a',
    scannedA: 0,
    scannedB: 0,
    copied: 0,
    recheckDeletes: 0,
    differences: Object.fromEntries(differenceKinds.map((k) => [k, { count: 0, samples: [] }])) as unknown as Record<DifferenceKind, DifferenceStats>,
    startedAt: now,
    elapsedMs: 0,
  };
}

/** Total differences in `stats`. */
export function differenceCount(stats: JobStats): number {
  return differenceKinds.reduce((n, k) => n + stats.differences[k].count, 0);
}

export async function runJob(job: JobName, opts: JobOptions): Promise<JobStats> {
  const resumed = opts.checkpointFile === undefined ? undefined : await loadCheckpoint(opts.checkpointFile, job, opts);
  const stats = resumed?.stats ?? emptyStats(job);
  let cursor = resumed?.cursor;
  const resumedAt = Date.now() - stats.elapsedMs;
  /** Users that differed, by id, for the final re-read (verify) or to repair. */
  const differing = new Map<string, true>((resumed?.differing ?? []).map((id) => [id, true]));
  const maxRecheck = opts.maxRecheck ?? 10_000;

  const save = async (): Promise<void> => {
    stats.elapsedMs = Date.now() - resumedAt;
    if (opts.checkpointFile !== undefined) await saveCheckpoint(opts.checkpointFile, { job, from: opts.from.kind, to: opts.to.kind, cursor, stats, differing: [...differing.keys()] });
    opts.onProgress?.(stats);
  };

  while (stats.phase !== 'done') {
    const scanning = stats.phase === 'a' ? opts.from : opts.to;
    const other = stats.phase === 'a' ? opts.to : opts.from;
    const page = await scanning.scan(cursor, opts.pageSize);
    const ids = page.keychains.map(([id]) => id);
    const others = ids.length > 0 ? await other.read(ids) : new Map<string, StoredKeychain>();
    const pageDiffering: string[] = [];
    if (stats.phase === 'a') {
      stats.scannedA += ids.length;
      if (job === 'backfill') await backfillPage(opts, page.keychains, others, stats);
      else for (const [id, a] of page.keychains) if (differences(a, others.get(id) ?? { state: 'absent' }).length > 0) pageDiffering.push(id);
    } else {
      stats.scannedB += ids.length;
      // Users A holds were compared in phase A; here only those A lacks.
      for (const [id, b] of page.keychains) if (others.get(id)?.state === 'absent' && differences({ state: 'absent' }, b).length > 0) pageDiffering.push(id);
    }
    if (job === 'repair') await settle(job, opts, pageDiffering, stats);
    else if (job === 'verify') {
      const kept = pageDiffering.slice(0, Math.max(0, maxRecheck - differing.size));
      for (const id of kept) differing.set(id, true);
      // Beyond the bound, counted as found now (no re-read).
      if (kept.length < pageDiffering.length) await settle(job, opts, pageDiffering.slice(kept.length), stats);
    }
    cursor = page.cursor;
    if (cursor === undefined) stats.phase = job === 'backfill' || stats.phase === 'b' ? 'done' : 'b';
    await save();
  }

  if (job === 'verify') await settle(job, opts, [...differing.keys()], stats);
  stats.elapsedMs = Date.now() - resumedAt;
  if (opts.checkpointFile !== undefined) await rm(opts.checkpointFile, { force: true });
  return stats;
}

async function backfillPage(opts: JobOptions, page: KeychainPageEntries, inB: Map<string, StoredKeychain>, stats: JobStats): Promise<void> {
  const copied: string[] = [];
  for (const [id, a] of page) {
    const missing = differences(a, inB.get(id) ?? { state: 'absent' }).some((d) => d.kind === 'missing-in-b' || d.kind === 'deleted-in-a-only');
    if (!missing) continue;
    await copyKeychain(opts.to, id, a);
    copied.push(id);
  }
  stats.copied += copied.length;
  if (copied.length === 0) return;
  // The re-check: deletions A gained while we copied.
  const [nowA, nowB] = await Promise.all([opts.from.read(copied), opts.to.read(copied)]);
  for (const id of copied) {
    const a = nowA.get(id) ?? { state: 'absent' };
    if (differences(a, nowB.get(id) ?? { state: 'absent' }).some((d) => d.kind === 'deleted-in-a-only')) {
      await copyKeychain(opts.to, id, a);
      stats.recheckDeletes++;
    }
  }
}

type KeychainPageEntries = [userId: string, keychain: StoredKeychain][];

/** Verify: re-reads the users that differed, counting what still differs. Repair: merges them, then counts what is left. */
async function settle(job: JobName, opts: JobOptions, ids: string[], stats: JobStats): Promise<void> {
  for (let i = 0; i < ids.length; i += opts.pageSize) {
    const batch = ids.slice(i, i + opts.pageSize);
    let [a, b] = await Promise.all([opts.from.read(batch), opts.to.read(batch)]);
    if (job === 'repair') {
      for (const id of batch) {
        const found = differences(a.get(id) ?? { state: 'absent' }, b.get(id) ?? { state: 'absent' });
        if (found.length === 0) continue;
        // Both ways: deletions and keys each store lacks; never a replaced key.
        await copyKeychain(opts.to, id, a.get(id) ?? { state: 'absent' });
        await copyKeychain(opts.from, id, b.get(id) ?? { state: 'absent' });
        stats.copied++;
        opts.onRepair?.(id, found.map((d) => d.kind), 'merged: deletions and missing keys applied to the store lacking them');
      }
      [a, b] = await Promise.all([opts.from.read(batch), opts.to.read(batch)]);
    }
    for (const id of batch) {
      for (const d of differences(a.get(id) ?? { state: 'absent' }, b.get(id) ?? { state: 'absent' })) count(stats, d.kind, id);
    }
  }
}

function count(stats: JobStats, kind: DifferenceKind, userId: string): void {
  const entry = stats.differences[kind];
  entry.count++;
  if (entry.samples.length < SAMPLES && !entry.samples.includes(userId)) entry.samples.push(userId);
}

async function loadCheckpoint(file: string, job: JobName, opts: JobOptions): Promise<Checkpoint | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const checkpoint = JSON.parse(text) as Checkpoint;
  if (checkpoint.job !== job || checkpoint.from !== opts.from.kind || checkpoint.to !== opts.to.kind) {
    throw new Error(`Checkpoint ${file} is for ${checkpoint.job} ${checkpoint.from} → ${checkpoint.to}, not ${job} ${opts.from.kind} → ${opts.to.kind}: remove it or pick another file`);
  }
  return checkpoint;
}

async function saveCheckpoint(file: string, checkpoint: Checkpoint): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(checkpoint), { mode: 0o600 });
  await rename(tmp, file);
}
