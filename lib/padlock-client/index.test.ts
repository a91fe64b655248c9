import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPadlockClient, usersForm } from './index.ts';
import type { LookupRequest, LookupResponse } from './protocol.ts';

describe('usersForm', () => {
  it('sends userIds with one categories list when every user asks the same, else each user with its own', () => {
    expect(usersForm([{ userId: 'a', categories: ['contact'] }, { userId: 'b', categories: ['contact'] }])).toEqual({ userIds: ['a', 'b'], categories: ['contact'] });
    expect(usersForm([{ userId: 'a', categories: ['contact'] }, { userId: 'b', categories: ['contact', 'location'] }])).toEqual({
      users: [{ userId: 'a', categories: ['contact'] }, { userId: 'b', categories: ['contact', 'location'] }],
    });
    expect(usersForm([{ userId: 'a', categories: ['contact'] }, { userId: 'b', categories: ['location'] }])).toHaveProperty('users');
  });
});

describe('the client on the wire', () => {
  const bodies: LookupRequest[] = [];
  let server: http.Server;
  let url = '';

  beforeAll(async () => {
    // Answers every user as absent, and keeps what it was sent.
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as LookupRequest;
        bodies.push(body);
        const ids = 'userIds' in body ? body.userIds : body.users.map((u) => u.userId);
        const answer: LookupResponse = { context: 'etl', users: ids.map((userId) => ({ userId, status: 'absent' })) };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('coalesces a batch whose users ask the same categories, in any order, into the userIds form', async () => {
    const client = createPadlockClient({ url, service: 'etl', secret: 's', cacheTtlMs: 0 });
    bodies.length = 0;
    const results = await client.getKeys([
      { userId: 'a', category: 'location' },
      { userId: 'a', category: 'contact' },
      { userId: 'b', category: 'contact' },
      { userId: 'b', category: 'location' },
    ]);
    expect(results.map((r) => r.status)).toEqual(['absent', 'absent', 'absent', 'absent']);
    expect(bodies).toEqual([{ userIds: ['a', 'b'], categories: ['contact', 'location'] }]);

    bodies.length = 0;
    await client.getKeys([
      { userId: 'a', category: 'contact' },
      { userId: 'b', category: 'location' },
    ]);
    expect(bodies).toEqual([{ users: [{ userId: 'a', categories: ['contact'] }, { userId: 'b', categories: ['location'] }] }]);
  });
});
