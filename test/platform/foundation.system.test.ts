import { spawn, execFileSync } from 'node:child_process';
import { inject, describe, expect, it, afterAll, afterEach } from 'vitest';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { freePort, isAlive, sleep } from '../../emulators/google/process.ts';
import { uniqueName } from '../support/names.ts';

const tsx = ['--import', 'tsx'];

describe('Pub/Sub through lib/ client factory', () => {
  const pubsub = createPubSub({ projectId: inject('projectId'), emulatorHost: inject('pubsubHost') });
  afterAll(() => pubsub.close());

  it('publishes and pulls a message on the real emulator', async () => {
    const [topic] = await pubsub.createTopic(uniqueName('foundation', 'topic'));
    const [sub] = await topic.createSubscription(uniqueName('foundation', 'sub'));
    const id = await topic.publishMessage({ data: Buffer.from('hello'), attributes: { k: 'v' } });
    expect(id).toMatch(/\d+/);
    const received = await new Promise<{ data: string; k: string | undefined }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 20 s')), 20_000);
      sub.on('message', (m) => {
        m.ack();
        clearTimeout(timer);
        resolve({ data: m.data.toString(), k: m.attributes.k });
      });
    });
    await sub.close();
    expect(received).toEqual({ data: 'hello', k: 'v' });
  });
});

/** PIDs of pubsub emulator JVMs listening on `port`. */
function emulatorPids(port: number): number[] {
  try {
    return execFileSync('pgrep', ['-f', `^java .*cloud-pubsub-emulator.*--port=${port}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(100);
  }
  return cond();
}

const started: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  // A failed assertion must not leave a platform (and its emulators) running.
  for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts `npm start`'s entry point, resolves once it printed the pubsub endpoint. */
function startPlatform(env: Record<string, string>) {
  const child = spawn(process.execPath, [...tsx, 'bin/start.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, output: () => out, errors: () => err };
}

describe('npm start', () => {
  it('prints endpoints and leaves no emulator behind on SIGINT', async () => {
    const port = await freePort();
    const dir = `/tmp/${uniqueName('start', 'sigint')}`;
    const p = startPlatform({ PUBSUB_PORT: String(port), DATA_DIR: dir, GCS_PORT: '0', BIGQUERY_PORT: '0', EVENT_SERVICE_PORT: '0', COMPOSER_PORT: '0', PADLOCK_PORT: '0', STATUS_PORT: '0' });
    expect(await waitFor(() => p.output().includes('credentials: '), 90_000)).toBe(true);
    expect(p.output()).toContain(`pubsub: http://127.0.0.1:${port}`);
    const endpoints = Object.fromEntries(
      [...p.output().matchAll(/^([a-z-]+): (http:\/\/127\.0\.0\.1:\d+)$/gm)].map((m) => [m[1], m[2]]),
    );
    expect(Object.keys(endpoints).sort()).toEqual(['bigquery', 'composer', 'event-service', 'gcs', 'padlock', 'pubsub', 'status']);
    expect(emulatorPids(port).length).toBe(1);

    // The example types are provisioned and the event service accepts one of them.
    const res = await fetch(`${endpoints['event-service']}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ type: 'page_view', payload: { userId: 'u1', url: '/a', referrer: null, country: 'SE', viewedAt: 1 } }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(1);

    p.child.kill('SIGINT');
    expect(await p.exited).toBe(0);
    expect(await waitFor(() => emulatorPids(port).length === 0, 10_000)).toBe(true);
  });

  it('leaves no emulator behind when killed with SIGKILL', async () => {
    const port = await freePort();
    const p = startPlatform({ PUBSUB_PORT: String(port), DATA_DIR: `/tmp/${uniqueName('start', 'kill')}`, GCS_PORT: '0', BIGQUERY_PORT: '0', EVENT_SERVICE_PORT: '0', COMPOSER_PORT: '0', PADLOCK_PORT: '0', STATUS_PORT: '0' });
    expect(await waitFor(() => p.output().includes('credentials: '), 90_000)).toBe(true);
    const [pid] = emulatorPids(port);
    expect(pid).toBeDefined();
    p.child.kill('SIGKILL');
    await p.exited;
    expect(await waitFor(() => !isAlive(pid!), 10_000)).toBe(true);
  });

  it.each([
    [{ PUBSUB_PORT: 'eighty' }, 'PUBSUB_PORT'],
    [{ GCS_PORT: '99999' }, 'GCS_PORT'],
    [{ GCP_PROJECT: 'Bad Project' }, 'GCP_PROJECT'],
  ])('exits 1 on bad configuration %j, naming the variable', async (env, variable) => {
    const p = startPlatform(env);
    expect(await p.exited).toBe(1);
    expect(p.errors()).toContain(`${variable}:`);
  });
});
