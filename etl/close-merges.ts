/**
 * The close's two merges over a period's (or shard's) inputs, the CPU of a
 * close: the counting merge (`summarize`) and the writing merge that streams
 * the parts out. They run in this thread for a small period, and in a worker
 * thread of lower CPU priority (etl/close-thread.ts) once the inputs reach
 * `closeThreadMinBytes`, so that closing a large hour does not stall the
 * draining on the worker's event loop. Everything else of a close (lease,
 * decision, manifest, seal) stays with the caller; the callbacks of the
 * writing merge (lease renewal, the partition-still-open check, each part
 * stored) always run in the caller's thread.
 */
import type { Bucket } from '@google-cloud/storage';
import { shardPartObjectName, type ManifestFile, type Period } from '../lib/partitions.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import type { TypeContext } from './context.ts';
import { limiter, mergeCursors, openCursor, summarize, type MergeSummary } from './merge.ts';
import { PartSequence } from './parts.ts';
import type { MergeInput } from './runs.ts';

/** Range reads in flight in one merge, whatever its fan-in. */
const READS_IN_FLIGHT = 16;

/** One writer version's parts: numbered from `firstIndex` on. */
export interface PartPlan {
  fingerprint: string;
  deliveredSchema: AvroSchemaJson;
  firstIndex: number;
}

/** What the writing merge writes (plain data: it crosses to the close thread). */
export interface WriteJob {
  eventType: string;
  period: Period;
  inputs: MergeInput[];
  /** One per writer version of the inputs. */
  plans: PartPlan[];
  partMaxRecords: number;
  /** A shard's parts are `part-SSS-NNNNN.avro`; absent: `part-NNNNN.avro`. */
  shardIndex?: number;
}

/** Called from the writing merge, in the caller's thread. */
export interface WriteCallbacks {
  /** Renews the lease if due (every 64k records and after each part). */
  heartbeat(): Promise<void>;
  /** Throws if the partition (or shard) was closed meanwhile: a part found there must then not be replaced. */
  assertOpen(): Promise<void>;
  /** A part was stored and verified. */
  onPart(file: ManifestFile): Promise<void>;
}

export interface CloseMerges {
  /** The counting merge: what the partition will hold. */
  count(inputs: readonly MergeInput[], heartbeat: () => Promise<void>): Promise<MergeSummary>;
  /** The writing merge; returns the records written. */
  write(job: WriteJob, callbacks: WriteCallbacks): Promise<number>;
}

/** The merges in this thread. */
export function inProcessMerges(staging: Bucket, data: Bucket): CloseMerges {
  return {
    count: async (inputs, heartbeat) => summarize(await openAll(staging, inputs), heartbeat),
    write: (job, callbacks) => writeMerged(staging, data, job, callbacks),
  };
}

/** Where `ctx`'s merges over `inputs` run: in a close thread from `closeThreadMinBytes` of input on. */
export async function closeMergesFor(ctx: TypeContext, inputs: readonly MergeInput[]): Promise<CloseMerges> {
  const bytes = inputs.reduce((n, i) => n + i.size, 0);
  if (bytes < ctx.tuning.closeThreadMinBytes) return inProcessMerges(ctx.staging, ctx.data);
  // Imported here: a worker that never closes a large period never loads worker_threads' side.
  const { threadMerges } = await import('./close-thread.ts');
  return threadMerges(ctx.staging, ctx.data);
}

export async function openAll(staging: Bucket, inputs: readonly MergeInput[]) {
  const reads = limiter(READS_IN_FLIGHT);
  return Promise.all(inputs.map((i) => openCursor(staging, i, reads)));
}

/** The writing merge: one `PartSequence` per writer version, records in id order, one per id. */
export async function writeMerged(staging: Bucket, data: Bucket, job: WriteJob, callbacks: WriteCallbacks): Promise<number> {
  const sequences = new Map<string, PartSequence>();
  const { shardIndex } = job;
  for (const plan of job.plans) {
    const target = {
      data,
      eventType: job.eventType,
      period: job.period,
      fingerprint: plan.fingerprint,
      deliveredSchema: plan.deliveredSchema,
      partMaxRecords: job.partMaxRecords,
      ...(shardIndex === undefined ? {} : { partName: (i: number) => shardPartObjectName(job.eventType, job.period, shardIndex, i) }),
      assertOpen: () => callbacks.assertOpen(),
      onPart: (file: ManifestFile) => callbacks.onPart(file),
    };
    sequences.set(plan.fingerprint, new PartSequence(target, plan.firstIndex));
  }
  try {
    const written = await mergeCursors(await openAll(staging, job.inputs), { dedup: true, heartbeat: () => callbacks.heartbeat() }, (c) =>
      sequences.get(c.fingerprint)!.append(c),
    );
    for (const plan of job.plans) await sequences.get(plan.fingerprint)!.finish();
    return written.emitted;
  } catch (err) {
    for (const s of sequences.values()) s.abort();
    throw err;
  }
}
