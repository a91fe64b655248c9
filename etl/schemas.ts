/**
 * Writer schemas of one event type, by fingerprint, with their avsc types and
 * delivered schemas; refreshed from the registry when an unknown fingerprint
 * shows up (a new version registered after the worker started). A version
 * whose delivered schema would hold personal fields in clear is refused
 * (etl/personal-guard.ts): never resolvable, so its records stay un-acked.
 */
import type avro from 'avsc';
import { avroType } from '../lib/avro/long.ts';
import type { AvroSchemaJson, EventTypeRecord, RegistryReader, SchemaVersion } from '../lib/registry/types.ts';
import type { SemanticCatalogue } from '../lib/semantic-types.ts';
import { clearPersonalData, type ClearPersonalData } from './personal-guard.ts';
import type { RecordTransform } from './transform.ts';

export interface ResolvedVersion {
  version: SchemaVersion;
  writerType: avro.Type;
  deliveredSchema: AvroSchemaJson;
  deliveredType: avro.Type;
}

export class SchemaResolver {
  private readonly byFingerprint = new Map<string, ResolvedVersion>();
  private readonly refusedVersions = new Map<string, ClearPersonalData>();
  private lastRefresh = 0;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly eventType: string,
    private readonly registry: RegistryReader,
    private readonly transform: RecordTransform,
    private readonly minRefreshMs: number,
    private readonly now: () => number = Date.now,
    private readonly catalogue?: SemanticCatalogue,
  ) {}

  /** Loads `record`'s versions (new ones only; versions are immutable); returns every refused version. */
  load(record: EventTypeRecord): ClearPersonalData[] {
    for (const v of record.versions) {
      if (this.byFingerprint.has(v.fingerprint) || this.refusedVersions.has(v.fingerprint)) continue;
      const deliveredSchema = this.transform.deliveredSchema(v.schema);
      const clear = clearPersonalData(v, deliveredSchema, this.catalogue);
      if (clear !== undefined) {
        this.refusedVersions.set(v.fingerprint, clear);
        continue;
      }
      const writerType = avroType(v.schema);
      const deliveredType = deliveredSchema === v.schema ? writerType : avroType(deliveredSchema);
      this.byFingerprint.set(v.fingerprint, { version: v, writerType, deliveredSchema, deliveredType });
    }
    return this.refused();
  }

  /** Versions refused because they would deliver personal fields in clear. */
  refused(): ClearPersonalData[] {
    return [...this.refusedVersions.values()];
  }

  /** Whether `fingerprint` names a refused version (its records must not be staged nor dead-lettered). */
  isRefused(fingerprint: string): boolean {
    return this.refusedVersions.has(fingerprint);
  }

  get(fingerprint: string): ResolvedVersion | undefined {
    return this.byFingerprint.get(fingerprint);
  }

  /** Re-reads the registry, at most once per `minRefreshMs` (concurrent callers share one read). */
  async refresh(force = false): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    if (!force && this.now() - this.lastRefresh < this.minRefreshMs) return;
    this.refreshing = (async () => {
      try {
        const record = await this.registry.getEventType(this.eventType);
        if (record !== undefined) this.load(record);
      } finally {
        this.lastRefresh = this.now();
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Resolves a fingerprint, refreshing the registry once if it is unknown. */
  async resolve(fingerprint: string): Promise<ResolvedVersion | undefined> {
    const known = this.get(fingerprint);
    if (known !== undefined) return known;
    await this.refresh();
    return this.get(fingerprint);
  }
}
