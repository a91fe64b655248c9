/**
 * The close thread's side of etl/close-thread.ts: lowers its own CPU
 * priority (on Linux `setPriority(0, …)` applies to the calling thread only),
 * runs one merge, and answers with its result or its error.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createStorage } from '../lib/gcp/storage.ts';
import { inProcessMerges, type WriteCallbacks } from './close-merges.ts';
import { errorOfThread, HEAP_TICK_MS, threadErrorOf, type BucketAddress, type FromThread, type ThreadJob, type ToThread } from './close-thread.ts';

/** Niceness of the close thread: the draining on the main thread wins the cores when they are contended. */
const CLOSE_THREAD_NICE = 10;

const port = parentPort!;
const job = workerData as ThreadJob;

try {
  setPriority(0, CLOSE_THREAD_NICE);
} catch {
  // Not permitted or not supported here: the merge runs at the process's priority.
}

const bucketOf = (a: BucketAddress) =>
  createStorage({ projectId: a.projectId ?? '', apiEndpoint: a.apiEndpoint, ...(a.maxRetries === undefined ? {} : { maxRetries: a.maxRetries }) }).bucket(a.bucket);

const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
let nextId = 0;
port.on('message', (m: ToThread) => {
  const waiting = pending.get(m.id);
  pending.delete(m.id);
  if (m.error === undefined) waiting?.resolve();
  else waiting?.reject(errorOfThread(m.error));
});

/** Calls back into the caller's thread and waits for its answer. */
function call(message: Extract<FromThread, { kind: 'call' }>): Promise<void> {
  return new Promise((resolve, reject) => {
    pending.set(message.id, { resolve, reject });
    port.postMessage(message);
  });
}

const callbacks: WriteCallbacks = {
  heartbeat: () => call({ kind: 'call', id: nextId++, call: 'heartbeat' }),
  assertOpen: () => call({ kind: 'call', id: nextId++, call: 'assertOpen' }),
  onPart: (file) => call({ kind: 'call', id: nextId++, call: 'onPart', file }),
};

/**
 * The thread's heap (bytes used), the largest per `HEAP_TICK_MS` of wall-clock
 * time, reported with its result when a benchmark asked for it: it adds it to
 * the caller's heap at the same moments (etl/close-thread.ts `trackCloseThreadHeap`).
 */
const heapByTick = new Map<number, number>();
const sampleHeap = (): void => {
  if (!job.reportHeap) return;
  const tick = Math.floor(Date.now() / HEAP_TICK_MS);
  heapByTick.set(tick, Math.max(heapByTick.get(tick) ?? 0, process.memoryUsage().heapUsed));
};
sampleHeap();
if (job.reportHeap) setInterval(sampleHeap, 20).unref();

try {
  const merges = inProcessMerges(bucketOf(job.staging), bucketOf(job.data));
  const result = job.op === 'count' ? await merges.count(job.inputs, callbacks.heartbeat) : await merges.write(job.job, callbacks);
  sampleHeap();
  port.postMessage({ kind: 'done', result, heap: [...heapByTick] } satisfies FromThread);
} catch (err) {
  port.postMessage({ kind: 'failed', error: threadErrorOf(err) } satisfies FromThread);
}
