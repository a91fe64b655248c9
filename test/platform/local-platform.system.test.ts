/**
 * The local platform (`npm start`) as a user runs it: a child process in its
 * own process group, every port 0, signalled the way a terminal or a service
 * manager does, to the whole group (issue 23, findings 7 and 8).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createStorage } from '../../lib/gcp/clients.ts';
import { isAlive, sleep } from '../../emulators/google/process.ts';
import { deliveredIds, readStagedFile } from '../../etl/files.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROJECT = 'local-project';

interface Platform {
  child: ChildProcess;
  endpoints: Record<string, string>;
  output(): string;
  exited: Promise<number | null>;
}

const started: ChildProcess[] = [];
afterEach(() => {
  // A failed assertion must not leave a platform (or its emulator) behind.
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) killGroup(child, 'SIGKILL');
  }
});

const dataDirs: string[] = [];
afterAll(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh data folder, removed after the run. */
function dataDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `${name}-`));
  dataDirs.push(dir);
  return dir;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** `npm start`'s entry point on free ports, in a process group of its own; resolves once it printed its endpoints. */
async function startPlatform(dataDir: string): Promise<Platform> {
  const ports = ['--pubsub-port', '0', '--gcs-port', '0', '--bigquery-port', '0', '--padlock-port', '0', '--composer-port', '0', '--event-service-port', '0', '--status-port', '0'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/start.ts', '--data-dir', dataDir, ...ports], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 120_000;
  while (!out.includes('credentials: ') && child.exitCode === null && Date.now() < deadline) await sleep(200);
  if (!out.includes('credentials: ')) throw new Error(`platform did not start:\n${out}\n${err.slice(-4000)}`);
  const endpoints = Object.fromEntries([...out.matchAll(/^([a-z-]+): (http:\/\/127\.0\.0\.1:\d+)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { child, endpoints, output: () => out, exited };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** PIDs of Pub/Sub emulator JVMs started with `--port=<port>`. */
function emulatorPids(port: number): number[] {
  try {
    return execFileSync('pgrep', ['-f', `cloud-pubsub-emulator.*--port=${port}( |$)`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Whether we can listen on 127.0.0.1:port (nothing holds it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(200);
  }
  return cond();
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('npm start, stopped from a terminal', () => {
  it('Ctrl-C (SIGINT to the whole process group) leaves no emulator running and frees its port', async () => {
    const p = await startPlatform(dataDir('start-sigint'));
    const port = portOf(p.endpoints.pubsub!);
    const [emulator] = emulatorPids(port);
    expect(emulator).toBeDefined();

    killGroup(p.child, 'SIGINT');
    expect(await within(p.exited, 120_000, 'exit after SIGINT')).toBe(0);
    expect(await waitFor(() => !isAlive(emulator!), 15_000)).toBe(true);
    expect(emulatorPids(port)).toEqual([]);
    expect(await portFree(port)).toBe(true);
  });
});

describe('npm start, stopped twice', () => {
  it('a second Ctrl-C during the drain stops at once, and still leaves no emulator running', async () => {
    const p = await startPlatform(dataDir('start-twice'));
    const port = portOf(p.endpoints.pubsub!);
    const [emulator] = emulatorPids(port);
    expect(emulator).toBeDefined();

    killGroup(p.child, 'SIGINT');
    // The drain waits at least a few seconds of quiet: time for the second Ctrl-C.
    expect(await waitFor(() => p.output().includes('stopping: staging'), 60_000)).toBe(true);
    killGroup(p.child, 'SIGINT');
    expect(await within(p.exited, 30_000, 'exit after the second SIGINT')).toBe(1);
    expect(p.output()).toContain('stopping now, without draining');
    expect(p.output()).not.toMatch(/^drained:/m);
    expect(await waitFor(() => !isAlive(emulator!), 15_000)).toBe(true);
    expect(await portFree(port)).toBe(true);
  });
});

describe('npm start, restarted', () => {
  const TOTAL = 20_000;
  const BATCH = 1000;

  it('stages every accepted event across a graceful stop (SIGTERM to the group) and a restart', async () => {
    const dir = dataDir('start-drain');
    const first = await startPlatform(dir);
    const events = first.endpoints['event-service']!;

    // 20,000 accepted, a few requests at a time.
    const ids = Array.from({ length: TOTAL }, (_, i) => `drain-${i}`);
    let accepted = 0;
    const send = async (batch: string[]): Promise<void> => {
      const res = await fetch(`${events}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          events: batch.map((id) => ({ type: 'page_view', id, payload: { userId: `u-${id}`, url: '/drain', referrer: null, country: 'SE', viewedAt: 1763890000000 } })),
        }),
      });
      const body = (await res.json()) as { accepted: number };
      expect(res.status).toBe(200);
      accepted += body.accepted;
    };
    for (let i = 0; i < TOTAL; i += BATCH * 4) {
      await Promise.all([0, 1, 2, 3].map((k) => ids.slice(i + k * BATCH, i + (k + 1) * BATCH)).filter((b) => b.length > 0).map(send));
    }
    expect(accepted).toBe(TOTAL);
    // The partition status page runs beside them and shows the example types.
    const grid = await fetch(`${first.endpoints.status!}/`);
    expect(grid.status).toBe(200);
    expect(await grid.text()).toContain('data-type="page_view"');

    killGroup(first.child, 'SIGTERM');
    // Intake stops first: a producer is told to come back later, not refused a connection.
    expect(await waitFor(() => first.output().includes('intake closed'), 60_000)).toBe(true);
    const refused = await fetch(`${events}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ type: 'page_view', id: 'late-1', payload: { userId: 'u', url: '/', referrer: null, country: 'SE', viewedAt: 1 } }] }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await within(first.exited, 600_000, 'graceful stop')).toBe(0);
    expect(first.output()).toMatch(/^drained: \d+ staged$/m);

    const second = await startPlatform(dir);
    try {
      const storage = createStorage({ projectId: PROJECT, apiEndpoint: second.endpoints.gcs! });
      const staged = new Set<string>();
      const [stagedFiles] = await storage.bucket('local-staging').getFiles({ prefix: 'staging/page_view/' });
      for (const f of stagedFiles) for (const r of await readStagedFile(storage.bucket('local-staging'), f.name)) staged.add(r.eventId);
      // A partition closed meanwhile (an hour boundary) holds its events in the data bucket instead.
      const [delivered] = await storage.bucket('local-data').getFiles({ prefix: 'page_view/' });
      for (const f of delivered.filter((d) => d.name.endsWith('.avro'))) for (const id of deliveredIds((await f.download())[0])) staged.add(id);
      expect(ids.filter((id) => !staged.has(id))).toEqual([]);
      expect(staged.has('late-1')).toBe(false);
    } finally {
      killGroup(second.child, 'SIGINT');
      await within(second.exited, 120_000, 'second stop');
    }
  });
});
