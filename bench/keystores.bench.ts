/**
 * `npm run bench keystores`: padlock on its key stores, measured in the same run.
 *  1. cold cache: lookups/s (10 users x 2 categories per request, every user
 *     asked once, from a padlock instance started after the users were created,
 *     so each request reads the store and unwraps) on the PostgreSQL store (a
 *     real PostgreSQL 15 server on 127.0.0.1, from test/support/setup/postgres.ts) vs
 *     the embedded store (the baseline), with this process's CPU µs per request
 *     (padlock and its callers share it);
 *  2. the darkload's cost on create latency: POST /v1/keychains p50/p99 on
 *     primary=postgres alone vs primary=postgres with darkload=embedded.
 * Medians of ROUNDS rounds, stores taking turns to go first.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../lib/logger.ts';
import { loadConfig } from '../functions/padlock/config.ts';
import { startPadlock, type RunningPadlock } from '../functions/padlock/server.ts';
import { serviceEntry } from '../functions/padlock/services.ts';
import { startTestPostgres } from '../test/support/setup/postgres.ts';

const SECRET = 'bench-secret-0123456789abcdef';
const SERVICES = JSON.stringify([serviceEntry('etl', SECRET, { admin: true })]);
const AUTH = `Basic ${Buffer.from(`etl:${SECRET}`).toString('base64')}`;
const ROUNDS = 5;
const REQUESTS = 200;
const USERS_PER_REQUEST = 10;
const CONCURRENCY = 8;
const CREATES = 300;
const logger = createLogger({ component: 'bench', sink: () => {} });

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function post(url: string, p: string, body: unknown): Promise<void> {
  const res = await fetch(url + p, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`${p}: HTTP ${res.status}`);
}

/** Runs `jobs` with CONCURRENCY at once. */
async function pool<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < jobs.length) out.push(await jobs[next++]!());
    }),
  );
  return out;
}

const pg = await startTestPostgres();
const start = (env: Record<string, string>): Promise<RunningPadlock> =>
  startPadlock(loadConfig({ PADLOCK_PORT: '0', PADLOCK_SERVICES: SERVICES, ...pg.env, ...env }), { logger });

/** One cold-cache round on `store`: requests/s and CPU µs per request. */
async function coldRound(store: 'embedded' | 'postgres'): Promise<{ rps: number; cpuUs: number }> {
  const env = { PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'bench-keystores-')), PADLOCK_STORE: store, PADLOCK_POSTGRES_SCHEMA: `bench_${randomBytes(4).toString('hex')}` };
  const batches = Array.from({ length: REQUESTS }, (_, r) => Array.from({ length: USERS_PER_REQUEST }, (_, u) => `user-${r}-${u}`));
  const seeding = await start(env);
  await pool(batches.map((userIds) => () => post(seeding.url, '/v1/keys/lookup', { userIds, categories: ['contact', 'location'], createIfAbsent: true })));
  await seeding.close();
  const padlock = await start(env);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await pool(batches.map((userIds) => () => post(padlock.url, '/v1/keys/lookup', { userIds, categories: ['contact', 'location'] })));
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  await padlock.close();
  return { rps: REQUESTS / seconds, cpuUs: (used.user + used.system) / REQUESTS };
}

/** One round of creates: latencies in ms. */
async function createRound(darkload: boolean): Promise<number[]> {
  const env = {
    PADLOCK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'bench-keystores-')),
    PADLOCK_STORE: 'postgres',
    PADLOCK_POSTGRES_SCHEMA: `bench_${randomBytes(4).toString('hex')}`,
    ...(darkload ? { PADLOCK_DARKLOAD_STORE: 'embedded' } : {}),
  };
  const padlock = await start(env);
  const latencies = await pool(
    Array.from({ length: CREATES }, (_, i) => async () => {
      const t0 = performance.now();
      await post(padlock.url, '/v1/keychains', { userId: `create-${i}` });
      return performance.now() - t0;
    }),
  );
  await padlock.close();
  return latencies;
}

try {
  const cold = { embedded: [] as { rps: number; cpuUs: number }[], postgres: [] as { rps: number; cpuUs: number }[] };
  const creates = { alone: [] as number[][], darkload: [] as number[][] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? (['embedded', 'postgres'] as const) : (['postgres', 'embedded'] as const);
    for (const store of order) cold[store].push(await coldRound(store));
    for (const d of round % 2 === 0 ? [false, true] : [true, false]) creates[d ? 'darkload' : 'alone'].push(await createRound(d));
  }
  const line = (name: string, rs: { rps: number; cpuUs: number }[]): string =>
    `${name.padEnd(9)} ${median(rs.map((r) => r.rps)).toFixed(0).padStart(6)} req/s (${(median(rs.map((r) => r.rps)) * USERS_PER_REQUEST).toFixed(0)} users/s), ${median(rs.map((r) => r.cpuUs)).toFixed(0)} µs CPU/request`;
  console.log(`cold cache, ${USERS_PER_REQUEST} users x 2 categories per request, ${CONCURRENCY} at once, medians of ${ROUNDS} rounds:`);
  console.log(line('embedded', cold.embedded));
  console.log(line('postgres', cold.postgres));
  console.log(`postgres / embedded: ${(median(cold.postgres.map((r) => r.rps)) / median(cold.embedded.map((r) => r.rps))).toFixed(2)}`);
  const lat = (name: string, rounds: number[][]): string =>
    `${name.padEnd(28)} p50 ${median(rounds.map((r) => percentile(r, 0.5))).toFixed(2)} ms, p99 ${median(rounds.map((r) => percentile(r, 0.99))).toFixed(2)} ms`;
  console.log(`create latency (POST /v1/keychains, ${CREATES} new users, ${CONCURRENCY} at once), medians of ${ROUNDS} rounds:`);
  console.log(lat('postgres', creates.alone));
  console.log(lat('postgres + darkload embedded', creates.darkload));
} finally {
  await pg.stop();
}
