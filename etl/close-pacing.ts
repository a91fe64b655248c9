/**
 * Closing must not stall draining: a close and the pulls of every type share
 * one worker process's event loop (and, on a busy machine, its CPU share).
 * The stager notes each record it takes in (`noteDraining`); while the process
 * has drained something within the last second, a close's merge loop works
 * in slices of about `SLICE_MS` and rests after each for
 * `(1 - CLOSE_SHARE) / CLOSE_SHARE` times as long as the slice took
 * (`closePacer`), so it keeps at most about `CLOSE_SHARE` of the wall clock
 * and draining keeps the rest, never waiting more than a slice for the event
 * loop. With nothing to drain the close runs flat out (only yielding between
 * slices).
 * `npm run bench etl-close-drain` measures the drain rate during a close.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** The share of wall-clock time a close may take while the process drains. */
export const CLOSE_SHARE = 0.1;

/** A slice of merge work between two yields: short, since the drain waits for the event loop meanwhile. */
export const SLICE_MS = 8;

/** How long after the last record taken in the process still counts as draining. */
const DRAINING_MS = 1000;
/** A rest never exceeds this (a slice stretched by slow reads must not park the close). */
const MAX_REST_MS = 250;

let drainedAt = -Infinity;

/** Called by the stager for every record it takes in (any type of the process). */
export function noteDraining(now = performance.now()): void {
  drainedAt = now;
}

export function isDraining(now = performance.now()): boolean {
  return now - drainedAt < DRAINING_MS;
}

/** How long a close rests after a slice of `sliceMs`. */
export function restAfter(sliceMs: number, draining: boolean): number {
  return draining ? Math.min(MAX_REST_MS, (sliceMs * (1 - CLOSE_SHARE)) / CLOSE_SHARE) : 0;
}

export interface ClosePacer {
  /** Whether the current slice has run `SLICE_MS` (cheap: asked every few hundred records). */
  due(): boolean;
  /** Yields (a macrotask, so I/O callbacks run) and rests as `restAfter` says; a new slice starts. */
  rest(): Promise<void>;
}

/** A pacer for one merge. */
export function closePacer(): ClosePacer {
  let sliceStart = performance.now();
  return {
    due: () => performance.now() - sliceStart >= SLICE_MS,
    rest: async () => {
      const now = performance.now();
      const rest = restAfter(now - sliceStart, isDraining(now));
      if (rest > 0) await sleep(rest);
      else await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    },
  };
}
