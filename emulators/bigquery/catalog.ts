/**
 * The emulator's state in memory (datasets, tables, partitions, jobs) and the
 * dataset and table operations of the REST API. Every change is made in one
 * synchronous step, so readers see a table before or after it, and then
 * persisted in order per table.
 */
import type { Logger } from '../../lib/logger.ts';
import { errors } from './errors.ts';
import type { DatasetRecord, JobRecord, Partition, TableMeta, TableState } from './model.ts';
import { checkDecorator, parseTimePartitioning, partitionExpired, splitDecorator } from './partitioning.ts';
import type { Persistence } from './persistence.ts';
import { evolveSchema, parseSchema, type TableField } from './schema.ts';

const DATASET_ID = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE_ID = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}]{1,1024}$/u;
const PROJECT_ID = /^[a-z][a-z0-9.:-]{0,127}$/;
const DEFAULT_LOCATION = 'US';

export class Catalog {
  private readonly datasets = new Map<string, DatasetRecord>();
  private readonly tables = new Map<string, Map<string, TableState>>();
  readonly jobs = new Map<string, JobRecord>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    readonly persistence: Persistence,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  static async open(persistence: Persistence, logger: Logger): Promise<Catalog> {
    const c = new Catalog(persistence, logger);
    const { datasets, tables, jobs } = await persistence.loadAll();
    for (const ds of datasets) {
      c.datasets.set(dsKey(ds.projectId, ds.datasetId), ds);
      c.tables.set(dsKey(ds.projectId, ds.datasetId), new Map());
    }
    for (const t of tables) c.tables.get(dsKey(t.meta.projectId, t.meta.datasetId))?.set(t.meta.tableId, t);
    for (const j of jobs) c.jobs.set(jobKey(j.projectId, j.jobId), j);
    return c;
  }

  /** Waits for every pending write. */
  async flush(): Promise<void> {
    await Promise.all([...this.writes.values()]);
  }

  // ---- datasets

  insertDataset(projectId: string, body: Record<string, unknown>): DatasetRecord {
    checkProject(projectId);
    const ref = (body.datasetReference ?? {}) as { datasetId?: unknown; projectId?: unknown };
    if (typeof ref.datasetId !== 'string') throw errors.required('Required parameter is missing: datasetReference.datasetId');
    if (!DATASET_ID.test(ref.datasetId)) throw errors.invalid(`Invalid dataset ID "${ref.datasetId.slice(0, 1024)}". Dataset IDs must be alphanumeric (plus underscores) and must be at most 1024 characters long.`);
    if (ref.projectId !== undefined && ref.projectId !== projectId) throw errors.invalid('datasetReference.projectId does not match the project in the path.');
    const key = dsKey(projectId, ref.datasetId);
    if (this.datasets.has(key)) throw errors.duplicate(`Dataset ${projectId}:${ref.datasetId}`);
    const t = String(this.now());
    const ds: DatasetRecord = { projectId, datasetId: ref.datasetId, location: typeof body.location === 'string' ? body.location : DEFAULT_LOCATION, creationTime: t, lastModifiedTime: t };
    applyDescriptive(ds, body);
    this.datasets.set(key, ds);
    this.tables.set(key, new Map());
    this.persist(key, () => this.persistence.saveDataset(ds));
    return ds;
  }

  getDataset(projectId: string, datasetId: string): DatasetRecord {
    const ds = this.datasets.get(dsKey(projectId, datasetId));
    if (ds === undefined) throw errors.notFound(`Dataset ${projectId}:${datasetId}`);
    return ds;
  }

  patchDataset(projectId: string, datasetId: string, body: Record<string, unknown>): DatasetRecord {
    const ds = this.getDataset(projectId, datasetId);
    applyDescriptive(ds, body);
    ds.lastModifiedTime = String(this.now());
    this.persist(dsKey(projectId, datasetId), () => this.persistence.saveDataset(ds));
    return ds;
  }

  listDatasets(projectId: string): DatasetRecord[] {
    return [...this.datasets.values()].filter((d) => d.projectId === projectId).sort((a, b) => (a.datasetId < b.datasetId ? -1 : 1));
  }

  deleteDataset(projectId: string, datasetId: string, deleteContents: boolean): void {
    const key = dsKey(projectId, datasetId);
    this.getDataset(projectId, datasetId);
    const tables = this.tables.get(key);
    if (tables !== undefined && tables.size > 0 && !deleteContents) throw errors.resourceInUse(`Dataset ${projectId}:${datasetId} is still in use`);
    this.datasets.delete(key);
    this.tables.delete(key);
    this.persist(key, () => this.persistence.deleteDataset(projectId, datasetId));
  }

  // ---- tables

  insertTable(projectId: string, datasetId: string, body: Record<string, unknown>): TableState {
    this.getDataset(projectId, datasetId);
    const ref = (body.tableReference ?? {}) as { tableId?: unknown };
    if (typeof ref.tableId !== 'string') throw errors.required('Required parameter is missing: tableReference.tableId');
    checkTableId(ref.tableId);
    if (this.findTable(projectId, datasetId, ref.tableId) !== undefined) throw errors.duplicate(`Table ${projectId}:${datasetId}.${ref.tableId}`);
    if (body.view !== undefined || body.materializedView !== undefined || body.externalDataConfiguration !== undefined) {
      throw errors.invalid('Views, materialized views and external tables are not supported by the emulator.');
    }
    if (body.rangePartitioning !== undefined) throw errors.invalid('rangePartitioning is not supported by the emulator.');
    const schema = body.schema === undefined ? [] : parseSchema(body.schema);
    const t = String(this.now());
    const meta: TableMeta = { projectId, datasetId, tableId: ref.tableId, schema, creationTime: t, lastModifiedTime: t };
    applyTableOptions(meta, body, true);
    return this.createTable({ meta, partitions: new Map(), committedJobs: [] });
  }

  /** Registers a new table (tables.insert, or a load job that creates its destination). */
  createTable(table: TableState): TableState {
    const { meta } = table;
    this.getDataset(meta.projectId, meta.datasetId);
    this.tables.get(dsKey(meta.projectId, meta.datasetId))!.set(meta.tableId, table);
    this.saveTable(table, new Set());
    return table;
  }

  /** The table named by `rawTableId` (maybe with a partition decorator) or a 404. */
  getTable(projectId: string, datasetId: string, rawTableId: string): { table: TableState; partition: string | undefined } {
    const { tableId, partition } = splitDecorator(rawTableId);
    this.getDataset(projectId, datasetId);
    const table = this.findTable(projectId, datasetId, tableId);
    if (table === undefined) throw errors.notFound(`Table ${projectId}:${datasetId}.${tableId}`);
    if (partition !== undefined) checkDecorator(tableName(table.meta), partition, table.meta.timePartitioning);
    return { table, partition };
  }

  /** The table if it exists (expired tables and partitions are dropped on the way). */
  findTable(projectId: string, datasetId: string, tableId: string): TableState | undefined {
    const tables = this.tables.get(dsKey(projectId, datasetId));
    const table = tables?.get(tableId);
    if (table === undefined) return undefined;
    const now = this.now();
    if (table.meta.expirationTime !== undefined && Number(table.meta.expirationTime) <= now) {
      this.dropTable(table);
      return undefined;
    }
    const tp = table.meta.timePartitioning;
    if (tp?.expirationMs !== undefined) {
      const expired = [...table.partitions.keys()].filter((id) => partitionExpired(id, tp, now));
      if (expired.length > 0) {
        const partitions = new Map(table.partitions);
        for (const id of expired) partitions.delete(id);
        table.partitions = partitions;
        this.saveTable(table, new Set());
      }
    }
    return table;
  }

  listTables(projectId: string, datasetId: string): TableState[] {
    this.getDataset(projectId, datasetId);
    return [...(this.tables.get(dsKey(projectId, datasetId))?.keys() ?? [])]
      .sort()
      .map((id) => this.findTable(projectId, datasetId, id))
      .filter((t): t is TableState => t !== undefined);
  }

  /** tables.patch (and tables.update with `replace`): schema additions and relaxations, descriptive fields. */
  patchTable(projectId: string, datasetId: string, rawTableId: string, body: Record<string, unknown>, replace: boolean): TableState {
    const { table, partition } = this.getTable(projectId, datasetId, rawTableId);
    if (partition !== undefined) throw errors.invalid('Cannot change the metadata of a partition; patch the table.');
    const meta: TableMeta = structuredClone(table.meta);
    if (body.schema !== undefined) {
      const next = parseSchema(body.schema);
      meta.schema = evolveSchema(tableName(meta), meta.schema, next, { allowFieldAddition: true, allowFieldRelaxation: true, requireAll: true });
    } else if (replace) {
      throw errors.invalid(`Provided Schema does not match Table ${tableName(meta)}. Cannot remove all fields.`);
    }
    if (body.timePartitioning !== undefined) {
      const tp = parseTimePartitioning(body.timePartitioning, meta.schema);
      const cur = meta.timePartitioning;
      if (cur === undefined || cur.type !== tp.type || (cur.field ?? '') !== (tp.field ?? '')) {
        throw errors.invalid(`Cannot change partitioning spec for table ${tableName(meta)}; only timePartitioning.expirationMs may change.`);
      }
      meta.timePartitioning = tp;
    }
    applyTableOptions(meta, body, false);
    meta.lastModifiedTime = String(this.now());
    table.meta = meta;
    this.saveTable(table, new Set());
    return table;
  }

  deleteTable(projectId: string, datasetId: string, rawTableId: string): void {
    const { table, partition } = this.getTable(projectId, datasetId, rawTableId);
    if (partition !== undefined) {
      const partitions = new Map(table.partitions);
      partitions.delete(partition);
      table.partitions = partitions;
      table.meta.lastModifiedTime = String(this.now());
      this.saveTable(table, new Set());
      return;
    }
    this.dropTable(table);
  }

  private dropTable(table: TableState): void {
    this.tables.get(dsKey(table.meta.projectId, table.meta.datasetId))?.delete(table.meta.tableId);
    this.persist(tableKey(table.meta), () => this.persistence.deleteTable(table.meta));
  }

  /** Replaces a table's partitions in one step (a load job's commit) and persists them. */
  commitPartitions(table: TableState, partitions: Map<string, Partition>, changed: ReadonlySet<string>, schema: TableField[], jobId: string): Promise<void> {
    table.partitions = partitions;
    table.meta = { ...table.meta, schema, lastModifiedTime: String(this.now()) };
    table.committedJobs = [...table.committedJobs.slice(-999), jobId];
    return this.saveTable(table, changed);
  }

  saveTable(table: TableState, changed: ReadonlySet<string>): Promise<void> {
    // Snapshot now: later commits replace these objects rather than mutate them.
    const snapshot: TableState = { meta: table.meta, partitions: table.partitions, committedJobs: table.committedJobs };
    return this.persist(tableKey(table.meta), () => this.persistence.saveTable(snapshot, changed));
  }

  saveJob(job: JobRecord): Promise<void> {
    const snapshot = { ...job };
    return this.persist(`job\u0000${job.projectId}\u0000${job.jobId}`, () => this.persistence.saveJob(snapshot));
  }

  /** Runs `write` after the previous write of `key`; a failed write is logged, never thrown at a later caller. */
  private persist(key: string, write: () => Promise<void>): Promise<void> {
    const prev = this.writes.get(key) ?? Promise.resolve();
    const next = prev.then(write).catch((err: unknown) => {
      this.logger.error('persisting emulator state failed', { key, err: err instanceof Error ? err : String(err) });
    });
    this.writes.set(key, next);
    void next.then(() => {
      if (this.writes.get(key) === next) this.writes.delete(key);
    });
    return next;
  }

  /** The emulator's clock (milliseconds since the epoch). */
  nowMs(): number {
    return this.now();
  }
}

export function dsKey(projectId: string, datasetId: string): string {
  return `${projectId}\u0000${datasetId}`;
}

export function jobKey(projectId: string, jobId: string): string {
  return `${projectId}\u0000${jobId}`;
}

function tableKey(m: TableMeta): string {
  return `${m.projectId}\u0000${m.datasetId}\u0000${m.tableId}`;
}

/** `project:dataset.table`, as BigQuery names tables in messages. */
export function tableName(m: { projectId: string; datasetId: string; tableId: string }): string {
  return `${m.projectId}:${m.datasetId}.${m.tableId}`;
}

export function checkProject(projectId: string): void {
  if (!PROJECT_ID.test(projectId)) throw errors.invalid(`Invalid project ID '${projectId.slice(0, 128)}'.`);
}

export function checkTableId(tableId: string): void {
  if (!TABLE_ID.test(tableId)) throw errors.invalid(`Invalid table ID "${tableId.slice(0, 1024)}". Table IDs must contain only letters, marks, numbers, connectors, dashes or spaces, and be at most 1024 characters long.`);
}

/** The partitions of `table` a request addresses: one (decorator), or all. */
export function partitionsOf(table: TableState, partition: string | undefined): Partition[] {
  if (partition === undefined) return [...table.partitions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const p = table.partitions.get(partition);
  return p === undefined ? [] : [p];
}

function applyDescriptive(target: { description?: string; friendlyName?: string; labels?: Record<string, string> }, body: Record<string, unknown>): void {
  if (body.description !== undefined) {
    if (body.description === null) delete target.description;
    else if (typeof body.description === 'string' && body.description.length <= 16384) target.description = body.description;
    else throw errors.invalid('description: expected a string of at most 16384 characters.');
  }
  if (body.friendlyName !== undefined) {
    if (body.friendlyName === null) delete target.friendlyName;
    else if (typeof body.friendlyName === 'string' && body.friendlyName.length <= 1024) target.friendlyName = body.friendlyName;
    else throw errors.invalid('friendlyName: expected a string of at most 1024 characters.');
  }
  if (body.labels !== undefined) {
    if (body.labels === null) {
      delete target.labels;
      return;
    }
    if (typeof body.labels !== 'object' || Array.isArray(body.labels)) throw errors.invalid('labels: expected an object of strings.');
    const labels: Record<string, string> = {};
    const entries = Object.entries(body.labels as Record<string, unknown>);
    if (entries.length > 64) throw errors.invalid('labels: at most 64 labels.');
    for (const [k, v] of entries) {
      if (!/^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u.test(k)) throw errors.invalid(`Invalid label key "${k.slice(0, 63)}".`);
      if (typeof v !== 'string' || !/^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u.test(v)) throw errors.invalid(`Invalid value for label "${k}".`);
      labels[k] = v;
    }
    target.labels = labels;
  }
}

/** Partitioning, clustering, expiration and descriptive fields of a table request. */
export function applyTableOptions(meta: TableMeta, body: Record<string, unknown>, creating: boolean): void {
  applyDescriptive(meta, body);
  if (creating && body.timePartitioning !== undefined && body.timePartitioning !== null) {
    meta.timePartitioning = parseTimePartitioning(body.timePartitioning, meta.schema);
    const legacy = (body.timePartitioning as { requirePartitionFilter?: unknown }).requirePartitionFilter;
    if (legacy === true) meta.requirePartitionFilter = true;
  }
  if (body.requirePartitionFilter !== undefined && body.requirePartitionFilter !== null) {
    if (typeof body.requirePartitionFilter !== 'boolean') throw errors.invalid('requirePartitionFilter: expected a boolean.');
    if (body.requirePartitionFilter && meta.timePartitioning === undefined) throw errors.invalid('requirePartitionFilter can only be set on a partitioned table.');
    meta.requirePartitionFilter = body.requirePartitionFilter;
  }
  if (body.clustering !== undefined) {
    if (body.clustering === null) delete meta.clustering;
    else {
      const fields = (body.clustering as { fields?: unknown }).fields;
      if (!Array.isArray(fields) || fields.length === 0 || fields.length > 4 || !fields.every((f) => typeof f === 'string')) {
        throw errors.invalid('clustering.fields: expected 1 to 4 column names.');
      }
      for (const f of fields as string[]) {
        const col = meta.schema.find((c) => c.name.toLowerCase() === f.toLowerCase());
        if (col === undefined) throw errors.invalid(`The field specified for clustering cannot be found in the schema. Invalid field: ${f}.`);
        if (col.mode === 'REPEATED' || col.type === 'RECORD' || col.type === 'FLOAT' || col.type === 'JSON') {
          throw errors.invalid(`Field ${col.name} is of type ${col.mode === 'REPEATED' ? 'REPEATED ' : ''}${col.type} which is not supported for clustering.`);
        }
      }
      meta.clustering = { fields: fields as string[] };
    }
  }
  if (body.expirationTime !== undefined) {
    if (body.expirationTime === null) delete meta.expirationTime;
    else {
      const v = String(body.expirationTime);
      if (!/^\d{1,16}$/.test(v)) throw errors.invalid('expirationTime: expected milliseconds since the epoch.');
      meta.expirationTime = v;
    }
  }
}

