/**
 * GCS emulator benchmark (`npm run bench gcs-emulator`):
 *  1. small-object uploads/s (JSON API multipart, 64 concurrent connections),
 *     memory and directory mode, next to a bare node:http server that only
 *     consumes the body and answers 200;
 *  2. peak RSS growth of the emulator process while a 512 MiB object is
 *     uploaded (one streaming resumable request) and downloaded in directory
 *     mode, next to the same bare server receiving and sending 512 MiB.
 * Servers run in their own processes; this process is the client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const BIG = 512 * MiB;
const DURATION_S = 8;
const CONNECTIONS = 64;

const BASELINE = `
const http = require('node:http');
const block = Buffer.alloc(1024 * 1024, 7);
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    const total = Number(new URL(req.url, 'http://x').searchParams.get('bytes') || 0);
    res.writeHead(200, { 'Content-Length': total });
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(block.length, left);
        left -= n;
        if (!res.write(n === block.length ? block : block.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  req.on('data', () => {});
  req.on('end', () => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{}'); });
});
server.listen(0, '127.0.0.1', () => console.log('baseline: http://127.0.0.1:' + server.address().port));
`;

interface Server {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

function startServer(args: string[], marker: RegExp): Promise<Server> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = marker.exec(out);
      if (m !== null) {
        resolve({
          url: m[1]!,
          child,
          stop: () =>
            new Promise<void>((r) => {
              child.once('exit', () => r());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited early (${code}): ${out}`)));
  });
}

const startBaseline = (): Promise<Server> => startServer(['-e', BASELINE], /baseline: (http:\/\/\S+)/);
const startEmulator = (dir?: string): Promise<Server> =>
  startServer(['--import', 'tsx', 'emulators/gcs/main.ts', '--port', '0', ...(dir === undefined ? [] : ['--dir', dir])], /gcs: (http:\/\/\S+)/);

/** Peak and current resident set size of a process, in bytes (Linux). */
function rss(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

async function uploadsPerSecond(url: string): Promise<number> {
  await fetch(`${url}/storage/v1/b?project=bench`, { method: 'POST', body: JSON.stringify({ name: 'bench' }) });
  const boundary = 'bench-boundary';
  const payload = randomBytes(1024);
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n{"contentType":"application/octet-stream"}\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n`),
    payload,
    Buffer.from(`\r\n--${boundary}--`),
  ]);
  let n = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': `multipart/related; boundary=${boundary}` },
        body,
        setupRequest: (req) => ({ ...req, path: `/upload/storage/v1/b/bench/o?uploadType=multipart&name=small%2F${n++}` }),
      },
    ],
  });
  const ok = result['2xx'];
  if (result.non2xx > 0 || result.errors > 0) console.log(`  (non-2xx: ${result.non2xx}, errors: ${result.errors})`);
  return ok / DURATION_S;
}

function streamOf(size: number): Readable {
  const block = randomBytes(MiB);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(MiB, left);
      left -= n;
      this.push(n === MiB ? block : block.subarray(0, n));
    },
  });
}

function request(url: string, method: string, headers: Record<string, string>, body?: Readable): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else body.pipe(req);
  });
}

/** Uploads then downloads BIG bytes; returns the server's peak RSS growth. */
async function bigObjectRssGrowth(server: Server, emulator: boolean): Promise<number> {
  const pid = server.child.pid!;
  const before = rss(pid).now;
  if (emulator) {
    await fetch(`${server.url}/storage/v1/b?project=bench`, { method: 'POST', body: JSON.stringify({ name: 'big' }) });
    const start = await request(`${server.url}/upload/storage/v1/b/big/o?uploadType=resumable&name=big.bin`, 'POST', { 'Content-Type': 'application/json' });
    const session = String(start.headers.location);
    const up = await request(session, 'PUT', { 'Content-Range': `bytes 0-${BIG - 1}/${BIG}`, 'Content-Length': String(BIG) }, streamOf(BIG));
    if (up.status !== 200) throw new Error(`upload failed: ${up.status}`);
    const down = await request(`${server.url}/storage/v1/b/big/o/big.bin?alt=media`, 'GET', {});
    if (down.bytes !== BIG) throw new Error(`download returned ${down.bytes} bytes`);
  } else {
    await request(`${server.url}/upload`, 'PUT', { 'Content-Length': String(BIG) }, streamOf(BIG));
    const down = await request(`${server.url}/download?bytes=${BIG}`, 'GET', {});
    if (down.bytes !== BIG) throw new Error(`baseline download returned ${down.bytes} bytes`);
  }
  return rss(pid).peak - before;
}

const fmt = (n: number): string => n.toFixed(0);
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gcs-bench-'));
  try {
    console.log(`small-object uploads (1 KiB multipart, ${CONNECTIONS} connections, ${DURATION_S} s each)`);
    const baseline = await startBaseline();
    const base = await uploadsPerSecond(baseline.url);
    await baseline.stop();
    console.log(`  baseline bare node:http (consume body, 200): ${fmt(base)} req/s`);
    const memory = await startEmulator();
    const mem = await uploadsPerSecond(memory.url);
    await memory.stop();
    console.log(`  emulator, memory mode:     ${fmt(mem)} uploads/s  (${((mem / base) * 100).toFixed(0)}% of baseline; target >= 2000)`);
    const disk = await startEmulator(path.join(dir, 'small'));
    const dsk = await uploadsPerSecond(disk.url);
    await disk.stop();
    console.log(`  emulator, directory mode:  ${fmt(dsk)} uploads/s  (${((dsk / base) * 100).toFixed(0)}% of baseline)`);

    console.log(`large object: ${mib(BIG)} streamed up (one resumable request) and down`);
    const baseline2 = await startBaseline();
    const baseGrowth = await bigObjectRssGrowth(baseline2, false);
    await baseline2.stop();
    console.log(`  baseline bare node:http peak RSS growth: ${mib(baseGrowth)}`);
    const big = await startEmulator(path.join(dir, 'big'));
    const growth = await bigObjectRssGrowth(big, true);
    await big.stop();
    console.log(`  emulator, directory mode peak RSS growth: ${mib(growth)}  (${(growth / BIG * 100).toFixed(1)}% of the object; baseline ${mib(baseGrowth)})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
