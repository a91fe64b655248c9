/**
 * The close's merges in a worker thread (`CloseMerges`, etl/close-merges.ts):
 * one thread per merge, which lowers its own CPU priority (nice 10 on Linux),
 * reads and writes GCS through a storage client of its own configured like
 * the caller's, and calls back into this thread for what the close decides
 * here (lease renewal, the still-open check, each part stored), waiting for
 * each answer. A callback that throws fails the merge with that same error;
 * an error in the thread surfaces as the `AppError` it was (code and
 * message), anything else as INTERNAL. The thread's heap is capped
 * (`CLOSE_THREAD_HEAP_MB`): its blocks are outside the heap, like an
 * in-process merge's.
 */
import type { Bucket, Storage } from '@google-cloud/storage';
import { Worker } from 'node:worker_threads';
import { AppError, errorCatalogue, isAppError, type ErrorCode } from '../lib/errors.ts';
import type { ManifestFile } from '../lib/partitions.ts';
import type { CloseMerges, WriteCallbacks, WriteJob } from './close-merges.ts';
import type { MergeSummary } from './merge.ts';
import type { MergeInput } from './runs.ts';

/**
 * Heap caps of a close thread (old and young generation, MB). The thread's
 * modules (the storage client, the merge) take ~16 MB of heap and the merge a
 * few objects per input (its blocks are outside the heap); under a larger cap
 * V8 lets garbage pile up to ~85 MB before collecting (measured with 128). A
 * small young generation keeps the thread's RSS down too.
 */
export const CLOSE_THREAD_HEAP_MB = 48;
const CLOSE_THREAD_YOUNG_MB = 8;

/** How the thread builds a client for a bucket (lib/gcp/clients.ts `createStorage`). */
export interface BucketAddress {
  bucket: string;
  projectId: string | undefined;
  /** The emulator's URL; absent: Google. */
  apiEndpoint: string | undefined;
  maxRetries: number | undefined;
}

export type ThreadJob = { staging: BucketAddress; data: BucketAddress; reportHeap: boolean } & ({ op: 'count'; inputs: MergeInput[] } | { op: 'write'; job: WriteJob });

export interface ThreadError {
  code?: string;
  message: string;
}

/** Thread → caller. */
export type FromThread =
  | { kind: 'call'; id: number; call: 'heartbeat' | 'assertOpen' }
  | { kind: 'call'; id: number; call: 'onPart'; file: ManifestFile }
  | { kind: 'done'; result: MergeSummary | number; heap: [tick: number, bytes: number][] }
  | { kind: 'failed'; error: ThreadError };

/** Caller → thread: the answer to call `id`. */
export interface ToThread {
  kind: 'reply';
  id: number;
  error?: ThreadError;
}

export function addressOf(bucket: Bucket): BucketAddress {
  const storage = bucket.storage as Storage & { customEndpoint?: boolean; retryOptions?: { maxRetries?: number } };
  return {
    bucket: bucket.name,
    projectId: storage.projectId,
    apiEndpoint: storage.customEndpoint === true ? storage.apiEndpoint : undefined,
    maxRetries: storage.retryOptions?.maxRetries,
  };
}

export function threadErrorOf(err: unknown): ThreadError {
  if (isAppError(err)) return { code: err.code, message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

export function errorOfThread(e: ThreadError): AppError {
  const code = e.code !== undefined && Object.hasOwn(errorCatalogue, e.code) ? (e.code as ErrorCode) : 'INTERNAL';
  return new AppError(code, { message: e.message });
}

/** Wall-clock time per heap sample a close thread reports: ticks are `Math.floor(Date.now() / HEAP_TICK_MS)`. */
export const HEAP_TICK_MS = 100;

/** Reported close-thread heap per tick, once a benchmark asked for it; a worker keeps none (it would grow for ever). */
let heapOfThreads: Map<number, number> | undefined;

/**
 * From now on, close threads report their heap (bytes used), the largest per
 * tick: the returned map sums it over threads running at once (empty until one ran).
 */
export function trackCloseThreadHeap(): ReadonlyMap<number, number> {
  heapOfThreads ??= new Map();
  return heapOfThreads;
}

export function threadMerges(staging: Bucket, data: Bucket): CloseMerges {
  const where = { staging: addressOf(staging), data: addressOf(data), reportHeap: heapOfThreads !== undefined };
  return {
    count: (inputs, heartbeat) =>
      runInThread({ op: 'count', ...where, inputs: [...inputs] }, { heartbeat, assertOpen: noCall, onPart: noCall }) as Promise<MergeSummary>,
    write: (job, callbacks) => runInThread({ op: 'write', ...where, job }, callbacks) as Promise<number>,
  };
}

const noCall = (): Promise<void> => Promise.reject(new AppError('INTERNAL', { message: 'a counting merge stores no parts' }));

/** The thread's entry (a TypeScript module: the thread registers the same loader this process runs with). */
const ENTRY = new URL('./close-thread-worker.ts', import.meta.url).href;
const LOADER = import.meta.resolve('tsx/esm/api');
const BOOT = `import(${JSON.stringify(LOADER)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(ENTRY)}); });`;

function runInThread(job: ThreadJob, callbacks: WriteCallbacks): Promise<MergeSummary | number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(BOOT, { eval: true, execArgv: [], workerData: job, resourceLimits: { maxOldGenerationSizeMb: CLOSE_THREAD_HEAP_MB, maxYoungGenerationSizeMb: CLOSE_THREAD_YOUNG_MB } });
    let settled = false;
    /** The first error a callback threw here: the merge fails with it, not with its copy from the thread. */
    let callbackError: unknown;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      outcome();
      void worker.terminate();
    };
    worker.on('message', (m: FromThread) => {
      if (m.kind === 'done') {
        for (const [tick, bytes] of m.heap) heapOfThreads?.set(tick, (heapOfThreads.get(tick) ?? 0) + bytes);
        return settle(() => resolve(m.result));
      }
      if (m.kind === 'failed') return settle(() => reject(callbackError ?? errorOfThread(m.error)));
      const call = m.call === 'onPart' ? callbacks.onPart(m.file) : m.call === 'heartbeat' ? callbacks.heartbeat() : callbacks.assertOpen();
      call.then(
        () => worker.postMessage({ kind: 'reply', id: m.id } satisfies ToThread),
        (err: unknown) => {
          callbackError ??= err;
          worker.postMessage({ kind: 'reply', id: m.id, error: threadErrorOf(err) } satisfies ToThread);
        },
      );
    });
    worker.on('error', (err) => settle(() => reject(callbackError ?? new AppError('INTERNAL', { message: `close thread failed: ${err.message}` }))));
    worker.on('exit', (code) => settle(() => reject(callbackError ?? new AppError('INTERNAL', { message: `close thread exited (${code}) before its merge ended` }))));
  });
}
