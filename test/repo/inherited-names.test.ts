/**
 * Lookups keyed by user input find only what was configured or stored, never a
 * property every object inherits: `constructor`, `__proto__`, `toString`,
 * `hasOwnProperty` are refused (or unknown) wherever a token, type name,
 * semantic type or category is looked up (issue 23, finding 1).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createComposerApp } from '../../composer/api.ts';
import { Composer } from '../../composer/composer.ts';
import { loadConfig } from '../../composer/config.ts';
import { validateSpec } from '../../composer/spec.ts';
import { exportTerraform } from '../../composer/terraform-export.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { defaultCatalogue, extendCatalogue } from '../../lib/semantic-types.ts';
import { createPadlockClient } from '../../lib/padlock-client/index.ts';
import { sampleRecord } from '../fixtures/registry-records.ts';

const INHERITED = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'] as const;

async function listen(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('composer bearer tokens', () => {
  let api: { url: string; close: () => Promise<void> };

  beforeAll(async () => {
    const registry = new MemoryRegistryStore();
    await registry.putEventType(sampleRecord('page_view'), 0);
    const composer = new Composer({ registry });
    api = await listen(createComposerApp({ composer, tokens: loadConfig({ COMPOSER_TOKENS: 'tok-web=web' }).tokens }));
  });
  afterAll(() => api.close());

  const get = (path: string, token: string): Promise<Response> => fetch(api.url + path, { headers: { authorization: `Bearer ${token}` } });

  it('accepts the configured token', async () => {
    expect((await get('/v1/event-types/page_view', 'tok-web')).status).toBe(200);
  });

  it.each(INHERITED)('refuses %s as a token (401) on reads and writes', async (token) => {
    for (const path of ['/v1/event-types', '/v1/event-types/page_view', '/v1/event-types/page_view/versions']) {
      const res = await get(path, token);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    const put = await fetch(`${api.url}/v1/event-types/page_view`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(put.status).toBe(401);
  });

  it('configures tokens as a Map: inherited names are not tokens, and a token listed twice is refused', () => {
    const { tokens } = loadConfig({ COMPOSER_TOKENS: 'a=web,b=identity' });
    expect([...tokens]).toEqual([
      ['a', 'web'],
      ['b', 'identity'],
    ]);
    for (const name of INHERITED) expect(tokens.get(name)).toBeUndefined();
    expect(() => loadConfig({ COMPOSER_TOKENS: 'a=web,a=identity' })).toThrow(/COMPOSER_TOKENS.*listed twice/);
  });

  it('a token that happens to be an inherited name works when configured, and only for its team', async () => {
    const registry = new MemoryRegistryStore();
    await registry.putEventType(sampleRecord('page_view'), 0);
    const own = await listen(createComposerApp({ composer: new Composer({ registry }), tokens: loadConfig({ COMPOSER_TOKENS: 'constructor=web' }).tokens }));
    try {
      expect((await fetch(`${own.url}/v1/event-types`, { headers: { authorization: 'Bearer constructor' } })).status).toBe(200);
      expect((await fetch(`${own.url}/v1/event-types`, { headers: { authorization: 'Bearer toString' } })).status).toBe(401);
    } finally {
      await own.close();
    }
  });
});

describe('the semantic-type catalogue', () => {
  it.each(INHERITED)('knows no semantic type %s', (name) => {
    expect(defaultCatalogue[name]).toBeUndefined();
    expect(extendCatalogue({})[name]).toBeUndefined();
  });

  it.each(INHERITED.filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n)))('refuses a field annotated semanticType %s as unknown', async (name) => {
    const result = await validateSpec({
      name: 'inherited_probe',
      owner: 'web',
      description: 'probe',
      priority: 'normal',
      storage: 'gcs',
      partitioning: 'hourly',
      retentionDays: 30,
      schema: { type: 'record', name: 'Probe', fields: [{ name: 'x', type: 'string', semanticType: name }] },
    });
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).toContain(name);
  });
});

describe('registry stores', () => {
  it.each(INHERITED)('find no event type %s', async (name) => {
    const registry = new MemoryRegistryStore();
    await registry.putEventType(sampleRecord('page_view'), 0);
    expect(await registry.getEventType(name)).toBeUndefined();
  });
});

describe('terraform export', () => {
  it('exports an event type named constructor (a valid name) as any other', () => {
    const [file] = exportTerraform([sampleRecord('constructor'), sampleRecord('page_view')]);
    const exported = JSON.parse(file!.content) as { event_types: Record<string, { name: string }> };
    expect(Object.keys(exported.event_types)).toEqual(['constructor', 'page_view']);
    expect(exported.event_types.constructor?.name).toBe('constructor');
  });
});

describe('padlock client', () => {
  it('reads a category from the answer only if the answer holds it', async () => {
    // A lookup answer without the asked categories: each must come back absent, not an inherited function.
    const padlock = await listen((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as { userIds?: string[] };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ context: 'events', users: (body.userIds ?? []).map((userId) => ({ userId, status: 'found', categories: {} })) }));
      });
    });
    try {
      const client = createPadlockClient({ url: padlock.url, service: 'etl', secret: 's', cacheTtlMs: 0 });
      const keys = await client.getKeys(INHERITED.map((category) => ({ userId: 'u1', category })));
      expect(keys).toEqual(INHERITED.map(() => ({ status: 'absent' })));
    } finally {
      await padlock.close();
    }
  });

  it('takes an error code from an answer only if the catalogue holds it', async () => {
    const padlock = await listen((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'constructor', message: 'probe' }));
    });
    try {
      const client = createPadlockClient({ url: padlock.url, service: 'etl', secret: 's', cacheTtlMs: 0 });
      await expect(client.createKeychain('u1')).rejects.toMatchObject({ code: 'INTERNAL', status: 500 });
    } finally {
      await padlock.close();
    }
  });
});
