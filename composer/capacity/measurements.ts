/**
 * The measured inputs of the capacity model, read from the benchmarks' result
 * files (`npm run bench` writes `bench/results/<name>.json`, bench/results.ts):
 * CPU per event of the event service and of an ETL worker's drain, CPU per
 * record and peak heap of closing an hour. CPU per event, not events/s: on a
 * workstation both paths are bounded by the local Pub/Sub emulator, while the
 * CPU each event costs is what a vCPU in production divides.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from '../../lib/errors.ts';

const figure = z.object({ value: z.number().finite().nonnegative(), unit: z.string(), what: z.string() });
const resultFile = z.object({
  name: z.string(),
  measuredAt: z.string(),
  machine: z.object({ cpuModel: z.string(), cpus: z.number(), memoryGiB: z.number(), node: z.string(), platform: z.string() }),
  load: z.object({ before: z.array(z.number()), after: z.array(z.number()), freeMemoryGiB: z.number() }),
  settings: z.record(z.string(), z.string()),
  figures: z.record(z.string(), figure),
});
export type BenchResult = z.infer<typeof resultFile>;

export interface Measurements {
  /** Event service: CPU µs per accepted (publish-confirmed) event. */
  ingestCpuUsPerEvent: number;
  /** Bytes of one event as measured (the JSON the producer sends ≈ the Pub/Sub message). */
  eventBytes: number;
  /** ETL worker: CPU µs per event drained (decode, transform, stage, ack). */
  etlCpuUsPerEvent: number;
  /** Closing: CPU µs per record, at the largest hour measured. */
  closeCpuUsPerRecord: number;
  /** Closing: the largest peak V8 heap over the hours measured, MiB (flat: the close streams). */
  closePeakHeapMb: number;
  /** The largest hour measured, records. */
  closeLargestHour: number;
  /** Where each figure came from: file, machine, load. */
  sources: { file: string; name: string; measuredAt: string; machine: BenchResult['machine']; load: BenchResult['load'] }[];
}

/** The repository's committed results. */
export const defaultResultsDir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bench', 'results');

function readResult(dir: string, name: string): { file: string; result: BenchResult } {
  const file = path.join(dir, `${name}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AppError('CONFIG_INVALID', {
      message: `no benchmark result ${file} (run \`npm run bench ${name}\`): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    });
  }
  const parsed = resultFile.safeParse(raw);
  if (!parsed.success) throw new AppError('CONFIG_INVALID', { message: `benchmark result ${file} is not valid: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}` });
  return { file, result: parsed.data };
}

function need(r: { file: string; result: BenchResult }, key: string): number {
  const f = Object.hasOwn(r.result.figures, key) ? r.result.figures[key] : undefined;
  if (f === undefined) throw new AppError('CONFIG_INVALID', { message: `benchmark result ${r.file} has no figure ${key}` });
  return f.value;
}

/** Reads the event-service, etl and etl-close results from `dir`. */
export function loadMeasurements(dir: string = defaultResultsDir): Measurements {
  const ingest = readResult(dir, 'event-service');
  const etl = readResult(dir, 'etl');
  const close = readResult(dir, 'etl-close');
  const hours = Object.keys(close.result.figures)
    .map((k) => /^closeCpuUsPerRecord_(\d+)$/.exec(k)?.[1])
    .filter((h): h is string => h !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const largest = hours[hours.length - 1];
  if (largest === undefined) throw new AppError('CONFIG_INVALID', { message: `benchmark result ${close.file} has no closeCpuUsPerRecord_<size> figure` });
  const positive = (value: number, what: string, file: string): number => {
    if (!(value > 0)) throw new AppError('CONFIG_INVALID', { message: `benchmark result ${file}: ${what} must be positive, not ${value}` });
    return value;
  };
  return {
    ingestCpuUsPerEvent: positive(need(ingest, 'ingestCpuUsPerEvent'), 'ingestCpuUsPerEvent', ingest.file),
    eventBytes: positive(need(ingest, 'ingestEventBytes'), 'ingestEventBytes', ingest.file),
    etlCpuUsPerEvent: positive(need(etl, 'etlCpuUsPerEvent'), 'etlCpuUsPerEvent', etl.file),
    closeCpuUsPerRecord: positive(need(close, `closeCpuUsPerRecord_${largest}`), 'closeCpuUsPerRecord', close.file),
    closePeakHeapMb: Math.max(...hours.map((h) => need(close, `closePeakHeapMb_${h}`))),
    closeLargestHour: largest,
    sources: [ingest, etl, close].map(({ file, result }) => ({ file, name: result.name, measuredAt: result.measuredAt, machine: result.machine, load: result.load })),
  };
}
