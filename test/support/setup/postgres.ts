/**
 * A real PostgreSQL server for the tests that need one (not in the global
 * setup: only a few files do). Debian's PostgreSQL 15 binaries (`.ci/run`
 * installs the `postgresql` package): `initdb` into a temporary folder,
 * `postgres` on a free 127.0.0.1 port with its socket in that folder, trust
 * authentication on loopback only. PostgreSQL refuses to run as root; as root
 * the server runs as the `postgres` system user (`setpriv`, which execs, so
 * the watched pid is the postmaster itself). `stop()` shuts it down fast and
 * removes the folder; `kill()`/`restart()` are for outage tests.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { freePort, isAlive, sleep, startWatchedProcess, type WatchedProcess } from '../../../emulators/google/process.ts';

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  database: string;
  /** PADLOCK_POSTGRES_* variables that point padlock at this server (schema left to the caller). */
  env: Record<string, string>;
  /** Stops the server (fast shutdown); the data folder stays, so `restart()` brings the same data back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data folder. */
  restart(): Promise<void>;
  /** Stops the server and removes its data folder. */
  stop(): Promise<void>;
}

const USER = 'padlock';
const DATABASE = 'postgres';

export async function startTestPostgres(): Promise<TestPostgres> {
  if (!existsSync(path.join(POSTGRES_BIN, 'postgres'))) {
    throw new Error(`PostgreSQL 15 is not installed (no ${POSTGRES_BIN}/postgres): apt-get install -y postgresql, as .ci/run does`);
  }
  const root = userInfo().uid === 0;
  const dir = mkdtempSync(path.join(tmpdir(), 'padlock-pg-'));
  const data = path.join(dir, 'data');
  const asOwner = (bin: string): [string, string[]] =>
    root ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', path.join(POSTGRES_BIN, bin)]] : [path.join(POSTGRES_BIN, bin), []];
  if (root) chownSync(dir, uidOf('postgres'), gidOf('postgres'));
  const [initdb, initdbPrefix] = asOwner('initdb');
  execFileSync(initdb, [...initdbPrefix, '-D', data, '-U', USER, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { stdio: 'ignore' });
  const port = await freePort();

  let server: WatchedProcess | undefined;
  const start = async (): Promise<void> => {
    const [command, prefix] = asOwner('postgres');
    server = await startWatchedProcess({
      name: 'PostgreSQL',
      command,
      args: [...prefix, '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'max_connections=200'],
      logFile: path.join(dir, 'postgres.log'),
      ready: () => acceptsConnections(port),
      timeoutMs: 30_000,
    });
  };
  const kill = async (): Promise<void> => {
    const running = server;
    if (running === undefined) return;
    server = undefined;
    // SIGINT is PostgreSQL's fast shutdown: sessions are cut, the postmaster exits cleanly.
    if (isAlive(running.pid)) process.kill(running.pid, 'SIGINT');
    for (let i = 0; i < 100 && isAlive(running.pid); i++) await sleep(50);
    await running.stop();
  };
  await start();
  return {
    host: '127.0.0.1',
    port,
    user: USER,
    database: DATABASE,
    env: { PADLOCK_POSTGRES_HOST: '127.0.0.1', PADLOCK_POSTGRES_PORT: String(port), PADLOCK_POSTGRES_USER: USER, PADLOCK_POSTGRES_DATABASE: DATABASE },
    kill,
    restart: start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `pg_isready`: true once the server accepts sessions (not merely TCP while it is still starting up). */
function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(path.join(POSTGRES_BIN, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', USER, '-d', DATABASE, '-t', '1'], (err) => resolve(err === null));
  });
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
