/**
 * The client across padlock's two deployment groups (padlock and padlock-mirror)
 * sharing one Bigtable store: a group that is down or failing is skipped, a 4xx
 * is an answer, and the groups serve the same keys.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../emulators/google/process.ts';
import { uniqueName } from '../support/names.ts';
import type { RunningPadlock } from '../../functions/padlock/server.ts';
import { clientFor, makeTarget, rejection, type Target } from '../support/padlock/harness.ts';

/** A loopback server answering every request with `status` and `body`, recording the headers it got. */
async function fixedServer(status: number, body: string): Promise<{ url: string; headers: http.IncomingHttpHeaders[]; close(): Promise<void> }> {
  const headers: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    headers.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    headers,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('padlock client across deployment groups', () => {
  let target: Target;
  let primary: RunningPadlock;
  let mirror: RunningPadlock;
  const user = (t: string): string => uniqueName('user-failover', t);

  beforeAll(async () => {
    target = makeTarget('bigtable', { host: inject('bigtableHost'), projectId: inject('projectId'), table: uniqueName('keychains', 'failover') });
    primary = await target.start();
    mirror = await target.start();
  });
  afterAll(async () => {
    await Promise.all([primary.close(), mirror.close()]);
  });

  it('serves the same keys from either group, and fails over when the primary is unreachable', async () => {
    const u = user('same');
    const [viaPrimary] = await clientFor(primary.url, 'etl').getKeys([{ userId: u, category: 'contact' }], { createIfAbsent: true });
    const [viaMirror] = await clientFor(mirror.url, 'etl').getKeys([{ userId: u, category: 'contact' }]);
    expect(viaPrimary?.status).toBe('found');
    expect(viaMirror).toEqual(viaPrimary);

    const dead = `http://127.0.0.1:${await freePort()}`;
    const client = clientFor(dead, 'etl', { url: [dead, mirror.url], deadlineMs: 1000 });
    expect(await client.getKeys([{ userId: u, category: 'contact' }])).toEqual([viaPrimary]);
    // The mirror stays current: the next request does not wait on the dead group first.
    const fresh = user('after-failover');
    const [created] = await client.getKeys([{ userId: fresh, category: 'location' }], { createIfAbsent: true });
    expect(created?.status).toBe('found');
    expect(await clientFor(primary.url, 'etl').getKeys([{ userId: fresh, category: 'location' }])).toEqual([created]);
  });

  it('fails over on a 503 and a 429, not on a 4xx verdict', async () => {
    const u = user('status');
    const unavailable = await fixedServer(503, JSON.stringify({ code: 'KEY_STORE_UNAVAILABLE', message: 'Key store unavailable' }));
    const throttled = await fixedServer(429, 'Rate exceeded.');
    const forbidden = await fixedServer(403, JSON.stringify({ code: 'CONTEXT_FORBIDDEN', message: 'no' }));
    try {
      for (const failing of [unavailable, throttled]) {
        const [r] = await clientFor(failing.url, 'etl', { url: [failing.url, mirror.url] }).getKeys([{ userId: u, category: 'contact' }], { createIfAbsent: true });
        expect(r?.status).toBe('found');
        expect(failing.headers.length).toBe(1);
      }
      const err = await rejection(clientFor(forbidden.url, 'etl', { url: [forbidden.url, mirror.url] }).getKeys([{ userId: u, category: 'contact' }]));
      expect(err.code).toBe('CONTEXT_FORBIDDEN');
    } finally {
      await Promise.all([unavailable.close(), throttled.close(), forbidden.close()]);
    }
  });

  it('reports UNAVAILABLE naming every group when all fail', async () => {
    const deadA = `http://127.0.0.1:${await freePort()}`;
    const deadB = `http://127.0.0.1:${await freePort()}`;
    const err = await rejection(clientFor(deadA, 'etl', { url: [deadA, deadB], deadlineMs: 500 }).getKeys([{ userId: user('down'), category: 'contact' }]));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('every padlock group failed: 2');
  });

  it('sends an identity token for each group as X-Serverless-Authorization, leaving Authorization to padlock', async () => {
    const first = await fixedServer(503, '{}');
    const audiences: string[] = [];
    try {
      const client = clientFor(first.url, 'etl', {
        url: [first.url, mirror.url],
        idToken: async (audience) => {
          audiences.push(audience);
          return `token-for-${audiences.length}`;
        },
      });
      const [r] = await client.getKeys([{ userId: user('token'), category: 'contact' }], { createIfAbsent: true });
      expect(r?.status).toBe('found');
      expect(audiences).toEqual([first.url, mirror.url]);
      expect(first.headers[0]?.['x-serverless-authorization']).toBe('Bearer token-for-1');
      expect(first.headers[0]?.authorization).toMatch(/^Basic /);

      const failing = clientFor(mirror.url, 'etl', {
        idToken: () => Promise.reject(new Error('metadata server unreachable')),
      });
      const err = await rejection(failing.getKeys([{ userId: user('no-token'), category: 'contact' }]));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.details?.reason).toBe('id-token');
    } finally {
      await first.close();
    }
  });
});
