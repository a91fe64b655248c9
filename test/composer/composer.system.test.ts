/**
 * The composer against the real Pub/Sub emulator: applying a spec creates the
 * type's resources with the settings it implies; re-applying changes nothing;
 * schema evolution adds a version or is refused with the reason; a crash
 * half-way converges; deprecation drains, then removes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import avro from 'avsc';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { resourceNames } from '../../lib/names.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { canonicalForm } from '../../lib/avro/fingerprint.ts';
import { Composer } from '../../composer/composer.ts';
import { Provisioner } from '../../composer/provisioning.ts';
import { loadSpecFile, type EventTypeSpec } from '../../composer/spec.ts';
import { uniqueEventType } from '../fixtures/event-type-names.ts';

const projectId = inject('projectId');
const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
const provisioner = new Provisioner({ pubsub, options: { drainGraceSeconds: 0 } });
afterAll(async () => {
  await provisioner.close();
  await pubsub.close();
});

function newComposer(): { composer: Composer; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'composer-registry-'));
  return { composer: new Composer({ registry: new FileRegistryStore(dir), provisioner }), dir };
}

async function exampleSpec(name: string): Promise<EventTypeSpec> {
  const loaded = await loadSpecFile(path.resolve(import.meta.dirname, '../fixtures/specs/user_profile_updated.yaml'));
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return { ...loaded.spec, name };
}

async function exists(kind: 'topic' | 'subscription', name: string): Promise<boolean> {
  const [e] = kind === 'topic' ? await pubsub.topic(name).exists() : await pubsub.subscription(name).exists();
  return e;
}

describe('composer provisioning on the Pub/Sub emulator', () => {
  it('apply creates topic, subscription and dead-letter topic with the implied settings; re-apply changes nothing', async () => {
    const { composer } = newComposer();
    const name = uniqueEventType('composer', 'apply');
    const spec = await exampleSpec(name);
    const applied = await composer.apply(spec);
    expect(applied.action).toBe('create');
    expect(applied.record.provisioning.state).toBe('provisioned');
    expect(applied.changes.map((c) => `${c.action} ${c.resource}`)).toEqual([
      'create deadLetterTopic',
      'create deadLetterSubscription',
      'create topicSchema',
      'create topic',
      'create etlSubscription',
      'create workerGroup',
      'create monitoring',
    ]);

    const [sub] = await pubsub.subscription(resourceNames.etlSubscription(name)).getMetadata();
    expect(sub.topic).toBe(`projects/${projectId}/topics/${resourceNames.topic(name)}`);
    expect(sub.ackDeadlineSeconds).toBe(60);
    expect(Number(sub.messageRetentionDuration?.seconds)).toBe(7 * 24 * 3600);
    expect(sub.deadLetterPolicy).toEqual({ deadLetterTopic: `projects/${projectId}/topics/${resourceNames.deadLetterTopic(name)}`, maxDeliveryAttempts: 100 });
    const [dlSub] = await pubsub.subscription(resourceNames.deadLetterSubscription(name)).getMetadata();
    expect(dlSub.topic).toBe(`projects/${projectId}/topics/${resourceNames.deadLetterTopic(name)}`);
    const [topic] = await pubsub.topic(resourceNames.topic(name)).getMetadata();
    expect(topic.schemaSettings).toMatchObject({ schema: `projects/${projectId}/schemas/${resourceNames.topicSchema(name)}`, encoding: 'BINARY' });
    const schema = await pubsub.schema(resourceNames.topicSchema(name)).get();
    expect(schema.definition).toBe(canonicalForm(spec.schema));
    expect(applied.record.provisioning.workerGroup).toMatchObject({ name: resourceNames.workerGroup(name), subscription: resourceNames.etlSubscription(name) });
    expect(applied.record.provisioning.monitoring?.sloHours).toBe(3);

    expect(await composer.plan(spec)).toEqual({ eventType: name, registry: { action: 'none', details: [] }, resources: [] });
    const again = await composer.apply(spec);
    expect(again.action).toBe('none');
    expect(again.changes).toEqual([]);
    expect(again.record.revision).toBe(applied.record.revision);
  });

  it('a compatible schema change adds a version and a schema revision; an incompatible one is refused with the reason', async () => {
    const { composer } = newComposer();
    const name = uniqueEventType('composer', 'evolve');
    const spec = await exampleSpec(name);
    await composer.apply(spec);
    const fields = spec.schema.fields as unknown[];

    const v2 = { ...spec, schema: { ...spec.schema, fields: [...fields, { name: 'locale', type: 'string', default: 'en' }] } };
    const plan = await composer.plan(v2);
    expect(plan.registry.details).toEqual([expect.stringMatching(/^add schema version 2/)]);
    expect(plan.resources.map((c) => `${c.action} ${c.resource}`)).toEqual(['update topicSchema']);
    const evolved = await composer.apply(v2);
    expect(evolved.newVersion).toBe(2);
    expect(evolved.record.versions.map((v) => v.version)).toEqual([1, 2]);
    expect((await pubsub.schema(resourceNames.topicSchema(name)).get()).definition).toBe(canonicalForm(v2.schema));

    const v3 = { ...spec, schema: { ...spec.schema, fields: [...fields, { name: 'locale', type: 'string', default: 'en' }, { name: 'age', type: 'int' }] } };
    await expect(composer.apply(v3)).rejects.toMatchObject({
      code: 'SCHEMA_INCOMPATIBLE',
      message: expect.stringContaining('age: field age is in the reader but not in the writer, and has no default'),
      details: { reasons: [{ path: 'age', version: 1, direction: 'backward', message: expect.any(String) }, { path: 'age', version: 2, direction: 'backward', message: expect.any(String) }] },
    });
    expect((await composer.get(name)).versions).toHaveLength(2);
    expect(await composer.checkCandidate(name, v3.schema)).toMatchObject({ compatible: false, mode: 'BACKWARD_TRANSITIVE' });
  });

  it('re-running after a crash half-way converges', async () => {
    const { composer } = newComposer();
    const name = uniqueEventType('composer', 'crash');
    const spec = await exampleSpec(name);
    // The "crash": only the dead-letter topic and the topic exist, nothing was recorded.
    await pubsub.createTopic(resourceNames.deadLetterTopic(name));
    await pubsub.createTopic(resourceNames.topic(name));
    const plan = await composer.plan(spec);
    expect(plan.resources.map((c) => `${c.action} ${c.resource}`)).toEqual([
      'create deadLetterSubscription',
      'create topicSchema',
      'update topic',
      'create etlSubscription',
      'create workerGroup',
      'create monitoring',
    ]);
    const applied = await composer.apply(spec);
    expect(applied.record.provisioning.state).toBe('provisioned');
    expect(await exists('subscription', resourceNames.etlSubscription(name))).toBe(true);
    expect(await composer.plan(spec)).toMatchObject({ registry: { action: 'none' }, resources: [] });
  });

  it('drift (ack deadline changed by hand) is planned and repaired', async () => {
    const { composer } = newComposer();
    const name = uniqueEventType('composer', 'drift');
    const spec = await exampleSpec(name);
    await composer.apply(spec);
    await pubsub.subscription(resourceNames.etlSubscription(name)).setMetadata({ ackDeadlineSeconds: 20 });
    const plan = await composer.plan(spec);
    expect(plan.resources).toEqual([expect.objectContaining({ resource: 'etlSubscription', action: 'update', detail: 'ackDeadlineSeconds 20 → 60' })]);
    await composer.apply(spec);
    const [sub] = await pubsub.subscription(resourceNames.etlSubscription(name)).getMetadata();
    expect(sub.ackDeadlineSeconds).toBe(60);
  });

  it('deprecation waits for the backlog to drain, then removes subscription and topic', async () => {
    const { composer } = newComposer();
    const name = uniqueEventType('composer', 'deprecate');
    const spec = await exampleSpec(name);
    await composer.apply(spec);
    // The topic validates messages against its Avro schema, as the event service's would be.
    const event = {
      userId: 'u1', occurredAt: 1, email: null, fullName: 'A', address: null, devices: [], phoneNumbers: [], lastLogins: {}, plan: 'FREE',
    };
    const data = avro.Type.forSchema(spec.schema as avro.Schema).toBuffer(event);
    await pubsub.topic(resourceNames.topic(name)).publishMessage({ data });

    const first = await composer.deprecate(name);
    expect(first.record.status).toBe('deprecated');
    expect(first.record.provisioning.state).toBe('draining');
    expect(first.changes).toEqual([expect.objectContaining({ resource: 'etlSubscription', action: 'wait' })]);
    expect(await exists('subscription', resourceNames.etlSubscription(name))).toBe(true);

    // The ETL drains the backlog.
    const subscription = pubsub.subscription(resourceNames.etlSubscription(name));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 20 s')), 20_000);
      subscription.once('message', (m) => {
        m.ack();
        clearTimeout(timer);
        resolve();
      });
    });
    await subscription.close();

    let record = first.record;
    for (let i = 0; i < 10 && record.provisioning.state !== 'removed'; i++) {
      record = (await composer.reconcile(name)).record;
    }
    expect(record.provisioning.state).toBe('removed');
    expect(record.provisioning.workerGroup).toBeUndefined();
    expect(await exists('subscription', resourceNames.etlSubscription(name))).toBe(false);
    expect(await exists('topic', resourceNames.topic(name))).toBe(false);
    expect(await exists('topic', resourceNames.deadLetterTopic(name))).toBe(false);
    await expect(composer.apply(await exampleSpec(name))).rejects.toMatchObject({ code: 'EVENT_TYPE_DEPRECATED' });
  });

  it('two composers updating one type concurrently: both versions recorded or one refused, never lost', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'composer-registry-'));
    const a = new Composer({ registry: new FileRegistryStore(dir), provisioner });
    const b = new Composer({ registry: new FileRegistryStore(dir), provisioner });
    const name = uniqueEventType('composer', 'race');
    const spec = await exampleSpec(name);
    await a.apply(spec);
    const fields = spec.schema.fields as unknown[];
    const withField = (f: string) => ({ ...spec, schema: { ...spec.schema, fields: [...fields, { name: f, type: 'string', default: '' }] } });
    const results = await Promise.allSettled([a.apply(withField('fromA')), b.apply(withField('fromB'))]);
    const record = await a.get(name);
    const fieldsOf = (v: { schema: { fields?: unknown } }) => (v.schema.fields as { name: string }[]).map((f) => f.name);
    for (const [i, r] of results.entries()) {
      const f = i === 0 ? 'fromA' : 'fromB';
      const recorded = record.versions.some((v) => fieldsOf(v).includes(f));
      if (r.status === 'fulfilled') expect(recorded).toBe(true);
      else expect(r.reason).toMatchObject({ code: expect.stringMatching(/SCHEMA_INCOMPATIBLE|CONCURRENT_UPDATE/) });
    }
    expect(record.versions.length).toBe(1 + results.filter((r) => r.status === 'fulfilled').length);
  });
});

describe('composer storage step on the GCS emulator', () => {
  it('waits for the platform data bucket, then records the storage location', async () => {
    const { startGcsEmulator } = await import('../../emulators/gcs/index.ts');
    const { createStorage } = await import('../../lib/gcp/clients.ts');
    const gcs = await startGcsEmulator();
    const storage = createStorage({ projectId, apiEndpoint: gcs.url });
    const bucket = uniqueEventType('data', 'bucket').replace(/_/g, '-');
    const withStorage = new Provisioner({ pubsub, storage: { client: storage, bucket } });
    try {
      const composer = new Composer({ registry: new FileRegistryStore(mkdtempSync(path.join(tmpdir(), 'composer-registry-'))), provisioner: withStorage });
      const name = uniqueEventType('composer', 'storage');
      const first = await composer.apply(await exampleSpec(name));
      expect(first.record.provisioning.state).toBe('pending');
      expect(first.changes).toContainEqual(expect.objectContaining({ resource: 'storage', action: 'wait', name: `${name}/` }));

      await storage.createBucket(bucket);
      const second = await composer.reconcile(name);
      expect(second.record.provisioning.state).toBe('provisioned');
      expect(second.record.provisioning.resources.storage).toBe(true);
      expect(second.changes).toEqual([]);
    } finally {
      await withStorage.close();
      await gcs.close();
    }
  });
});
