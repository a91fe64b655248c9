/**
 * The composer's REST API, started with `startComposer` on loopback against the
 * Pub/Sub emulator, with the example specs applied at start.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { silentLogger } from '../../lib/logger.ts';
import { resourceNames } from '../../lib/names.ts';
import { loadConfig, startComposer, type RunningComposer } from '../../composer/index.ts';
import { uniqueEventType } from '../fixtures/event-type-names.ts';

const pubsub = createPubSub({ projectId: inject('projectId'), emulatorHost: inject('pubsubHost') });
let composer: RunningComposer;
const registryDir = mkdtempSync(path.join(tmpdir(), 'composer-api-'));

beforeAll(async () => {
  const config = loadConfig({
    COMPOSER_PORT: '0',
    GCP_PROJECT: inject('projectId'),
    PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
    REGISTRY_DIR: registryDir,
    COMPOSER_TOKENS: 'tok-growth=growth,tok-web=web',
    COMPOSER_SPECS_DIR: path.resolve(import.meta.dirname, '../fixtures/specs'),
  });
  composer = await startComposer(config, { logger: silentLogger });
});
afterAll(async () => {
  await composer?.close();
  await pubsub.close();
});

async function call(method: string, url: string, options: { token?: string; body?: unknown; raw?: string; contentType?: string } = {}) {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] = options.contentType ?? 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${composer.url}${url}`, { method, headers, ...(body === undefined ? {} : { body }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const schema = (extra: unknown[] = []) => ({
  type: 'record',
  name: 'Signup',
  fields: [{ name: 'userId', type: 'string', semanticType: 'userId' }, { name: 'email', type: 'string', semanticType: 'email' }, ...extra],
});

describe('composer REST API', () => {
  it('applied the example specs at start', async () => {
    const list = await call('GET', '/v1/event-types', { token: 'tok-web' });
    expect(list.status).toBe(200);
    const names = (list.body.eventTypes as { name: string; provisioning: string }[]).map((t) => [t.name, t.provisioning]);
    expect(names).toEqual([
      ['build_finished', 'provisioned'],
      ['page_view', 'provisioned'],
      ['track_played', 'provisioned'],
      ['user_profile_updated', 'provisioned'],
    ]);
    const [exists] = await pubsub.topic(resourceNames.topic('page_view')).exists();
    expect(exists).toBe(true);
  });

  it('needs a bearer token', async () => {
    expect(await call('GET', '/v1/event-types')).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
    expect(await call('GET', '/v1/event-types', { token: 'nope' })).toMatchObject({ status: 401 });
  });

  it('create, get, versions, provisioning, evolve, check, refuse, deprecate', async () => {
    const name = uniqueEventType('api', 'signup');
    const spec = { name, owner: 'growth', description: 'A user signed up', priority: 'low', schema: schema() };

    const created = await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: spec });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ action: 'create', newVersion: 1, record: { status: 'active', provisioning: { state: 'provisioned' } } });

    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-web', body: spec })).toMatchObject({ status: 403, body: { code: 'NOT_OWNER' } });
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: spec })).toMatchObject({ status: 200, body: { action: 'none', changes: [] } });

    const got = await call('GET', `/v1/event-types/${name}`, { token: 'tok-web' });
    expect(got.body).toMatchObject({ settings: { name, owner: 'growth', priority: 'low', compatibility: 'BACKWARD_TRANSITIVE' }, revision: expect.any(Number) });
    const prov = await call('GET', `/v1/event-types/${name}/provisioning`, { token: 'tok-web' });
    expect(prov.body).toMatchObject({ status: 'active', provisioning: { state: 'provisioned', resources: { topic: true, etlSubscription: true, deadLetterTopic: true }, monitoring: { sloHours: 72 } } });

    const bad = schema([{ name: 'plan', type: 'string' }]);
    const check = await call('POST', `/v1/event-types/${name}/compatibility`, { token: 'tok-web', body: { schema: bad } });
    expect(check).toMatchObject({ status: 200, body: { compatible: false, mode: 'BACKWARD_TRANSITIVE', reasons: [{ path: 'plan', version: 1 }] } });
    expect((await call('POST', `/v1/event-types/${name}/compatibility`, { token: 'tok-web', body: { schema: schema([{ name: 'plan', type: 'string', default: 'free' }]) } })).body.compatible).toBe(true);

    const refused = await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: { ...spec, schema: bad } });
    expect(refused).toMatchObject({ status: 409, body: { code: 'SCHEMA_INCOMPATIBLE', details: { reasons: [{ path: 'plan' }] } } });

    // YAML body, compatible change: a second version.
    const yaml = `name: ${name}\nowner: growth\npriority: low\nschema:\n  type: record\n  name: Signup\n  fields:\n    - {name: userId, type: string, semanticType: userId}\n    - {name: email, type: string, semanticType: email}\n    - {name: plan, type: string, default: free}\n`;
    const evolved = await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', raw: yaml, contentType: 'application/yaml' });
    expect(evolved).toMatchObject({ status: 200, body: { action: 'update', newVersion: 2 } });
    const versions = await call('GET', `/v1/event-types/${name}/versions`, { token: 'tok-web' });
    expect((versions.body.versions as { version: number }[]).map((v) => v.version)).toEqual([1, 2]);

    // Dropping the personal annotation needs force.
    const plainEmail = { ...spec, schema: { ...schema(), fields: [{ name: 'userId', type: 'string', semanticType: 'userId' }, { name: 'email', type: 'string' }, { name: 'plan', type: 'string', default: 'free' }] } };
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: plainEmail })).toMatchObject({ status: 409, body: { code: 'SCHEMA_INCOMPATIBLE', details: { reasons: [{ path: 'email' }] } } });
    expect(await call('PUT', `/v1/event-types/${name}?force=true`, { token: 'tok-growth', body: plainEmail })).toMatchObject({ status: 200 });

    expect(await call('DELETE', `/v1/event-types/${name}`, { token: 'tok-web' })).toMatchObject({ status: 403, body: { code: 'NOT_OWNER' } });
    const deprecated = await call('POST', `/v1/event-types/${name}/deprecate`, { token: 'tok-growth' });
    expect(deprecated).toMatchObject({ status: 200, body: { status: 'deprecated' } });
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: spec })).toMatchObject({ status: 409, body: { code: 'EVENT_TYPE_DEPRECATED' } });
  });

  it('answers bad input with {code, message, details}, never a crash', async () => {
    const name = uniqueEventType('api', 'bad');
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', raw: '{"name": ' })).toMatchObject({ status: 400, body: { code: 'BODY_INVALID' } });
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', raw: 'name=x', contentType: 'text/plain' })).toMatchObject({ status: 415, body: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: [1, 2] })).toMatchObject({ status: 400, body: { code: 'BODY_INVALID' } });
    const invalid = await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: { owner: 'growth', priority: 'urgent', schema: { type: 'record', name: 'X', fields: [{ name: 'e', type: 'string', semanticType: 'email' }] } } });
    expect(invalid).toMatchObject({ status: 400, body: { code: 'SPEC_INVALID' } });
    expect(((invalid.body.details as { problems: { path: string; rule: string }[] }).problems).map((p) => [p.path, p.rule])).toEqual([
      ['priority', 'unknown-priority'],
      ['schema.e', 'missing-subject'],
    ]);
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: { name: 'other_name', owner: 'growth', schema: schema() } })).toMatchObject({ status: 400, body: { code: 'SPEC_INVALID' } });
    expect(await call('PUT', `/v1/event-types/${name}`, { token: 'tok-growth', body: { name, owner: 'web', schema: schema() } })).toMatchObject({ status: 403, body: { code: 'NOT_OWNER' } });
    expect(await call('GET', '/v1/event-types/no_such_type', { token: 'tok-web' })).toMatchObject({ status: 404, body: { code: 'EVENT_TYPE_NOT_FOUND' } });
    expect(await call('GET', '/nowhere')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    expect(await call('POST', '/v1/event-types/page_view/compatibility', { token: 'tok-web', body: { schema: 'x' } })).toMatchObject({ status: 400, body: { code: 'BODY_INVALID' } });
  });
});

describe('startComposer with the Firestore registry', () => {
  it('serves and provisions with REGISTRY_STORE=firestore', async () => {
    const config = loadConfig({
      COMPOSER_PORT: '0',
      GCP_PROJECT: inject('projectId'),
      PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
      REGISTRY_STORE: 'firestore',
      FIRESTORE_EMULATOR_HOST: inject('firestoreHost'),
      REGISTRY_COLLECTION: uniqueEventType('api', 'fs'),
      COMPOSER_TOKENS: 'tok=growth',
    });
    const running = await startComposer(config, { logger: silentLogger });
    try {
      const name = uniqueEventType('api', 'fstype');
      const res = await fetch(`${running.url}/v1/event-types/${name}`, {
        method: 'PUT',
        headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
        body: JSON.stringify({ name, owner: 'growth', schema: schema() }),
      });
      expect(res.status).toBe(201);
      expect(await running.composer.registry.getEventType(name)).toMatchObject({ revision: 2, provisioning: { state: 'provisioned' } });
    } finally {
      await running.close();
    }
  });
});
