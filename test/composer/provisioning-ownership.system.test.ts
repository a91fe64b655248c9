/**
 * Issue 17, defect 1: one owner per per-type Pub/Sub resource. In each
 * provisioning mode, what the composer creates against the Pub/Sub emulator
 * and what terraform/modules/event-type creates (its `count`s evaluated for
 * that mode) are disjoint and together are every Pub/Sub resource of a type;
 * re-running either side changes nothing the other owns. In `terraform` mode
 * the export adopts what already exists with import blocks that address the
 * module's resources.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exportFromComposer, importBlocks, TERRAFORM_IMPORTS_FILE } from '../../composer/terraform-export.ts';
import { Composer } from '../../composer/composer.ts';
import type { ProvisioningMode } from '../../composer/defaults.ts';
import { PUBSUB_RESOURCES, Provisioner, type DesiredEventType, type PubsubResource } from '../../composer/provisioning.ts';
import { pageViewSchema, eventTypeRecord } from '../support/etl.ts';
import { createPubSub } from '../../lib/gcp/clients.ts';
import { resourceNames } from '../../lib/names.ts';
import { MemoryRegistryStore } from '../../lib/registry/memory.ts';
import { loadAll, type HclConfig, type ModuleKey } from '../support/terraform-hcl.ts';
import { uniqueName } from '../support/names.ts';

/** The event-type module's Pub/Sub resources, by the composer's step name. */
const moduleResource: Record<string, PubsubResource> = {
  'google_pubsub_schema.events': 'topicSchema',
  'google_pubsub_topic.events': 'topic',
  'google_pubsub_topic.dead_letter': 'deadLetterTopic',
  'google_pubsub_subscription.etl': 'etlSubscription',
  'google_pubsub_subscription.dead_letter': 'deadLetterSubscription',
};

/** What Terraform's event-type module creates in `mode`: its Pub/Sub resources whose count is 1. */
function terraformCreates(config: HclConfig, mode: ProvisioningMode): Set<PubsubResource> {
  const ownsPubsub = config.locals.owns_pubsub;
  if (ownsPubsub !== '${var.platform.provisioning == "terraform"}') throw new Error(`unexpected owns_pubsub ${String(ownsPubsub)}`);
  const created = new Set<PubsubResource>();
  for (const [type, byName] of Object.entries(config.resource)) {
    if (!/^google_pubsub_(topic|subscription|schema)$/.test(type)) continue;
    for (const [name, block] of Object.entries(byName)) {
      const resource = moduleResource[`${type}.${name}`];
      if (resource === undefined) throw new Error(`${type}.${name} is not mapped to a composer step`);
      if (block.count !== '${local.owns_pubsub ? 1 : 0}') throw new Error(`${type}.${name} is created whoever owns Pub/Sub`);
      if (mode === 'terraform') created.add(resource);
    }
  }
  return created;
}

describe('one owner per per-type Pub/Sub resource', () => {
  const projectId = inject('projectId');
  const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
  let configs: Record<ModuleKey, HclConfig>;
  beforeAll(async () => {
    configs = await loadAll();
  });
  afterAll(async () => {
    await pubsub.close();
  });

  const desired = (name: string, previous?: DesiredEventType['previous']): DesiredEventType => ({
    settings: eventTypeRecord(name).settings,
    schema: pageViewSchema,
    deprecated: false,
    previous,
  });

  it.each(['composer', 'terraform'] as const)('provisioning = %s: the composer and Terraform create disjoint sets that cover every Pub/Sub resource', async (mode) => {
    const name = uniqueName('own', mode).replace(/-/g, '_');
    const provisioner = new Provisioner({ pubsub, mode, options: { drainGraceSeconds: 0 } });
    try {
      const first = await provisioner.reconcile(desired(name));
      expect(first.provisioning, JSON.stringify(first.provisioning.error)).toMatchObject({ state: "provisioned" });
      const byComposer = await provisioner.existingPubsubResources(name);
      const byTerraform = terraformCreates(configs.eventType, mode);
      expect([...byComposer].filter((r) => byTerraform.has(r)), 'created by both').toEqual([]);
      expect([...byComposer, ...byTerraform].sort()).toEqual([...PUBSUB_RESOURCES].sort());
      expect(mode === 'composer' ? byComposer.size : byTerraform.size).toBe(PUBSUB_RESOURCES.length);
      // A second reconcile changes nothing: no side undoes the other.
      const again = await provisioner.reconcile(desired(name, first.provisioning));
      expect(again.changes).toEqual([]);
    } finally {
      await provisioner.close();
    }
  });

  it('provisioning = terraform: Pub/Sub resources that exist, even with other settings, are left alone and adopted with import blocks', async () => {
    const name = uniqueName('own', 'adopt').replace(/-/g, '_');
    // What an earlier composer (composer mode) left behind, with settings Terraform will correct.
    const [topic] = await pubsub.createTopic(resourceNames.topic(name));
    await topic.createSubscription(resourceNames.etlSubscription(name), { ackDeadlineSeconds: 10 });
    const registry = new MemoryRegistryStore();
    const provisioner = new Provisioner({ pubsub, mode: 'terraform' });
    const composer = new Composer({ registry, provisioner });
    try {
      const applied = await composer.apply({ ...eventTypeRecord(name).settings, schema: pageViewSchema });
      expect(applied.changes.map((c) => c.resource).filter((r) => (PUBSUB_RESOURCES as readonly string[]).includes(r))).toEqual([]);
      const [sub] = await pubsub.subscription(resourceNames.etlSubscription(name)).getMetadata();
      expect(sub.ackDeadlineSeconds).toBe(10);
      expect((await pubsub.topic(resourceNames.deadLetterTopic(name)).exists())[0]).toBe(false);

      const files = await exportFromComposer(composer, projectId);
      const imports = files.find((f) => f.path === TERRAFORM_IMPORTS_FILE)!.content;
      expect(imports).toContain(`to = module.event_type["${name}"].google_pubsub_topic.events[0]\n  id = "projects/${projectId}/topics/${resourceNames.topic(name)}"`);
      expect(imports).toContain(`to = module.event_type["${name}"].google_pubsub_subscription.etl[0]\n  id = "projects/${projectId}/subscriptions/${resourceNames.etlSubscription(name)}"`);
      expect(imports.match(/^import \{/gm)).toHaveLength(2);
    } finally {
      await provisioner.close();
    }
  });

  it('every import address is a counted Pub/Sub resource of the event-type module, called event_type by the example', () => {
    const all = new Map([['a_type', new Set(PUBSUB_RESOURCES)]]);
    const content = importBlocks('p-roject', all).content;
    const addresses = [...content.matchAll(/to = module\.event_type\["a_type"\]\.(\w+)\.(\w+)\[0\]/g)].map((m) => `${m[1]}.${m[2]}`);
    expect(addresses.sort()).toEqual(Object.keys(moduleResource).sort());
    expect(configs.example.module.event_type?.source).toBe('../../modules/event-type');
  });
});
