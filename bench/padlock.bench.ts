/**
 * Padlock benchmark. Each server runs in its own child process (this file with
 * `--serve`); the load generators run in this one:
 *  1. hot cache: multi-get lookups/s (10 users x 2 categories per request) at full
 *     load (autocannon, after 1 s of warm-up), next to a bare node:http server
 *     answering a fixed JSON body of the same size (and, for reference, one that
 *     also parses the request body: the floor of any JSON API), in rounds that
 *     each start every server afresh (one bare process may run at 15k or 26k
 *     req/s on this machine: medians of fresh processes are what compare), with
 *     each server's CPU time per request (from /proc); then p50/p99 latency of
 *     each at half its load, from an open-loop paced generator in a process of
 *     its own;
 *  2. cold path: lookups through the Bigtable emulator with padlock's cache off.
 *
 * BENCH_PIN=1 pins the servers to core 1 and the load to core 0 (taskset).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startBigtableEmulator } from '../lib/emulators/google.ts';
import { createLogger } from '../lib/logger.ts';
import { authorizationHeader, createPadlockClient, LOOKUP_PATH } from '../lib/padlock-client/index.ts';
import { loadConfig } from '../functions/padlock/config.ts';
import { startPadlock } from '../functions/padlock/server.ts';
import { serviceEntry } from '../functions/padlock/services.ts';
import { pacedLoadInChild, type PacedLoad } from './paced-load.ts';

const SECRET = 'bench-secret-0123456789abcdef';
const SERVICES = JSON.stringify([serviceEntry('etl', SECRET)]);
const DURATION_S = 8;
const ROUNDS = 5;
const ROUND_S = 5;
const WARM_S = 1;
const CONNECTIONS = 32;
const USERS_PER_REQUEST = 10;
const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
/** Servers on core 1, load generators on core 0, if asked for and taskset works. */
const PINNED = process.argv[2] !== '--serve' && process.env.BENCH_PIN === '1' && spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' }).status === 0;

// ---- child: one server ----
if (process.argv[2] === '--serve') {
  // The parent holds our stdin: when it ends (however it dies), so do we.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  const kind = process.argv[3];
  if (kind === 'bare' || kind === 'bare-parse') {
    const size = Number(process.argv[4] ?? 2);
    const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(Math.max(0, size - 10)) }));
    const answer = (res: http.ServerResponse): void => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    };
    const server = http.createServer((req, res) => {
      if (kind === 'bare') {
        req.resume();
        req.on('end', () => answer(res));
        return;
      }
      // The reference for any JSON API: read the body and parse it, nothing else.
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (JSON.parse(Buffer.concat(chunks).toString('utf8')) === null) res.statusCode = 400;
        answer(res);
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(`READY http://127.0.0.1:${(server.address() as { port: number }).port}`));
  } else {
    const env: Record<string, string> = { PADLOCK_PORT: '0', PADLOCK_SERVICES: SERVICES, PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'padlock-bench-')) };
    if (kind === 'bigtable') {
      Object.assign(env, { PADLOCK_STORE: 'bigtable', BIGTABLE_EMULATOR_HOST: process.argv[4] ?? '', GCP_PROJECT: 'bench-project', PADLOCK_CACHE_MAX_USERS: '1', PADLOCK_CACHE_TTL_MS: '1', PADLOCK_STORE_DEADLINE_MS: '5000' });
    }
    const running = await startPadlock(loadConfig(env), { logger: createLogger({ component: 'padlock', level: 'WARNING', sink: (l) => console.error(l) }) });
    console.log(`READY ${running.url}`);
  }
} else {
  await main();
}

interface Served {
  url: string;
  child: ChildProcess;
}

function serve(...args: string[]): Promise<Served> {
  const command = [process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--serve', ...args];
  if (PINNED) command.unshift('taskset', '-c', '1');
  const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /READY (\S+)/.exec(out);
      if (m?.[1]) resolve({ url: m[1], child });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

interface Load {
  rps: number;
  errors: number;
  /** The server's CPU time (user + system) per request, if /proc tells it. */
  cpuUsPerRequest?: number;
}

/** CPU time a process has used (user + system), in µs, from /proc; undefined where there is none. */
function cpuMicros(pid: number | undefined): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_S;
}

/** Full-load throughput: autocannon, closed loop. */
async function cannon(url: string, opts: { body: string; headers: Record<string, string> }, seconds = ROUND_S): Promise<Load & { requests: number }> {
  const result = await autocannon({ url: url + LOOKUP_PATH, method: 'POST', headers: opts.headers, body: opts.body, connections: CONNECTIONS, duration: seconds });
  return { rps: result.requests.average, errors: result.errors + result.non2xx + result.timeouts, requests: result.requests.total };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function row(name: string, rounds: readonly Load[], half: PacedLoad): string {
  const full = rounds.map((r) => r.rps.toFixed(0)).join(', ');
  const errors = rounds.reduce((n, r) => n + r.errors, 0) + half.errors;
  return (
    `${name.padEnd(20)} ${median(rounds.map((r) => r.rps)).toFixed(0).padStart(6)} req/s (rounds: ${full})   ` +
    `half load ${half.rps.toFixed(0)} req/s: p50 ${half.p50Ms.toFixed(2)} ms, p99 ${half.p99Ms.toFixed(2)} ms, max ${half.maxMs.toFixed(1)} ms, queued ${half.queued}   errors ${errors}`
  );
}

async function main(): Promise<void> {
  const headers = { authorization: authorizationHeader('etl', SECRET), 'content-type': 'application/json' };
  const users = Array.from({ length: USERS_PER_REQUEST }, (_, i) => ({ userId: `bench-user-${i}`, categories: ['contact', 'location'] }));
  const body = JSON.stringify({ users });

  // ---- 1. hot cache vs bare node:http ----
  /** A padlock with the users' keychains cached, and bare servers answering as many bytes. */
  const startServers = async (): Promise<{ padlock: Served; bare: Served; bareParse: Served; responseBytes: number }> => {
    const padlock = await serve('padlock');
    const warm = await fetch(padlock.url + LOOKUP_PATH, { method: 'POST', headers, body: JSON.stringify({ users, createIfAbsent: true }) });
    const sample = await (await fetch(padlock.url + LOOKUP_PATH, { method: 'POST', headers, body })).text();
    if (!warm.ok || !sample.includes('"found"')) throw new Error(`padlock warm-up failed: ${warm.status}`);
    const responseBytes = Buffer.byteLength(sample);
    return { padlock, bare: await serve('bare', String(responseBytes)), bareParse: await serve('bare-parse', String(responseBytes)), responseBytes };
  };
  const stopServers = (servers: { padlock: Served; bare: Served; bareParse: Served }): Promise<unknown> =>
    Promise.all([stop(servers.bare.child), stop(servers.bareParse.child), stop(servers.padlock.child)]);

  const bareRounds: Load[] = [];
  const bareParseRounds: Load[] = [];
  const hotRounds: Load[] = [];
  let responseBytes = 0;
  /** A server's steady state (its first second of load, JIT warm-up, is not measured), with its CPU per request. */
  const measure = async ({ url, child }: Served): Promise<Load> => {
    await cannon(url, { body, headers }, WARM_S);
    const cpuBefore = cpuMicros(child.pid);
    const load = await cannon(url, { body, headers });
    const cpuAfter = cpuMicros(child.pid);
    return cpuBefore === undefined || cpuAfter === undefined ? load : { ...load, cpuUsPerRequest: (cpuAfter - cpuBefore) / Math.max(1, load.requests) };
  };
  for (let i = 0; i < ROUNDS; i++) {
    const servers = await startServers();
    responseBytes = servers.responseBytes;
    bareRounds.push(await measure(servers.bare));
    bareParseRounds.push(await measure(servers.bareParse));
    hotRounds.push(await measure(servers.padlock));
    await stopServers(servers);
  }
  const bareRps = median(bareRounds.map((r) => r.rps));
  const bareParseRps = median(bareParseRounds.map((r) => r.rps));
  const hotRps = median(hotRounds.map((r) => r.rps));
  const servers = await startServers();
  // Warm both JITs first: a cold server builds a queue that the paced run then measures.
  await cannon(servers.bare.url, { body, headers }, WARM_S);
  await cannon(servers.padlock.url, { body, headers }, WARM_S);
  const paced = (url: string, rps: number): Promise<PacedLoad> =>
    pacedLoadInChild({ url, path: LOOKUP_PATH, headers, body, rate: Math.round(rps / 2), connections: CONNECTIONS, durationS: DURATION_S });
  const bareHalf = await paced(servers.bare.url, bareRps);
  const hotHalf = await paced(servers.padlock.url, hotRps);
  await stopServers(servers);

  console.log(
    `multi-get of ${USERS_PER_REQUEST} users x 2 categories, response ${responseBytes} bytes, ${CONNECTIONS} connections; ` +
      `${ROUNDS} rounds of ${ROUND_S} s at full load (fresh servers each, ${WARM_S} s warm-up), then ${DURATION_S} s paced at half load` +
      (PINNED ? '; servers pinned to core 1, load to core 0' : ''),
  );
  console.log(row('bare node:http', bareRounds, bareHalf));
  console.log(row('padlock (hot cache)', hotRounds, hotHalf));
  console.log(`${'bare + JSON.parse'.padEnd(20)} ${bareParseRps.toFixed(0).padStart(6)} req/s (rounds: ${bareParseRounds.map((r) => r.rps.toFixed(0)).join(', ')}): reads and parses the body, answers the fixed body`);
  const ratio = hotRps / bareRps;
  console.log(`ratio padlock / bare (medians): ${(ratio * 100).toFixed(0)}% (target >= 60%): ${ratio >= 0.6 ? 'OK' : 'BELOW TARGET'}`);
  console.log(`for reference: bare + JSON.parse / bare ${((bareParseRps / bareRps) * 100).toFixed(0)}%, padlock / bare + JSON.parse ${((hotRps / bareParseRps) * 100).toFixed(0)}%`);
  const cpu = (rounds: readonly Load[]): number | undefined => (rounds.every((r) => r.cpuUsPerRequest !== undefined) ? median(rounds.map((r) => r.cpuUsPerRequest!)) : undefined);
  const [bareCpu, bareParseCpu, hotCpu] = [cpu(bareRounds), cpu(bareParseRounds), cpu(hotRounds)];
  if (bareCpu !== undefined && bareParseCpu !== undefined && hotCpu !== undefined) {
    console.log(
      `server CPU per request (medians): bare ${bareCpu.toFixed(1)} µs, bare + JSON.parse ${bareParseCpu.toFixed(1)} µs, padlock ${hotCpu.toFixed(1)} µs; ` +
        `requests per CPU-second, padlock / bare: ${((bareCpu / hotCpu) * 100).toFixed(0)}%`,
    );
  }
  console.log(`keys/s (hot): ${(hotRps * USERS_PER_REQUEST * 2).toFixed(0)}; p99 at half load ${hotHalf.p99Ms.toFixed(2)} ms (target < 5 ms): ${hotHalf.p99Ms < 5 ? 'OK' : 'ABOVE TARGET'}`);

  // ---- 2. cold path through the Bigtable emulator ----
  const emulator = await startBigtableEmulator();
  try {
    const cold = await serve('bigtable', emulator.host);
    const client = createPadlockClient({ url: cold.url, service: 'etl', secret: SECRET, cacheTtlMs: 0, deadlineMs: 10_000 });
    const pool = 500;
    const t0 = performance.now();
    for (let i = 0; i < pool; i += 20) {
      await client.getKeys(Array.from({ length: 20 }, (_, j) => ({ userId: `cold-user-${i + j}`, category: 'contact' })), { createIfAbsent: true });
    }
    console.log(`created ${pool} keychains through the Bigtable emulator in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const latencies: number[] = [];
    let usersRead = 0;
    const end = Date.now() + DURATION_S * 1000;
    const worker = async (w: number): Promise<void> => {
      let n = w;
      while (Date.now() < end) {
        const items = Array.from({ length: USERS_PER_REQUEST }, () => ({ userId: `cold-user-${(n++ * 7919) % pool}`, category: 'contact' }));
        const t = performance.now();
        const res = await client.getKeys(items);
        latencies.push(performance.now() - t);
        usersRead += res.filter((r) => r.status === 'found').length;
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w * 1000)));
    const seconds = (Date.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(1);
    console.log(
      `padlock (cold, Bigtable emulator): ${(latencies.length / seconds).toFixed(0)} req/s, ${(usersRead / seconds).toFixed(0)} users/s ` +
        `(${USERS_PER_REQUEST} users per multi-get, 8 concurrent), p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms; ` +
        `vs ~2000 point reads/s measured for the emulator: ${(usersRead / seconds / 2000).toFixed(2)}x`,
    );
    await stop(cold.child);
  } finally {
    await emulator.stop();
  }
}
