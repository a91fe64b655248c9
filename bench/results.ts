/**
 * Benchmark results as files: a benchmark calls `recordBenchResult` with its
 * headline figures; `npm run bench` (bench/run.ts) passes it the file to write
 * (`BENCH_RESULT_FILE`) and then wraps the figures with the machine and the
 * load they were measured under into `bench/results/<name>.json`, which the
 * composer's capacity model reads (composer/capacity/).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';

/** One figure: a number with its unit, e.g. `{ value: 12.5, unit: 'CPU µs/event' }`. */
export interface BenchFigure {
  value: number;
  unit: string;
  /** What was measured, in a line. */
  what: string;
}

export interface BenchResultFile {
  name: string;
  /** ISO time the run ended. */
  measuredAt: string;
  machine: { cpuModel: string; cpus: number; memoryGiB: number; node: string; platform: string };
  /** Load averages (1, 5, 15 min) before and after, and the machine's free memory: what else was running. */
  load: { before: number[]; after: number[]; freeMemoryGiB: number };
  /** The `BENCH_*` settings of the run. */
  settings: Record<string, string>;
  figures: Record<string, BenchFigure>;
}

/** Adds figures to this benchmark's result (a no-op outside `npm run bench`). */
export function recordBenchResult(figures: Record<string, BenchFigure>): void {
  const file = process.env.BENCH_RESULT_FILE;
  if (file === undefined || file === '') return;
  let current: Record<string, BenchFigure> = {};
  try {
    current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, BenchFigure>;
  } catch {
    // first figures of the run
  }
  writeFileSync(file, JSON.stringify({ ...current, ...figures }, null, 2));
}

/** The machine this process runs on, and its load now. */
export function machineNow(): { machine: BenchResultFile['machine']; loadavg: number[]; freeMemoryGiB: number } {
  const c = cpus();
  return {
    machine: {
      cpuModel: c[0]?.model.trim() ?? 'unknown',
      cpus: c.length,
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
  };
}
