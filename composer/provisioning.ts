/**
 * Provisioning as a reconciler: for one event type, each resource is a step
 * that observes what exists, says what would change (`plan`) and makes it so
 * (`reconcile`), idempotently. Re-running after a crash half-way converges,
 * because every step starts from what it observes, not from what was recorded.
 *
 * Steps, in order (for a deprecated type: drain and remove the ETL
 * subscription first, then the topic, schema, dead letters, registrations):
 * dead-letter topic, its subscription, Pub/Sub schema, topic (schema
 * attached), ETL subscription (ack deadline, retention, dead-letter policy),
 * storage location, ETL worker group registration, monitoring. New resources
 * (BigQuery table…) are new steps.
 *
 * Pub/Sub schema: the topic gets the schema's canonical form (annotations
 * dropped) as an AVRO schema, BINARY encoding, all revisions accepted; a new
 * version commits a revision. If the endpoint refuses schemas the topic is
 * created without one, and `topicSchemaAttached: false` is recorded.
 *
 * One owner per resource (`ProvisioningMode`, defaults.ts): in `terraform`
 * mode the Pub/Sub steps are not run at all (Terraform's event-type module
 * owns those resources); the registry-only steps (storage check, worker group
 * registration, monitoring record) run in both modes. `pubsubOwner` says who
 * owns what; test/provisioning-ownership.test.ts checks it against both sides.
 */
import { v1, type PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { canonicalForm } from '../lib/avro/fingerprint.ts';
import { resourceNames } from '../lib/names.ts';
import type { AvroSchemaJson, EventTypeSettings, ProvisioningState, WorkerGroupRegistration } from '../lib/registry/types.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import { DEFAULT_PROVISIONING_MODE, provisioningDefaults, type ProvisioningMode, type ProvisioningOptions } from './defaults.ts';
import { monitoringFor } from './monitoring.ts';

export type ChangeAction = 'create' | 'update' | 'delete' | 'wait';

/** The per-type Pub/Sub resources: the steps that only their owner runs. */
export const PUBSUB_RESOURCES = ['deadLetterTopic', 'deadLetterSubscription', 'topicSchema', 'topic', 'etlSubscription'] as const;
export type PubsubResource = (typeof PUBSUB_RESOURCES)[number];

/** Who creates and changes the per-type Pub/Sub resources in `mode`. */
export function pubsubOwner(mode: ProvisioningMode): 'composer' | 'terraform' {
  return mode;
}

/** Settings of the dead-letter subscription, as terraform/modules/event-type sets them (retention: `deadLetterRetentionSeconds`). */
export const deadLetterSubscriptionSettings = { retainAckedMessages: true } as const;

/** The longest subscription retention every endpoint accepts (the Pub/Sub emulator's maximum). */
const PORTABLE_RETENTION_SECONDS = 7 * 24 * 3600;
const GRPC_INVALID_ARGUMENT = 3;

/** One difference between what exists and what the spec implies. */
export interface PlannedChange {
  eventType: string;
  /** Step id: `deadLetterTopic`, `topic`, `etlSubscription`, … */
  resource: string;
  /** The resource's name (Pub/Sub short name, bucket prefix, worker group). */
  name: string;
  action: ChangeAction;
  detail: string;
}

/** What one event type should look like. */
export interface DesiredEventType {
  settings: EventTypeSettings;
  /** The current schema (annotations included; dropped for Pub/Sub). */
  schema: AvroSchemaJson;
  /** `deprecated`: drain, then remove the Pub/Sub resources (data stays). */
  deprecated: boolean;
  /** The state recorded by the last reconcile, if any. */
  previous: ProvisioningState | undefined;
}

export interface ReconcileResult {
  /** What was changed (or, for `wait`, what is pending). */
  changes: PlannedChange[];
  provisioning: ProvisioningState;
}

export interface ProvisionerDeps {
  pubsub: PubSub;
  /** The platform's data bucket; absent: storage is not checked (no GCS configured). */
  storage?: { client: Storage; bucket: string };
  options?: Partial<ProvisioningOptions>;
  /** Who owns the per-type Pub/Sub resources (default `composer`). */
  mode?: ProvisioningMode;
  logger?: Logger;
  now?: () => Date;
}

/** An observation that turns into a change, or `undefined` when the resource is as desired. */
type Observation = { action: ChangeAction; detail: string; apply?: () => Promise<void> } | undefined;

interface Step {
  resource: string;
  name: (type: string) => string;
  /** Skipped for this type (e.g. storage without GCS). */
  applies?: (d: DesiredEventType) => boolean;
  observe: (d: DesiredEventType, draft: ProvisioningState) => Promise<Observation>;
}

const REMOVAL_ORDER = ['etlSubscription', 'topic', 'topicSchema', 'deadLetterSubscription', 'deadLetterTopic', 'workerGroup', 'monitoring'];

const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;
const GRPC_UNIMPLEMENTED = 12;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

async function existsOrUndefined<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (grpcCode(err) === GRPC_NOT_FOUND) return undefined;
    throw err;
  }
}

async function ignoreExists(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    // Another reconcile created it meanwhile: converged.
    if (grpcCode(err) !== GRPC_ALREADY_EXISTS) throw err;
  }
}

async function ignoreMissing(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (grpcCode(err) !== GRPC_NOT_FOUND) throw err;
  }
}

function seconds(d: { seconds?: unknown } | null | undefined): number {
  return Number(d?.seconds ?? 0);
}

/** Provisions event types' resources on Pub/Sub (and checks storage); one instance per process. */
export class Provisioner {
  private readonly pubsub: PubSub;
  private readonly storage: ProvisionerDeps['storage'];
  private readonly options: ProvisioningOptions;
  readonly mode: ProvisioningMode;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private subscriberClient: v1.SubscriberClient | undefined;
  /** Whether the endpoint accepts Pub/Sub schemas; learnt on first try. */
  private schemasSupported: boolean | undefined;
  /** Dead-letter retention; lowered to 7 days if the endpoint refuses more (an emulator not configured as such). */
  private deadLetterRetentionSeconds: number;
  private readonly steps: Step[];

  constructor(deps: ProvisionerDeps) {
    this.pubsub = deps.pubsub;
    this.storage = deps.storage;
    this.options = { ...provisioningDefaults, ...deps.options };
    this.mode = deps.mode ?? DEFAULT_PROVISIONING_MODE;
    this.deadLetterRetentionSeconds = this.options.deadLetterRetentionSeconds;
    this.logger = deps.logger ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
    this.steps = [
      this.deadLetterTopicStep(),
      this.deadLetterSubscriptionStep(),
      this.topicSchemaStep(),
      this.topicStep(),
      this.etlSubscriptionStep(),
      this.storageStep(),
      this.workerGroupStep(),
      this.monitoringStep(),
    ];
  }

  /** What `reconcile` would change, changing nothing. */
  async plan(desired: DesiredEventType): Promise<PlannedChange[]> {
    const draft = this.draftOf(desired);
    const changes: PlannedChange[] = [];
    for (const step of this.orderedSteps(desired)) {
      const obs = await step.observe(desired, draft);
      if (obs !== undefined) changes.push(this.change(desired, step, obs));
    }
    return changes;
  }

  /**
   * Makes the type's resources match `desired`; returns what changed and the
   * provisioning state to record. A failing step stops the run (later steps
   * depend on earlier ones) with state `failed`; running again resumes.
   */
  async reconcile(desired: DesiredEventType): Promise<ReconcileResult> {
    const draft = this.draftOf(desired);
    const changes: PlannedChange[] = [];
    const log = this.logger.child({ eventType: desired.settings.name });
    let waiting = false;
    for (const step of this.orderedSteps(desired)) {
      let obs: Observation;
      try {
        obs = await step.observe(desired, draft);
        if (obs !== undefined) {
          const change = this.change(desired, step, obs);
          changes.push(change);
          if (obs.action === 'wait') {
            waiting = true;
            draft.resources[step.resource] = !desired.deprecated;
            // Removal goes in dependency order: nothing after a waiting step.
            if (desired.deprecated) break;
            continue;
          }
          await obs.apply?.();
          log.info('provisioned', { resource: step.resource, action: change.action, name: change.name });
        }
        if (step.applies === undefined || step.applies(desired)) draft.resources[step.resource] = !desired.deprecated;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.error('provisioning step failed', { resource: step.resource, err });
        draft.resources[step.resource] = false;
        draft.state = 'failed';
        draft.error = `${step.resource}: ${message}`;
        draft.updatedAt = this.now().toISOString();
        return { changes, provisioning: draft };
      }
    }
    draft.state = desired.deprecated ? (waiting ? 'draining' : 'removed') : waiting ? 'pending' : 'provisioned';
    if (draft.state !== 'draining') delete draft.drainedSince;
    delete draft.error;
    draft.updatedAt = this.now().toISOString();
    return { changes, provisioning: draft };
  }

  /** Commits `desired.schema` to the type's Pub/Sub schema if that schema exists; nothing else (nothing in `terraform` mode). */
  async prepareSchema(desired: DesiredEventType): Promise<void> {
    if (this.mode !== 'composer') return;
    const step = this.steps.find((s) => s.resource === 'topicSchema');
    const obs = await step?.observe(desired, this.draftOf(desired));
    if (obs?.action === 'update') await obs.apply?.();
  }

  /**
   * Which of a type's Pub/Sub resources exist, reading only (for the Terraform
   * export's import blocks in `terraform` mode).
   */
  async existingPubsubResources(eventType: string): Promise<Set<PubsubResource>> {
    const found = new Set<PubsubResource>();
    const exists = async (r: PubsubResource, get: () => Promise<unknown>): Promise<void> => {
      if ((await existsOrUndefined(get)) !== undefined) found.add(r);
    };
    await exists('topic', () => this.pubsub.topic(resourceNames.topic(eventType)).getMetadata());
    await exists('deadLetterTopic', () => this.pubsub.topic(resourceNames.deadLetterTopic(eventType)).getMetadata());
    await exists('etlSubscription', () => this.pubsub.subscription(resourceNames.etlSubscription(eventType)).getMetadata());
    await exists('deadLetterSubscription', () => this.pubsub.subscription(resourceNames.deadLetterSubscription(eventType)).getMetadata());
    try {
      await exists('topicSchema', () => this.pubsub.schema(resourceNames.topicSchema(eventType)).get());
    } catch (err) {
      if (grpcCode(err) !== GRPC_UNIMPLEMENTED) throw err;
    }
    return found;
  }

  async close(): Promise<void> {
    await this.subscriberClient?.close();
  }

  private orderedSteps(d: DesiredEventType): Step[] {
    const owned = (s: Step): boolean => this.mode === 'composer' || !(PUBSUB_RESOURCES as readonly string[]).includes(s.resource);
    const steps = this.steps.filter((s) => owned(s) && (s.applies === undefined || s.applies(d)));
    if (!d.deprecated) return steps;
    // Drain first; the worker group stays registered until its subscription is gone.
    return REMOVAL_ORDER.map((r) => steps.find((s) => s.resource === r)).filter((s): s is Step => s !== undefined);
  }

  private draftOf(d: DesiredEventType): ProvisioningState {
    const prev = d.previous;
    return {
      ...(prev === undefined ? {} : structuredClone(prev)),
      state: 'pending',
      resources: { ...prev?.resources },
      updatedAt: prev?.updatedAt ?? this.now().toISOString(),
    };
  }

  private change(d: DesiredEventType, step: Step, obs: NonNullable<Observation>): PlannedChange {
    return { eventType: d.settings.name, resource: step.resource, name: step.name(d.settings.name), action: obs.action, detail: obs.detail };
  }

  private fullTopic(name: string): string {
    return `projects/${this.pubsub.projectId}/topics/${name}`;
  }

  private fullSchema(name: string): string {
    return `projects/${this.pubsub.projectId}/schemas/${name}`;
  }

  // ---- steps -------------------------------------------------------------

  private topicExistenceStep(resource: string, name: (t: string) => string, waitForGone?: (d: DesiredEventType) => Promise<string | undefined>): Step {
    return {
      resource,
      name,
      observe: async (d) => {
        const topicName = name(d.settings.name);
        const topic = this.pubsub.topic(topicName);
        const exists = (await existsOrUndefined(() => topic.getMetadata())) !== undefined;
        if (d.deprecated) {
          if (!exists) return undefined;
          const blocker = await waitForGone?.(d);
          if (blocker !== undefined) return { action: 'wait', detail: blocker };
          return { action: 'delete', detail: `delete topic ${topicName}`, apply: () => ignoreMissing(() => topic.delete()) };
        }
        if (exists) return undefined;
        return { action: 'create', detail: `create topic ${topicName}`, apply: () => ignoreExists(() => this.pubsub.createTopic(topicName)) };
      },
    };
  }

  private deadLetterTopicStep(): Step {
    return this.topicExistenceStep('deadLetterTopic', resourceNames.deadLetterTopic, async (d) => {
      const sub = await existsOrUndefined(() => this.pubsub.subscription(resourceNames.deadLetterSubscription(d.settings.name)).getMetadata());
      return sub === undefined ? undefined : 'dead-letter subscription still holds dead letters';
    });
  }

  private deadLetterSubscriptionStep(): Step {
    const name = resourceNames.deadLetterSubscription;
    return {
      resource: 'deadLetterSubscription',
      name,
      observe: async (d) => {
        const subName = name(d.settings.name);
        const sub = this.pubsub.subscription(subName);
        const meta = await existsOrUndefined(() => sub.getMetadata().then(([m]) => m));
        if (d.deprecated) {
          if (meta === undefined) return undefined;
          if (await this.hasBacklog(subName)) {
            return { action: 'wait', detail: `dead letters remain in ${subName}: inspect or purge them, then reconcile again` };
          }
          return { action: 'delete', detail: `delete subscription ${subName}`, apply: () => ignoreMissing(() => sub.delete()) };
        }
        const retention = this.deadLetterRetentionSeconds;
        const want = (seconds: number) => ({ ackDeadlineSeconds: this.options.ackDeadlineSeconds, messageRetentionDuration: { seconds }, retainAckedMessages: deadLetterSubscriptionSettings.retainAckedMessages });
        if (meta === undefined) {
          const create = (seconds: number) => ignoreExists(() => this.pubsub.topic(resourceNames.deadLetterTopic(d.settings.name)).createSubscription(subName, { ...want(seconds), expirationPolicy: {} }));
          return {
            action: 'create',
            detail: `create subscription ${subName} on ${resourceNames.deadLetterTopic(d.settings.name)} (retention ${retention / 86400} d, acked messages retained)`,
            apply: async () => {
              try {
                await create(retention);
              } catch (err) {
                // An endpoint that caps retention at 7 days (the emulator): keep what it allows.
                if (grpcCode(err) !== GRPC_INVALID_ARGUMENT || retention === PORTABLE_RETENTION_SECONDS) throw err;
                this.deadLetterRetentionSeconds = PORTABLE_RETENTION_SECONDS;
                this.logger.warn('Pub/Sub endpoint refuses 31-day retention; dead letters are kept 7 days', { err });
                await create(PORTABLE_RETENTION_SECONDS);
              }
            },
          };
        }
        const drift: string[] = [];
        if (meta.ackDeadlineSeconds !== this.options.ackDeadlineSeconds) drift.push(`ackDeadlineSeconds ${meta.ackDeadlineSeconds} → ${this.options.ackDeadlineSeconds}`);
        if (seconds(meta.messageRetentionDuration) !== retention) drift.push(`messageRetention ${seconds(meta.messageRetentionDuration)} s → ${retention} s`);
        if (meta.retainAckedMessages !== deadLetterSubscriptionSettings.retainAckedMessages) drift.push(`retainAckedMessages → ${deadLetterSubscriptionSettings.retainAckedMessages}`);
        if (drift.length === 0) return undefined;
        return {
          action: 'update',
          detail: drift.join(', '),
          apply: async () => {
            try {
              await sub.setMetadata(want(retention));
            } catch (err) {
              if (grpcCode(err) !== GRPC_INVALID_ARGUMENT || retention === PORTABLE_RETENTION_SECONDS) throw err;
              this.deadLetterRetentionSeconds = PORTABLE_RETENTION_SECONDS;
              await sub.setMetadata(want(PORTABLE_RETENTION_SECONDS));
            }
          },
        };
      },
    };
  }

  private topicSchemaStep(): Step {
    const name = resourceNames.topicSchema;
    return {
      resource: 'topicSchema',
      name,
      observe: async (d, draft) => {
        const schemaName = name(d.settings.name);
        if (this.schemasSupported === false) {
          draft.topicSchemaAttached = false;
          return undefined;
        }
        const handle = this.pubsub.schema(schemaName);
        let existing: { definition?: string | null } | undefined;
        try {
          existing = await existsOrUndefined(() => handle.get());
        } catch (err) {
          if (grpcCode(err) === GRPC_UNIMPLEMENTED) return this.schemasUnsupported(draft, err);
          throw err;
        }
        if (d.deprecated) {
          if (existing === undefined) return undefined;
          const topic = await existsOrUndefined(() => this.pubsub.topic(resourceNames.topic(d.settings.name)).getMetadata());
          if (topic !== undefined) return { action: 'wait', detail: 'topic still exists' };
          return { action: 'delete', detail: `delete Pub/Sub schema ${schemaName}`, apply: () => ignoreMissing(() => handle.delete()) };
        }
        const definition = canonicalForm(d.schema);
        if (existing === undefined) {
          // Expected to succeed; `apply` corrects this if the endpoint refuses schemas.
          draft.topicSchemaAttached = true;
          return {
            action: 'create',
            detail: `create AVRO schema ${schemaName}`,
            apply: async () => {
              try {
                await ignoreExists(() => this.pubsub.createSchema(schemaName, 'AVRO', definition));
                this.schemasSupported = true;
                draft.topicSchemaAttached = true;
              } catch (err) {
                if (grpcCode(err) === 3 || grpcCode(err) === GRPC_UNIMPLEMENTED) this.schemasUnsupported(draft, err);
                else throw err;
              }
            },
          };
        }
        draft.topicSchemaAttached = true;
        if (existing.definition === definition) return undefined;
        return {
          action: 'update',
          detail: `commit a new revision of ${schemaName} (new schema version)`,
          apply: async () => {
            const client = await this.pubsub.getSchemaClient();
            await client.commitSchema({ name: this.fullSchema(schemaName), schema: { name: this.fullSchema(schemaName), type: 'AVRO', definition } });
          },
        };
      },
    };
  }

  private schemasUnsupported(draft: ProvisioningState, err: unknown): undefined {
    this.schemasSupported = false;
    draft.topicSchemaAttached = false;
    this.logger.warn('Pub/Sub endpoint refuses schemas; topics are created without one', { err });
    return undefined;
  }

  private topicStep(): Step {
    const name = resourceNames.topic;
    return {
      resource: 'topic',
      name,
      observe: async (d, draft) => {
        const topicName = name(d.settings.name);
        const topic = this.pubsub.topic(topicName);
        const meta = await existsOrUndefined(() => topic.getMetadata().then(([m]) => m));
        if (d.deprecated) {
          if (meta === undefined) return undefined;
          const sub = await existsOrUndefined(() => this.pubsub.subscription(resourceNames.etlSubscription(d.settings.name)).getMetadata());
          if (sub !== undefined) return { action: 'wait', detail: 'ETL subscription still exists (draining)' };
          return { action: 'delete', detail: `delete topic ${topicName}`, apply: () => ignoreMissing(() => topic.delete()) };
        }
        const wantSchema = draft.topicSchemaAttached === true ? this.fullSchema(resourceNames.topicSchema(d.settings.name)) : undefined;
        const schemaSettings = wantSchema === undefined ? undefined : { schema: wantSchema, encoding: 'BINARY' as const };
        if (meta === undefined) {
          return {
            action: 'create',
            detail: `create topic ${topicName}${wantSchema === undefined ? '' : ' with its Avro schema (BINARY)'}`,
            apply: () => ignoreExists(() => this.pubsub.createTopic({ name: topicName, ...(schemaSettings === undefined ? {} : { schemaSettings }) })),
          };
        }
        if (schemaSettings !== undefined && meta.schemaSettings?.schema !== wantSchema) {
          return { action: 'update', detail: `attach schema ${resourceNames.topicSchema(d.settings.name)}`, apply: async () => void (await topic.setMetadata({ schemaSettings })) };
        }
        return undefined;
      },
    };
  }

  private etlSubscriptionStep(): Step {
    const name = resourceNames.etlSubscription;
    return {
      resource: 'etlSubscription',
      name,
      observe: async (d, draft) => {
        const type = d.settings.name;
        const subName = name(type);
        const sub = this.pubsub.subscription(subName);
        const meta = await existsOrUndefined(() => sub.getMetadata().then(([m]) => m));
        if (d.deprecated) {
          if (meta === undefined) return undefined;
          return this.drainObservation(subName, draft, () => ignoreMissing(() => sub.delete()));
        }
        const o = this.options;
        const deadLetterTopic = this.fullTopic(resourceNames.deadLetterTopic(type));
        const want = {
          ackDeadlineSeconds: o.ackDeadlineSeconds,
          messageRetentionDuration: { seconds: o.messageRetentionSeconds },
          deadLetterPolicy: { deadLetterTopic, maxDeliveryAttempts: o.maxDeliveryAttempts },
          retryPolicy: { minimumBackoff: { seconds: o.minimumBackoffSeconds }, maximumBackoff: { seconds: o.maximumBackoffSeconds } },
        };
        if (meta === undefined) {
          return {
            action: 'create',
            detail: `create subscription ${subName} (ack deadline ${o.ackDeadlineSeconds} s, retention ${o.messageRetentionSeconds / 86400} d, dead letter after ${o.maxDeliveryAttempts} attempts)`,
            // expirationPolicy {}: never expire, even if the ETL is idle for a month.
            apply: () => ignoreExists(() => this.pubsub.topic(resourceNames.topic(type)).createSubscription(subName, { ...want, expirationPolicy: {} })),
          };
        }
        const drift: string[] = [];
        if (meta.ackDeadlineSeconds !== o.ackDeadlineSeconds) drift.push(`ackDeadlineSeconds ${meta.ackDeadlineSeconds} → ${o.ackDeadlineSeconds}`);
        if (seconds(meta.messageRetentionDuration) !== o.messageRetentionSeconds) drift.push(`messageRetention ${seconds(meta.messageRetentionDuration)} s → ${o.messageRetentionSeconds} s`);
        if (meta.deadLetterPolicy?.deadLetterTopic !== deadLetterTopic || meta.deadLetterPolicy?.maxDeliveryAttempts !== o.maxDeliveryAttempts) {
          drift.push(`deadLetterPolicy → ${resourceNames.deadLetterTopic(type)} after ${o.maxDeliveryAttempts} attempts`);
        }
        if (drift.length === 0) return undefined;
        return { action: 'update', detail: drift.join(', '), apply: async () => void (await sub.setMetadata(want)) };
      },
    };
  }

  /** Deletes the subscription once seen empty twice `drainGraceSeconds` apart. */
  private async drainObservation(subName: string, draft: ProvisioningState, remove: () => Promise<void>): Promise<Observation> {
    if (await this.hasBacklog(subName)) {
      delete draft.drainedSince;
      return { action: 'wait', detail: `draining: ${subName} still has undelivered messages` };
    }
    const now = this.now();
    if (draft.drainedSince === undefined) {
      draft.drainedSince = now.toISOString();
      if (this.options.drainGraceSeconds > 0) {
        return { action: 'wait', detail: `draining: ${subName} empty; removed if still empty in ${this.options.drainGraceSeconds} s` };
      }
    }
    const since = Date.parse(draft.drainedSince);
    if (now.getTime() - since < this.options.drainGraceSeconds * 1000) {
      return { action: 'wait', detail: `draining: ${subName} empty since ${draft.drainedSince}; grace period not over` };
    }
    return { action: 'delete', detail: `delete drained subscription ${subName}`, apply: remove };
  }

  /**
   * Whether a subscription has messages available. Pulls at most one without
   * waiting and hands it straight back (ack deadline 0). The emulator has no
   * backlog metric; on Google, `num_undelivered_messages` says the same.
   */
  private async hasBacklog(subName: string): Promise<boolean> {
    if (this.subscriberClient === undefined) this.subscriberClient = new v1.SubscriberClient((await this.pubsub.getClientConfig()) as ConstructorParameters<typeof v1.SubscriberClient>[0]);
    const client = this.subscriberClient;
    const subscription = `projects/${this.pubsub.projectId}/subscriptions/${subName}`;
    const [resp] = await client.pull({ subscription, maxMessages: 1, returnImmediately: true }, { timeout: 10_000 });
    const ackIds = (resp.receivedMessages ?? []).map((m) => m.ackId).filter((a): a is string => typeof a === 'string');
    if (ackIds.length === 0) return false;
    await client.modifyAckDeadline({ subscription, ackIds, ackDeadlineSeconds: 0 });
    return true;
  }

  private storageStep(): Step {
    return {
      resource: 'storage',
      name: resourceNames.storagePrefix,
      applies: (d) => this.storage !== undefined && d.settings.storage.includes('gcs'),
      observe: async (d) => {
        // The prefix needs no creating; the bucket is the platform's. Data is kept on deprecation.
        if (d.deprecated || this.storage === undefined) return undefined;
        const [exists] = await this.storage.client.bucket(this.storage.bucket).exists();
        if (exists) return undefined;
        return { action: 'wait', detail: `data bucket ${this.storage.bucket} does not exist (the platform creates it)` };
      },
    };
  }

  private workerGroupStep(): Step {
    return {
      resource: 'workerGroup',
      name: resourceNames.workerGroup,
      observe: async (d, draft) => {
        const current = draft.workerGroup;
        if (d.deprecated) {
          if (current === undefined) return undefined;
          return { action: 'delete', detail: `unregister ETL worker group ${current.name}`, apply: async () => void delete draft.workerGroup };
        }
        const type = d.settings.name;
        const want: Omit<WorkerGroupRegistration, 'registeredAt'> = {
          name: resourceNames.workerGroup(type),
          subscription: resourceNames.etlSubscription(type),
          deadLetterTopic: resourceNames.deadLetterTopic(type),
          ackDeadlineSeconds: this.options.ackDeadlineSeconds,
          maxDeliveryAttempts: this.options.maxDeliveryAttempts,
        };
        if (current !== undefined && JSON.stringify({ ...current, registeredAt: undefined }) === JSON.stringify({ ...want, registeredAt: undefined })) return undefined;
        return {
          action: current === undefined ? 'create' : 'update',
          detail: `register ETL worker group ${want.name} on ${want.subscription}`,
          apply: async () => {
            draft.workerGroup = { ...want, registeredAt: this.now().toISOString() };
          },
        };
      },
    };
  }

  private monitoringStep(): Step {
    return {
      resource: 'monitoring',
      name: (t) => `${t}-monitoring`,
      observe: async (d, draft) => {
        if (d.deprecated) {
          if (draft.monitoring === undefined) return undefined;
          return { action: 'delete', detail: 'remove monitoring', apply: async () => void delete draft.monitoring };
        }
        const m = monitoringFor(d.settings);
        const want = { sloHours: m.sloHours, alerts: m.alerts.map((a) => ({ name: a.name, metric: a.metric, threshold: a.threshold, notify: a.notify })) };
        if (JSON.stringify(draft.monitoring) === JSON.stringify(want)) return undefined;
        return {
          action: draft.monitoring === undefined ? 'create' : 'update',
          detail: `SLO ${m.sloHours} h (${d.settings.priority}), ${m.alerts.length} alerts${m.alerts[0]?.notify === 'working-hours' ? ' in working hours' : ''}`,
          apply: async () => {
            draft.monitoring = want;
          },
        };
      },
    };
  }
}
