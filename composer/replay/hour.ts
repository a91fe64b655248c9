/**
 * `replay <type> --hour H`: re-close an hour that never closed, from its
 * staged files, now. The closing is the ETL's own (etl/close-hour.ts, the
 * worker's `PartitionCloser`), run in a child process: the composer may not
 * import the ETL (CONVENTIONS.md), and the close must be exactly what a worker
 * would write. It refuses a partition that has `_SUCCESS` (closed partitions
 * are immutable), an hour not over, and one with nothing staged or accepted.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Env } from '../../lib/config.ts';

export interface CloseHourOutcome {
  /** The child's exit code (etl/close-hour.ts: 0 closed, 1 refused, 2 configuration, 3 storage/registry). */
  code: number;
  /** What it printed: one JSON line when it closed. */
  stdout: string;
  stderr: string;
}

const closeHourScript = fileURLToPath(new URL('../../etl/close-hour.ts', import.meta.url));

/** Runs etl/close-hour.ts with the ETL's configuration variables from `env`. */
export function closeHour(eventType: string, hour: string, env: Env): Promise<CloseHourOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', closeHourScript, eventType, hour], { env: { ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 3, stdout, stderr }));
  });
}

/** The line printed for a close: `<type>: <period> closed complete, 12 records (12 accepted)`. */
export function formatClose(eventType: string, stdout: string): string {
  const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { period?: string; closedBy?: string; recordCount?: number; accepted?: number };
  return `${eventType}: ${r.period} closed ${r.closedBy === 'complete' ? 'complete' : 'at deadline (incomplete)'}, ${r.recordCount} record(s) (${r.accepted} accepted)`;
}
