/**
 * `npm run bench [name…]`: runs every `bench/*.bench.ts` (or the named ones)
 * one after another, each in its own process so figures don't disturb each other.
 * A benchmark that records figures (bench/results.ts) gets them written to
 * `bench/results/<name>.json` with the machine and the load of the run
 * (`BENCH_RESULTS_DIR` to write elsewhere).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineNow, type BenchFigure, type BenchResultFile } from './results.ts';

const dir = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(dir, 'results');
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();
let failed = 0;
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const name = file.replace(/\.bench\.ts$/, '');
  mkdirSync(resultsDir, { recursive: true });
  const partial = path.join(resultsDir, `.${name}.${process.pid}.partial.json`);
  const before = machineNow();
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(dir, file)], {
    stdio: 'inherit',
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none', BENCH_RESULT_FILE: partial },
  });
  if (r.status !== 0) failed++;
  const figures = readFigures(partial);
  rmSync(partial, { force: true });
  if (r.status === 0 && figures !== undefined) {
    const after = machineNow();
    const result: BenchResultFile = {
      name,
      measuredAt: new Date().toISOString(),
      machine: before.machine,
      load: { before: before.loadavg, after: after.loadavg, freeMemoryGiB: before.freeMemoryGiB },
      settings: Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('BENCH_') && k !== 'BENCH_RESULTS_DIR' && v !== undefined) as [string, string][]),
      figures,
    };
    const target = path.join(resultsDir, `${name}.json`);
    writeFileSync(`${target}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
    renameSync(`${target}.tmp`, target);
    console.log(`results: ${path.relative(process.cwd(), target)}`);
  }
}
if (files.length === 0) console.log('no benchmark matched');
process.exit(failed === 0 ? 0 : 1);

function readFigures(file: string): Record<string, BenchFigure> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, BenchFigure>;
  } catch {
    return undefined;
  }
}
