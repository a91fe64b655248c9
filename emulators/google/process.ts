/**
 * Runs an emulator as a child process that cannot outlive us.
 *
 * The emulator is started under a tiny `sh` watchdog that holds our pipe as its
 * stdin: when we stop it, or when this process dies in any way (Ctrl-C,
 * SIGKILL, a crashed test run), the pipe closes, the watchdog wakes up and
 * kills the emulator process itself (the JVM, not a wrapper).
 *
 * The watchdog runs in a session (and process group) of its own: a terminal's
 * Ctrl-C sends SIGINT to its whole foreground group, which would kill the
 * watchdog before it could act, while the emulator (started in the background
 * by a non-interactive shell) ignores SIGINT and would outlive us. Out of that
 * group, only we stop the emulator, and only after we are done with it (a
 * graceful stop drains through it first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { AppError } from '../../lib/errors.ts';

const WATCHDOG = [
  '"$@" </dev/null >"$EMULATOR_LOG" 2>&1 & child=$!',
  'echo "$child"',
  'cat >/dev/null',
  'kill "$child" 2>/dev/null',
  'i=0; while kill -0 "$child" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
  'kill -9 "$child" 2>/dev/null',
  'wait "$child" 2>/dev/null',
  'exit 0',
].join('\n');

export interface WatchedProcess {
  /** PID of the emulator itself (not the watchdog). */
  pid: number;
  /** Stops the emulator and resolves once it is gone. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  command: string;
  args: string[];
  /** Where the emulator's own output goes (a file path, or /dev/null). */
  logFile?: string;
  /** Resolves true once the emulator answers. */
  ready: () => Promise<boolean>;
  name: string;
  timeoutMs?: number;
}

export async function startWatchedProcess(opts: StartOptions): Promise<WatchedProcess> {
  const watchdog: ChildProcess = spawn('sh', ['-c', WATCHDOG, 'watchdog', opts.command, ...opts.args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, EMULATOR_LOG: opts.logFile ?? '/dev/null' },
    detached: true,
  });
  const pid = await new Promise<number>((resolve, reject) => {
    let buf = '';
    watchdog.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const line = buf.split('\n')[0];
      if (buf.includes('\n') && line !== undefined) resolve(Number(line.trim()));
    });
    watchdog.once('error', reject);
    watchdog.once('exit', (code) => reject(new Error(`${opts.name} watchdog exited with ${code}`)));
  });
  // From here on the emulator must not keep our event loop alive (stop() re-refs it).
  setRef(watchdog, false);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      if (watchdog.exitCode !== null || watchdog.signalCode !== null) return resolve();
      setRef(watchdog, true);
      watchdog.once('exit', () => resolve());
      watchdog.stdin!.end();
    });
    return stopped;
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (!isAlive(pid)) break;
    if (await opts.ready().catch(() => false)) return { pid, stop };
    await sleep(100);
  }
  await stop();
  throw new AppError('UNAVAILABLE', {
    message: `${opts.name} did not start within ${opts.timeoutMs ?? 30_000} ms (see ${opts.logFile ?? 'its output'})`,
  });
}

type Refable = { ref?: () => void; unref?: () => void };

function setRef(child: ChildProcess, on: boolean): void {
  for (const handle of [child, child.stdin, child.stdout] as unknown as Refable[]) {
    if (on) handle.ref?.();
    else handle.unref?.();
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true when something accepts TCP connections on host:port. */
export function tcpAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Resolves true when GET url answers 200. */
export async function httpAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** A port free on 127.0.0.1 right now (0 → let the OS choose). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
