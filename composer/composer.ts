/**
 * The composer's operations, shared by the REST API and the CLI: apply a spec
 * (register or evolve the type, then reconcile its resources), plan, check a
 * candidate schema, deprecate, reconcile. Registry writes are conditional on
 * the record's revision; a write that loses a race is retried from a fresh
 * read (re-checking compatibility against whatever won), so concurrent updates
 * of one type are all recorded or refused, never silently lost.
 */
import { AppError, isAppError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/logger.ts';
import { currentVersion, type AvroSchemaJson, type EventTypeRecord, type ProvisioningState, type RegistryStore } from '../lib/registry/types.ts';
import { defaultCatalogue, type SemanticCatalogue } from '../lib/semantic-types.ts';
import { planRecordChange, type RecordChange } from './changes.ts';
import { checkMode, personalDowngrades, type CompatibilityReason } from './compatibility.ts';
import type { DesiredEventType, PlannedChange, Provisioner } from './provisioning.ts';
import { schemaProblems, type EventTypeSpec, type SpecProblem } from './spec.ts';

export interface ComposerDeps {
  registry: RegistryStore;
  /** Absent: the registry is updated but nothing is provisioned (state stays `pending`). */
  provisioner?: Provisioner;
  catalogue?: SemanticCatalogue;
  logger?: Logger;
  now?: () => Date;
}

export interface ApplyOptions {
  /** The calling team; when set, only the owner may change a type (NOT_OWNER). */
  team?: string;
  /** Allow making a personal field non-personal. */
  force?: boolean;
}

export interface ApplyResult {
  eventType: string;
  /** What happened in the registry. */
  action: RecordChange['action'];
  details: string[];
  newVersion?: number;
  /** Resource changes made by provisioning. */
  changes: PlannedChange[];
  record: EventTypeRecord;
}

export interface SpecPlan {
  eventType: string;
  registry: { action: RecordChange['action']; details: string[] };
  resources: PlannedChange[];
  /** Why the spec would be refused, if it would. */
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

export interface CandidateCheck {
  compatible: boolean;
  mode: string;
  reasons: CompatibilityReason[];
  /** Schema problems (invalid Avro, annotations); the candidate is refused if any. */
  problems: Omit<SpecProblem, 'file'>[];
}

const MAX_WRITE_ATTEMPTS = 8;

export class Composer {
  readonly registry: RegistryStore;
  readonly provisioner: Provisioner | undefined;
  readonly catalogue: SemanticCatalogue;
  private readonly logger: Logger;
  private readonly now: () => Date;

  constructor(deps: ComposerDeps) {
    this.registry = deps.registry;
    this.provisioner = deps.provisioner;
    this.catalogue = deps.catalogue ?? defaultCatalogue;
    this.logger = deps.logger ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
  }

  /** Registers or updates a type from its (validated) spec, then provisions it. */
  async apply(spec: EventTypeSpec, options: ApplyOptions = {}): Promise<ApplyResult> {
    const decide = (existing: EventTypeRecord | undefined): RecordChange => {
      // The owner (or, for a new type, the team the spec names) may change it; the owner may hand it over.
      if (options.team !== undefined && (existing?.settings.owner ?? spec.owner) !== options.team) throw notOwner(spec.name, options.team);
      return planRecordChange(existing, spec, { catalogue: this.catalogue, force: options.force ?? false, now: this.now() });
    };
    await this.prepareTopicSchema(spec, decide);
    const { change, record } = await this.writeWithRetry(spec.name, decide);
    if (change.action !== 'none') this.logger.info('event type applied', { eventType: spec.name, action: change.action, newVersion: change.newVersion });
    const provisioned = await this.provision(record);
    return {
      eventType: spec.name,
      action: change.action,
      details: change.details,
      ...(change.newVersion === undefined ? {} : { newVersion: change.newVersion }),
      changes: provisioned.changes,
      record: provisioned.record,
    };
  }

  /**
   * A new schema version is committed to the topic's Pub/Sub schema before the
   * registry announces it, so the event service never publishes a version the
   * topic does not accept yet. A refused change commits nothing.
   */
  private async prepareTopicSchema(spec: EventTypeSpec, decide: (existing: EventTypeRecord | undefined) => RecordChange): Promise<void> {
    if (this.provisioner === undefined) return;
    const existing = await this.registry.getEventType(spec.name);
    if (existing === undefined || existing.status !== 'active') return;
    try {
      if (decide(existing).newVersion === undefined) return;
    } catch {
      return; // the write path reports it
    }
    await this.provisioner.prepareSchema(desiredOf({ ...existing, versions: [...existing.versions, { version: 0, fingerprint: '', schema: spec.schema, createdAt: '' }] }));
  }

  /** What `apply(spec)` would do, doing nothing. */
  async plan(spec: EventTypeSpec, options: ApplyOptions = {}): Promise<SpecPlan> {
    const existing = await this.registry.getEventType(spec.name);
    let change: RecordChange;
    try {
      if (options.team !== undefined && (existing?.settings.owner ?? spec.owner) !== options.team) throw notOwner(spec.name, options.team);
      change = planRecordChange(existing, spec, { catalogue: this.catalogue, force: options.force ?? false, now: this.now() });
    } catch (err) {
      if (!isAppError(err)) throw err;
      return { eventType: spec.name, registry: { action: 'none', details: [] }, resources: [], error: err.toJSON() };
    }
    const resources = this.provisioner === undefined ? [] : await this.provisioner.plan(desiredOf(change.next));
    return { eventType: spec.name, registry: { action: change.action, details: change.details }, resources };
  }

  /** Would `schema` be accepted as the type's next version? Registers nothing. */
  async checkCandidate(name: string, schema: AvroSchemaJson, options: { force?: boolean } = {}): Promise<CandidateCheck> {
    const record = await this.mustGet(name);
    const mode = record.settings.compatibility;
    const problems = schemaProblems(schema, this.catalogue);
    if (problems.length > 0) return { compatible: false, mode, reasons: [], problems };
    const result = checkMode(mode, schema, record.versions.map((v) => v.schema));
    const downgrades = options.force === true ? [] : personalDowngrades(currentVersion(record).schema, schema, this.catalogue);
    const reasons = [...result.reasons, ...downgrades];
    return { compatible: reasons.length === 0, mode, reasons, problems };
  }

  /**
   * Deprecates a type: the event service rejects its events from now on, the
   * ETL drains its subscription, then the reconciler removes the Pub/Sub
   * resources (data in storage stays, per its retention). Idempotent.
   */
  async deprecate(name: string, options: { team?: string } = {}): Promise<ApplyResult> {
    const { record } = await this.writeWithRetry(name, (existing) => {
      if (existing === undefined) throw new AppError('EVENT_TYPE_NOT_FOUND', { message: `unknown event type ${name}`, details: { eventType: name } });
      if (options.team !== undefined && existing.settings.owner !== options.team) throw notOwner(name, options.team);
      if (existing.status !== 'active') return { action: 'none', details: [], next: existing };
      const at = this.now().toISOString();
      return {
        action: 'update',
        details: ['status: active → deprecated'],
        next: { ...existing, status: 'deprecated', updatedAt: at, provisioning: { ...existing.provisioning, state: 'draining', updatedAt: at } },
      };
    });
    this.logger.info('event type deprecated', { eventType: name });
    const provisioned = await this.provision(record);
    return { eventType: name, action: 'update', details: ['deprecated'], changes: provisioned.changes, record: provisioned.record };
  }

  /** Re-runs provisioning for one type (e.g. to finish draining). */
  async reconcile(name: string): Promise<{ changes: PlannedChange[]; record: EventTypeRecord }> {
    return this.provision(await this.mustGet(name));
  }

  /** Re-runs provisioning for every type not yet fully provisioned or removed. */
  async reconcileAll(): Promise<PlannedChange[]> {
    const out: PlannedChange[] = [];
    for (const r of await this.registry.listEventTypes()) {
      if (r.provisioning.state === 'removed') continue;
      out.push(...(await this.provision(r)).changes);
    }
    return out;
  }

  async get(name: string): Promise<EventTypeRecord> {
    return this.mustGet(name);
  }

  private async mustGet(name: string): Promise<EventTypeRecord> {
    const record = await this.registry.getEventType(name);
    if (record === undefined) throw new AppError('EVENT_TYPE_NOT_FOUND', { message: `unknown event type ${name}`, details: { eventType: name } });
    return record;
  }

  /** Read, decide, conditional write; on a lost race, read again and decide again. */
  private async writeWithRetry(name: string, decide: (existing: EventTypeRecord | undefined) => RecordChange): Promise<{ change: RecordChange; record: EventTypeRecord }> {
    for (let attempt = 1; ; attempt++) {
      const existing = await this.registry.getEventType(name);
      const change = decide(existing);
      if (change.action === 'none') return { change, record: change.next };
      try {
        const record = await this.registry.putEventType(change.next, existing?.revision ?? 0);
        return { change, record };
      } catch (err) {
        const lostRace = isAppError(err) && (err.code === 'CONCURRENT_UPDATE' || err.code === 'EVENT_TYPE_EXISTS');
        if (!lostRace || attempt >= MAX_WRITE_ATTEMPTS) throw err;
        this.logger.debug('registry write lost a race; retrying', { eventType: name, attempt });
      }
    }
  }

  /** Reconciles the type's resources and records the provisioning state (if it changed). */
  private async provision(record: EventTypeRecord): Promise<{ changes: PlannedChange[]; record: EventTypeRecord }> {
    if (this.provisioner === undefined) return { changes: [], record };
    const { changes, provisioning } = await this.provisioner.reconcile(desiredOf(record));
    const saved = await this.saveProvisioning(record.settings.name, provisioning);
    if (provisioning.state === 'failed') {
      throw new AppError('PROVISIONING_FAILED', { message: `provisioning ${record.settings.name} failed: ${provisioning.error ?? 'unknown'}`, details: { eventType: record.settings.name, changes } });
    }
    return { changes, record: saved };
  }

  private async saveProvisioning(name: string, provisioning: ProvisioningState): Promise<EventTypeRecord> {
    const { record } = await this.writeWithRetry(name, (existing) => {
      if (existing === undefined) throw new AppError('EVENT_TYPE_NOT_FOUND', { details: { eventType: name } });
      const same = JSON.stringify({ ...existing.provisioning, updatedAt: '' }) === JSON.stringify({ ...provisioning, updatedAt: '' });
      if (same) return { action: 'none', details: [], next: existing };
      return { action: 'update', details: ['provisioning'], next: { ...existing, provisioning } };
    });
    return record;
  }
}

/** The desired state of a registered type's resources. */
export function desiredOf(record: EventTypeRecord): DesiredEventType {
  return {
    settings: record.settings,
    schema: currentVersion(record).schema,
    deprecated: record.status !== 'active',
    previous: record.provisioning,
  };
}

function notOwner(name: string, team: string): AppError {
  return new AppError('NOT_OWNER', { message: `team ${team} does not own event type ${name}`, details: { eventType: name, team } });
}
