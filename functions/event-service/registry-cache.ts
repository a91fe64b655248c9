/**
 * The event service's view of the registry: every event type compiled for
 * ingestion (avsc types, the JSON payload decoder, resolvers from older
 * versions), refreshed every `refreshMs` so a newly applied type is accepted
 * within seconds without a restart. A failed refresh keeps the last good view.
 */
import type avro from 'avsc';
import { currentVersion, type EventTypeRecord, type EventTypeStatus, type RegistryReader } from '../../lib/registry/types.ts';
import type { Logger } from '../../lib/logger.ts';
import { compilePayloadDecoder, parseSchema, type PayloadDecoder } from './validation.ts';

/** One registered schema version, compiled lazily for decoding Avro binary written with it. */
export interface CompiledVersion {
  version: number;
  fingerprint: string;
  /** Writer type of this version. */
  type: avro.Type;
}

/** An event type ready for ingestion. */
export interface CompiledEventType {
  name: string;
  status: EventTypeStatus;
  revision: number;
  /** Current schema version: what every accepted event is encoded with. */
  current: CompiledVersion;
  decodePayload: PayloadDecoder;
  /** Every registered version by fingerprint (the current one included). */
  versions: ReadonlyMap<string, CompiledVersion>;
  /** Resolver reading data written with `writer` into the current schema (cached). */
  resolverFor(writer: CompiledVersion): avro.Resolver;
}

export interface RegistryCacheOptions {
  refreshMs: number;
  logger: Logger;
}

/** Compiles one registry record; throws if a schema does not parse. */
export function compileEventType(record: EventTypeRecord): CompiledEventType {
  const cur = currentVersion(record);
  const versions = new Map<string, CompiledVersion>();
  for (const v of record.versions) {
    versions.set(v.fingerprint, { version: v.version, fingerprint: v.fingerprint, type: parseSchema(v.schema) });
  }
  const current = versions.get(cur.fingerprint)!;
  const resolvers = new Map<string, avro.Resolver>();
  return {
    name: record.settings.name,
    status: record.status,
    revision: record.revision,
    current,
    decodePayload: compilePayloadDecoder(current.type),
    versions,
    resolverFor(writer) {
      let r = resolvers.get(writer.fingerprint);
      if (r === undefined) {
        r = current.type.createResolver(writer.type);
        resolvers.set(writer.fingerprint, r);
      }
      return r;
    },
  };
}

export class RegistryCache {
  private types = new Map<string, CompiledEventType>();
  /** Fingerprint → types that registered it (one, unless two types share a schema). */
  private byFingerprint = new Map<string, CompiledEventType[]>();
  private timer: NodeJS.Timeout | undefined;
  private loaded = false;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly reader: RegistryReader,
    private readonly options: RegistryCacheOptions,
  ) {}

  /** True once the registry was read successfully at least once (readiness). */
  get ready(): boolean {
    return this.loaded;
  }

  /** Loads the registry now (retrying in the background if it fails) and keeps refreshing it. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  get(name: string): CompiledEventType | undefined {
    return this.types.get(name);
  }

  /** Types that registered a schema with this fingerprint. */
  typesWithFingerprint(fingerprint: string): readonly CompiledEventType[] {
    return this.byFingerprint.get(fingerprint) ?? [];
  }

  /** Reads the registry and recompiles the types whose revision changed. Never throws. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    let records: EventTypeRecord[];
    try {
      records = await this.reader.listEventTypes();
    } catch (err) {
      this.options.logger.warn('registry refresh failed; keeping the last good view', { error: err });
      return;
    }
    const next = new Map<string, CompiledEventType>();
    for (const record of records) {
      const name = record.settings.name;
      const previous = this.types.get(name);
      if (previous !== undefined && previous.revision === record.revision) {
        next.set(name, previous);
        continue;
      }
      try {
        next.set(name, compileEventType(record));
        if (previous !== undefined) this.options.logger.info('event type updated', { eventType: name, revision: record.revision });
      } catch (err) {
        // A record that does not compile is a registry bug; keep serving the old version if any.
        this.options.logger.error('event type schema does not compile', { eventType: name, error: err });
        if (previous !== undefined) next.set(name, previous);
      }
    }
    const index = new Map<string, CompiledEventType[]>();
    for (const t of next.values()) {
      for (const fp of t.versions.keys()) {
        const list = index.get(fp);
        if (list === undefined) index.set(fp, [t]);
        else list.push(t);
      }
    }
    this.types = next;
    this.byFingerprint = index;
    this.loaded = true;
  }
}
