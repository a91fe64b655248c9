/**
 * An open-loop load generator for latency at a fixed rate: requests leave at
 * evenly spaced times over keep-alive connections (one request in flight per
 * connection, raw sockets, prebuilt request bytes), whatever the server's pace.
 *
 * autocannon's rate mode can't be used for this: each connection sends its
 * per-second quota back to back and then idles, so "half load" is full load for
 * half of every second, and its latencies have millisecond resolution.
 *
 * A request due while every connection is busy waits, and its latency counts
 * from when it was due (no coordinated omission); `queued` says how many did.
 * The first `WARMUP_MS` run at the same pace unmeasured: the generator's own JIT
 * is cold then, and a fresh generator falls behind for a few hundred ms.
 *
 * `pacedLoadInChild` runs it in a process of its own (this file as a script), so
 * that the caller's heap and garbage collections don't show up as latency.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export interface PacedLoad {
  /** Requests per second actually completed. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests that found every connection busy when due. */
  queued: number;
  /** Non-2xx answers and socket errors. */
  errors: number;
}

export interface PacedOptions {
  url: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  rate: number;
  connections: number;
  durationS: number;
}

const WARMUP_MS = 1000;

interface Connection {
  socket: net.Socket;
  buffered: Buffer;
  /** When the in-flight request was due, or -1 when idle. */
  dueAt: number;
}

export async function pacedLoad(opts: PacedOptions): Promise<PacedLoad> {
  const { hostname, port } = new URL(opts.url);
  const body = Buffer.from(opts.body);
  const head = [`POST ${opts.path} HTTP/1.1`, `host: ${hostname}:${port}`, `content-length: ${body.length}`, ...Object.entries(opts.headers).map(([k, v]) => `${k}: ${v}`)];
  const request = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body]);

  const latencies: number[] = [];
  let measureFrom = Infinity;
  const idle: Connection[] = [];
  const waiting: number[] = [];
  let errors = 0;
  let queued = 0;

  const send = (c: Connection, dueAt: number): void => {
    c.dueAt = dueAt;
    c.socket.write(request);
  };
  const finished = (c: Connection, ok: boolean): void => {
    if (c.dueAt >= measureFrom) {
      latencies.push(performance.now() - c.dueAt);
      if (!ok) errors++;
    }
    c.dueAt = -1;
    const next = waiting.shift();
    if (next !== undefined) send(c, next);
    else idle.push(c);
  };

  const connections = await Promise.all(
    Array.from(
      { length: opts.connections },
      () =>
        new Promise<Connection>((resolve, reject) => {
          const socket = net.connect(Number(port), hostname, () => resolve(c));
          const c: Connection = { socket, buffered: Buffer.alloc(0), dueAt: -1 };
          socket.setNoDelay(true);
          socket.once('error', reject);
          socket.on('error', () => errors++);
          socket.on('data', (chunk: Buffer) => {
            c.buffered = c.buffered.length === 0 ? chunk : Buffer.concat([c.buffered, chunk]);
            const response = completeResponse(c.buffered);
            if (response === undefined) return;
            c.buffered = c.buffered.subarray(response.length);
            finished(c, response.status >= 200 && response.status < 300);
          });
        }),
    ),
  );
  idle.push(...connections);

  const start = performance.now();
  measureFrom = start + WARMUP_MS;
  const end = measureFrom + opts.durationS * 1000;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      if (now >= end) return resolve();
      const due = Math.floor(((now - start) * opts.rate) / 1000);
      for (; sent < due; sent++) {
        const dueAt = start + (sent * 1000) / opts.rate;
        const c = idle.pop();
        if (c !== undefined) send(c, dueAt);
        else {
          if (dueAt >= measureFrom) queued++;
          waiting.push(dueAt);
        }
      }
      setImmediate(tick);
    };
    tick();
  });
  const seconds = (performance.now() - measureFrom) / 1000;
  for (const c of connections) c.socket.destroy();

  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { rps: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: latencies.at(-1) ?? 0, queued, errors };
}

/** The status and length of the first whole response in `buffered` (content-length or chunked framing), if it has arrived. */
function completeResponse(buffered: Buffer): { status: number; length: number } | undefined {
  const headEnd = buffered.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const head = buffered.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const lengthMatch = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (lengthMatch !== null) {
    const length = headEnd + 4 + Number(lengthMatch[1]);
    return buffered.length < length ? undefined : { status, length };
  }
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) throw new Error('paced load: response with neither content-length nor chunked encoding');
  // Chunks: <hex size>\r\n<data>\r\n ... 0\r\n\r\n (no trailers).
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = buffered.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(buffered.toString('latin1', at, lineEnd), 16);
    if (size === 0) return buffered.length < lineEnd + 4 ? undefined : { status, length: lineEnd + 4 };
    at = lineEnd + 2 + size + 2;
    if (buffered.length < at) return undefined;
  }
}

/** `pacedLoad` in a fresh child process. */
export function pacedLoadInChild(opts: PacedOptions): Promise<PacedLoad> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as PacedLoad) : reject(new Error(`paced load exited with ${code}`))));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await pacedLoad(JSON.parse(process.argv[2] ?? '{}') as PacedOptions);
  process.stdout.write(JSON.stringify(result));
}
