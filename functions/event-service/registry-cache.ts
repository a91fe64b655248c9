/**
 * The event service's view of the registry: every event type compiled for
 * ingestion (avsc types, the JSON payload decoder, resolvers from older
 * versions), refreshed every `refreshMs` so a newly applied type is accepted
 * within seconds without a restart. A failed refresh keeps the last good view.
 */
import type avro from 'avsc';
import { currentVersion, type EventTypeRecord, type EventTypeStatus, type RegistryReader } from '../../lib/registry/types.ts';
import type { Logger } from '../../lib/logger.ts';
import { inspectAnnotations, valuesAt, type PathStep } from '../../lib/avro/annotations.ts';
import { avroType } from '../../lib/avro/long.ts';
import { userIdProblem } from '../../lib/user-id.ts';
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
  /** Whether reading `writer` data with the current schema may promote a long to a float or double (cached). */
  promotesLong(writer: CompiledVersion): boolean;
  /**
   * Why the data subject (`semanticType: userId`) of a payload encoded with the current schema
   * is not a user id padlock takes (`payload.<path>: <reason>`), or undefined; types without one cost nothing.
   */
  subjectProblem(data: Buffer): string | undefined;
}

/** Padlock refuses a subject that is not a well-formed user id: refuse the event at the door instead of dead-lettering it later. */
function subjectProblemAt(payload: unknown, path: string, steps: readonly PathStep[]): string | undefined {
  for (const value of valuesAt(payload, steps)) {
    if (value === null || value === undefined) continue;
    const problem = userIdProblem(value);
    if (problem !== undefined) return `payload.${path}: a user id ${problem}`;
  }
  return undefined;
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
  const subject = inspectAnnotations(cur.schema).fields.find((f) => f.subject);
  // Plain values (unions never wrapped), for walking the subject's path.
  const plain = subject === undefined ? undefined : avroType(cur.schema, { wrapUnions: 'never' });
  const resolvers = new Map<string, avro.Resolver>();
  const promotions = new Map<string, boolean>();
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
    subjectProblem: (data) => (subject === undefined || plain === undefined ? undefined : subjectProblemAt(plain.fromBuffer(data), subject.path, subject.steps)),
    promotesLong(writer) {
      let p = promotions.get(writer.fingerprint);
      if (p === undefined) {
        p = mayPromoteLong(current.type, writer.type, new Set());
        promotions.set(writer.fingerprint, p);
      }
      return p;
    },
  };
}

const LONG_NAMES = new Set(['long', 'abstract:long']);

/**
 * Whether reading `writer` data as `reader` may promote a long to a float or
 * double somewhere. Conservative (unions: every pair of branches; records:
 * fields of the same name), which is all its one use needs.
 */
function mayPromoteLong(reader: avro.Type, writer: avro.Type, seen: Set<string>): boolean {
  const r = underlying(reader);
  const w = underlying(writer);
  if (w.typeName.startsWith('union')) return (w as avro.types.WrappedUnionType).types.some((b) => mayPromoteLong(r, b, seen));
  if (r.typeName.startsWith('union')) return (r as avro.types.WrappedUnionType).types.some((b) => mayPromoteLong(b, w, seen));
  if ((r.typeName === 'float' || r.typeName === 'double') && LONG_NAMES.has(w.typeName)) return true;
  if (r.typeName === 'array' && w.typeName === 'array') {
    return mayPromoteLong((r as avro.types.ArrayType).itemsType, (w as avro.types.ArrayType).itemsType, seen);
  }
  if (r.typeName === 'map' && w.typeName === 'map') return mayPromoteLong((r as avro.types.MapType).valuesType, (w as avro.types.MapType).valuesType, seen);
  if (r.typeName === 'record' && w.typeName === 'record') {
    // Recursive schemas: each pair of named records is looked at once.
    const key = `${r.name ?? ''}\u0000${w.name ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    const writerFields = new Map((w as avro.types.RecordType).fields.map((f) => [f.name, f.type]));
    return (r as avro.types.RecordType).fields.some((f) => {
      const wf = writerFields.get(f.name);
      return wf !== undefined && mayPromoteLong(f.type, wf, seen);
    });
  }
  return false;
}

function underlying(type: avro.Type): avro.Type {
  return type.typeName.startsWith('logical:') ? (type as unknown as { underlyingType: avro.Type }).underlyingType : type;
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
