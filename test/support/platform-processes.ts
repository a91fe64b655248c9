/**
 * The platform's processes as a test runs them: event-service and ETL worker
 * entry points (functions/event-service/main.ts, etl/main.ts) spawned with an
 * environment, their output kept for assertions and failures, and a client
 * that sends batches and keeps the ids each service said it accepted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from '../../emulators/google/process.ts';

export interface RunningProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

function run(entry: string, env: Record<string, string>, keepOutput: boolean): RunningProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (c: Buffer): void => {
    // Bounded: a long run keeps its start (the listening line) and its last lines.
    if (keepOutput || out.length < 64 * 1024) out += c.toString();
    if (out.length > 256 * 1024) out = out.slice(0, 64 * 1024) + out.slice(-64 * 1024);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

export interface EventServiceProcess extends RunningProcess {
  url: string;
  /** The instance id the service logged at start (its audit objects and messages carry it). */
  instanceId: string;
}

/** Starts an event service and waits until it logs its URL and instance id. */
export async function startEventServiceProcess(env: Record<string, string>): Promise<EventServiceProcess> {
  const p = run('functions/event-service/main.ts', { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'INFO', ...env }, false);
  for (let i = 0; i < 300; i++) {
    const url = /event service: (http:\/\/[0-9.:]+)/.exec(p.output())?.[1];
    const instanceId = /"message":"event service listening"[^\n]*"instanceId":"([^"]+)"/.exec(p.output())?.[1];
    if (url !== undefined && instanceId !== undefined) return { ...p, url, instanceId };
    if (p.child.exitCode !== null) break;
    await sleep(100);
  }
  p.child.kill('SIGKILL');
  throw new Error(`event service did not start:\n${p.output()}`);
}

/** Starts an ETL worker process (etl/main.ts). */
export function startEtlWorkerProcess(env: Record<string, string>): RunningProcess {
  return run('etl/main.ts', { LOG_LEVEL: 'WARNING', ...env }, false);
}

/** Ids each event service reported accepted, and ids no one did. */
export class AcceptedLedger {
  readonly byService = new Map<string, Set<string>>();
  /** Batches no service answered (connection refused or reset): their events may or may not be delivered. */
  unanswered = 0;

  note(serviceUrl: string, id: string): void {
    const set = this.byService.get(serviceUrl) ?? new Set<string>();
    set.add(id);
    this.byService.set(serviceUrl, set);
  }

  get all(): Set<string> {
    const out = new Set<string>();
    for (const s of this.byService.values()) for (const id of s) out.add(id);
    return out;
  }
}

/**
 * Posts one batch to `url`; records the ids reported accepted. Returns the
 * events to send again (failed retryably, or the request itself failed).
 */
export async function postBatch<E extends { id: string }>(url: string, events: readonly E[], ledger: AcceptedLedger): Promise<E[]> {
  let body: { results?: { index: number; status: string; id?: string }[] };
  try {
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(30_000),
    });
    body = (await res.json()) as typeof body;
  } catch {
    ledger.unanswered++;
    return [...events];
  }
  const again: E[] = [];
  for (const r of body.results ?? []) {
    const e = events[r.index];
    if (e === undefined) continue;
    if (r.status === 'accepted') ledger.note(url, e.id);
    else if (r.status === 'failed') again.push(e);
  }
  return again;
}
