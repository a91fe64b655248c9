/**
 * `npm run composer -- capacity [spec…] [--events-per-second N] [--types N]`:
 * the capacity plan of the given specs (each at its `expectedEventsPerSecond`;
 * `--events-per-second` is split evenly over those without one), or of
 * `--types` identical types sharing `--events-per-second`. Its own argument
 * parsing (node:util parseArgs), so the composer CLI only dispatches to it.
 */
import { parseArgs } from 'node:util';
import { AppError } from '../../lib/errors.ts';
import type { Partitioning } from '../../lib/registry/types.ts';
import { formatProblems, loadSpecs } from '../spec.ts';
import { defaultAssumptions } from './assumptions.ts';
import { defaultResultsDir, loadMeasurements } from './measurements.ts';
import { planCapacity, type TypeLoad } from './model.ts';
import { defaultPricesFile, loadPrices } from './prices.ts';
import { formatPlan } from './report.ts';

export const CAPACITY_USAGE = `usage: npm run composer -- capacity [spec-file|dir…] [options]

Sizes the platform for a load from the measured benchmark figures (bench/results/*.json)
and the list prices in composer/capacity/prices.json. See docs/capacity.md.

  [spec-file|dir…]            specs; each type at its expectedEventsPerSecond
  --events-per-second <N>     total events/s: split evenly over the specs without an
                              expected volume, or over --types types when no spec is given
  --types <N>                 with no spec: this many identical types (default 1)
  --partitioning <p>          with no spec: hourly (default) or daily
  --retention-days <N>        with no spec: retention of each type (default 365)
  --results-dir <dir>         benchmark results (default bench/results)
  --prices <file>             price list (default composer/capacity/prices.json)
  --json                      print the plan as JSON
  --help                      this text

exit codes: 0 ok, 1 invalid spec, 2 usage error or missing/invalid results or prices`;

export interface CapacityIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

class UsageError extends Error {}

function positiveNumber(text: string | undefined, flag: string, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && (!Number.isInteger(n) || n < 1))) {
    throw new UsageError(`${flag} must be ${integer ? 'a whole number ≥ 1' : 'a number ≥ 0'}, not ${JSON.stringify(text)}`);
  }
  return n;
}

/** The loads the arguments describe. */
async function loadsOf(specPaths: readonly string[], v: Record<string, string | boolean | undefined>): Promise<TypeLoad[]> {
  const total = positiveNumber(v['events-per-second'] as string | undefined, '--events-per-second', false);
  if (specPaths.length === 0) {
    if (total === undefined) throw new UsageError('give specs or --events-per-second');
    const types = positiveNumber(v.types as string | undefined, '--types', true) ?? 1;
    const partitioning = (v.partitioning as string | undefined) ?? 'hourly';
    if (partitioning !== 'hourly' && partitioning !== 'daily') throw new UsageError(`--partitioning must be hourly or daily, not ${JSON.stringify(partitioning)}`);
    const retentionDays = positiveNumber(v['retention-days'] as string | undefined, '--retention-days', true) ?? 365;
    const width = String(types).length;
    return Array.from({ length: types }, (_, i) => ({
      name: `type_${String(i + 1).padStart(width, '0')}`,
      eventsPerSecond: total / types,
      partitioning: partitioning as Partitioning,
      retentionDays,
    }));
  }
  if (v.types !== undefined || v.partitioning !== undefined || v['retention-days'] !== undefined) {
    throw new UsageError('--types, --partitioning and --retention-days apply only without specs (a spec says its own)');
  }
  const specs = [];
  for (const p of specPaths) {
    const { specs: found, problems } = await loadSpecs(p);
    if (problems.length > 0) throw new AppError('SPEC_INVALID', { message: formatProblems(problems) });
    specs.push(...found.map((f) => f.spec));
  }
  if (specs.length === 0) throw new UsageError(`no spec found in ${specPaths.join(', ')}`);
  const without = specs.filter((s) => s.expectedEventsPerSecond === undefined);
  if (without.length > 0 && total === undefined) {
    throw new UsageError(`no expectedEventsPerSecond in ${without.map((s) => s.name).join(', ')}: add it to the spec or give --events-per-second`);
  }
  return specs.map((s) => ({
    name: s.name,
    eventsPerSecond: s.expectedEventsPerSecond ?? (total ?? 0) / without.length,
    partitioning: s.partitioning,
    retentionDays: s.retentionDays,
  }));
}

/** Runs the command; returns the exit code. */
export async function runCapacityCommand(argv: readonly string[], io: CapacityIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'events-per-second': { type: 'string' },
        types: { type: 'string' },
        partitioning: { type: 'string' },
        'retention-days': { type: 'string' },
        'results-dir': { type: 'string' },
        prices: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n\n${CAPACITY_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help === true) {
    io.out(CAPACITY_USAGE);
    return 0;
  }
  try {
    const loads = await loadsOf(parsed.positionals, v);
    const measurements = loadMeasurements(v['results-dir'] ?? defaultResultsDir);
    const prices = loadPrices(v.prices ?? defaultPricesFile);
    const plan = planCapacity(loads, measurements, defaultAssumptions, prices);
    if (v.json === true) io.out(JSON.stringify({ plan, measurements, assumptions: defaultAssumptions, prices: { recordedOn: prices.recordedOn, currency: prices.currency } }, null, 2));
    else for (const line of formatPlan(plan, measurements, defaultAssumptions, prices)) io.out(line);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n\n${CAPACITY_USAGE}`);
      return 2;
    }
    if (err instanceof AppError && err.code === 'SPEC_INVALID') {
      io.err(err.message);
      return 1;
    }
    if (err instanceof AppError && err.code === 'CONFIG_INVALID') {
      io.err(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
