/**
 * Load jobs from Avro files in Cloud Storage: read and decode every source
 * file, map it with BigQuery's Avro conversions, then commit to the
 * destination in one step: the table, or with a decorator (`t$2024010112`)
 * one partition. A failure anywhere leaves the destination as it was.
 */
import { applyTableOptions, Catalog, checkTableId, tableName } from './catalog.ts';
import { openAvroFile } from './avro-file.ts';
import { mapAvroSchema } from './avro-mapping.ts';
import { errors } from './errors.ts';
import type { GcsSource } from './gcs-source.ts';
import type { Partition, TableMeta, TableState } from './model.ts';
import { checkDecorator, parseTimePartitioning, partitionOfCell, partitionOfMs, splitDecorator, WHOLE_TABLE } from './partitioning.ts';
import { evolveSchema, findField, parseSchema, type TableField } from './schema.ts';
import { rowBytes, type Row } from './values.ts';

export type WriteDisposition = 'WRITE_TRUNCATE' | 'WRITE_APPEND' | 'WRITE_EMPTY';
export type CreateDisposition = 'CREATE_IF_NEEDED' | 'CREATE_NEVER';

export interface LoadConfig {
  sourceUris: string[];
  destination: { projectId: string; datasetId: string; tableId: string; partition: string | undefined };
  writeDisposition: WriteDisposition;
  createDisposition: CreateDisposition;
  allowFieldAddition: boolean;
  allowFieldRelaxation: boolean;
  useAvroLogicalTypes: boolean;
  /** Table options used when the job creates its destination. */
  create: Record<string, unknown>;
}

export interface LoadStatistics {
  inputFiles: string;
  inputFileBytes: string;
  outputRows: string;
  outputBytes: string;
  badRecords: string;
}

/** Checks `configuration.load` (what jobs.insert refuses with a 400). */
export function parseLoadConfig(projectId: string, load: unknown): LoadConfig {
  if (typeof load !== 'object' || load === null || Array.isArray(load)) throw errors.invalid('configuration.load: expected an object.');
  const l = load as Record<string, unknown>;
  const uris = l.sourceUris;
  if (!Array.isArray(uris) || uris.length === 0 || !uris.every((u) => typeof u === 'string')) throw errors.required('Required parameter is missing: configuration.load.sourceUris');
  if (uris.length > 10_000) throw errors.invalid('configuration.load.sourceUris: at most 10000 URIs.');
  const format = l.sourceFormat ?? 'CSV';
  if (format !== 'AVRO') throw errors.invalid(`Source format ${String(format)} is not supported by the emulator (only AVRO is).`);
  const dest = l.destinationTable as { projectId?: unknown; datasetId?: unknown; tableId?: unknown } | undefined;
  if (dest === undefined || typeof dest.datasetId !== 'string' || typeof dest.tableId !== 'string') {
    throw errors.required('Required parameter is missing: configuration.load.destinationTable');
  }
  const { tableId, partition } = splitDecorator(dest.tableId);
  checkTableId(tableId);
  const write = l.writeDisposition ?? 'WRITE_APPEND';
  if (write !== 'WRITE_TRUNCATE' && write !== 'WRITE_APPEND' && write !== 'WRITE_EMPTY') throw errors.invalid(`Invalid writeDisposition ${JSON.stringify(write)}.`);
  const create = l.createDisposition ?? 'CREATE_IF_NEEDED';
  if (create !== 'CREATE_IF_NEEDED' && create !== 'CREATE_NEVER') throw errors.invalid(`Invalid createDisposition ${JSON.stringify(create)}.`);
  const options = l.schemaUpdateOptions ?? [];
  if (!Array.isArray(options)) throw errors.invalid('schemaUpdateOptions: expected an array.');
  for (const o of options) {
    if (o !== 'ALLOW_FIELD_ADDITION' && o !== 'ALLOW_FIELD_RELAXATION') throw errors.invalid(`Invalid schemaUpdateOptions value ${JSON.stringify(o)}.`);
  }
  if (options.length > 0 && !(write === 'WRITE_APPEND' || (write === 'WRITE_TRUNCATE' && partition !== undefined))) {
    throw errors.invalid('Schema update options should only be specified with WRITE_APPEND disposition, or with WRITE_TRUNCATE disposition on a table partition.');
  }
  const createOpts: Record<string, unknown> = {};
  for (const k of ['schema', 'timePartitioning', 'clustering', 'destinationTableProperties'] as const) if (l[k] !== undefined) createOpts[k] = l[k];
  return {
    sourceUris: uris as string[],
    destination: { projectId: typeof dest.projectId === 'string' ? dest.projectId : projectId, datasetId: dest.datasetId, tableId, partition },
    writeDisposition: write,
    createDisposition: create,
    allowFieldAddition: options.includes('ALLOW_FIELD_ADDITION'),
    allowFieldRelaxation: options.includes('ALLOW_FIELD_RELAXATION'),
    useAvroLogicalTypes: l.useAvroLogicalTypes === true,
    create: createOpts,
  };
}

/** Runs a load: reads and decodes (async), then commits (one synchronous step, persisted before it returns). */
export async function runLoad(
  catalog: Catalog,
  gcs: GcsSource,
  config: LoadConfig,
  jobId: string,
  limits: { maxBytes: number },
  isCancelled: () => boolean = () => false,
): Promise<LoadStatistics> {
  const objects = [];
  for (const uri of config.sourceUris) objects.push(...(await gcs.resolve(uri)));
  let inputBytes = 0;
  let fields: TableField[] | undefined;
  const rows: Row[] = [];
  for (const obj of objects) {
    inputBytes += obj.size;
    if (inputBytes > limits.maxBytes) throw errors.invalid(`The load job's input exceeds the emulator's limit of ${limits.maxBytes} bytes.`);
    const file = openAvroFile(obj.uri, await gcs.read(obj));
    const mapping = mapAvroSchema(file.schema, config.useAvroLogicalTypes, obj.uri);
    // Files of one job may differ as writer versions do: later ones may add or relax fields.
    fields = fields === undefined ? mapping.fields : evolveSchema(`for ${obj.uri}`, fields, mapping.fields, { allowFieldAddition: true, allowFieldRelaxation: true, requireAll: false, addedFieldsMayBeRequired: true });
    file.forEachRecord((record) => rows.push(mapping.toRow(record)));
  }
  if (isCancelled()) throw errors.stopped(jobId);
  const { outputBytes, persisted } = commit(catalog, config, fields ?? [], rows, jobId);
  await persisted;
  return { inputFiles: String(objects.length), inputFileBytes: String(inputBytes), outputRows: String(rows.length), outputBytes: String(outputBytes), badRecords: '0' };
}

/** Applies decoded rows to the destination in one step; returns their logical size. */
function commit(catalog: Catalog, config: LoadConfig, sourceFields: TableField[], rows: Row[], jobId: string): { outputBytes: number; persisted: Promise<void> } {
  const d = config.destination;
  catalog.getDataset(d.projectId, d.datasetId);
  let table = catalog.findTable(d.projectId, d.datasetId, d.tableId);
  const name = tableName(d);
  let created = false;
  if (table === undefined) {
    if (config.createDisposition === 'CREATE_NEVER') throw errors.notFound(`Table ${name}`);
    table = newTable(catalog, config, sourceFields);
    created = true;
  }
  const meta = table.meta;
  if (d.partition !== undefined) checkDecorator(name, d.partition, meta.timePartitioning);

  let schema: TableField[];
  if (meta.schema.length === 0 || (config.writeDisposition === 'WRITE_TRUNCATE' && d.partition === undefined && !created)) {
    schema = meta.schema.length === 0 ? sourceFields : truncateSchema(name, meta, sourceFields);
  } else {
    schema = evolveSchema(name, meta.schema, sourceFields, {
      allowFieldAddition: config.allowFieldAddition,
      allowFieldRelaxation: config.allowFieldRelaxation,
      requireAll: false,
      addedFieldsMayBeRequired: true,
    });
    checkExactNames(name, sourceFields, schema);
  }

  // Which partition each row goes to.
  const tp = meta.timePartitioning;
  const byPartition = new Map<string, Row[]>();
  const column = tp?.field === undefined ? undefined : findField(schema, tp.field);
  const ingestion = d.partition ?? (tp === undefined ? WHOLE_TABLE : partitionOfMs(catalog.nowMs(), tp));
  for (const row of rows) {
    let pid = ingestion;
    if (tp !== undefined && column !== undefined) {
      pid = partitionOfCell(Object.hasOwn(row, column.name) ? row[column.name] : null, column, tp);
      if (d.partition !== undefined && pid !== d.partition) {
        throw errors.invalid(`Some rows belong to different partitions rather than destination partition ${d.partition}`);
      }
    }
    let list = byPartition.get(pid);
    if (list === undefined) byPartition.set(pid, (list = []));
    list.push(row);
  }

  const existingRows = d.partition === undefined ? [...table.partitions.values()].reduce((n, p) => n + p.rows.length, 0) : (table.partitions.get(d.partition)?.rows.length ?? 0);
  if (config.writeDisposition === 'WRITE_EMPTY' && existingRows > 0) {
    throw errors.duplicate(`Table ${name}${d.partition === undefined ? '' : `$${d.partition}`}`);
  }

  const now = catalog.nowMs();
  const truncate = config.writeDisposition === 'WRITE_TRUNCATE';
  const partitions = new Map<string, Partition>(truncate && d.partition === undefined ? [] : table.partitions);
  if (truncate && d.partition !== undefined) partitions.delete(d.partition);
  const changed = new Set<string>();
  let outputBytes = 0;
  for (const [pid, added] of byPartition) {
    let bytes = 0;
    for (const r of added) bytes += rowBytes(schema, r);
    outputBytes += bytes;
    const prev = partitions.get(pid);
    partitions.set(pid, prev === undefined ? { id: pid, rows: added, bytes, lastModifiedTime: now } : { id: pid, rows: prev.rows.concat(added), bytes: prev.bytes + bytes, lastModifiedTime: now });
    changed.add(pid);
  }
  if (truncate && d.partition !== undefined) changed.add(d.partition);
  if (created) catalog.createTable(table);
  return { outputBytes, persisted: catalog.commitPartitions(table, partitions, changed, schema, jobId) };
}

/** The destination a load creates (registered only if the load commits): its options, else the source schema. */
function newTable(catalog: Catalog, config: LoadConfig, sourceFields: TableField[]): TableState {
  const d = config.destination;
  const given = config.create.schema === undefined ? undefined : parseSchema(config.create.schema);
  const t = String(catalog.nowMs());
  const meta: TableMeta = { projectId: d.projectId, datasetId: d.datasetId, tableId: d.tableId, schema: given ?? sourceFields, creationTime: t, lastModifiedTime: t };
  applyTableOptions(meta, config.create, true);
  if (d.partition !== undefined && meta.timePartitioning === undefined) {
    // A decorator on a missing table makes an ingestion-time partitioned one, partitioned as the decorator reads.
    meta.timePartitioning = parseTimePartitioning({ type: d.partition.length === 10 ? 'HOUR' : d.partition.length === 8 ? 'DAY' : d.partition.length === 6 ? 'MONTH' : 'YEAR' }, meta.schema);
  }
  return { meta, partitions: new Map(), committedJobs: [] };
}

/** WRITE_TRUNCATE of a whole table takes the source's schema; its partitioning and clustering columns must stay. */
function truncateSchema(name: string, meta: TableMeta, source: TableField[]): TableField[] {
  const keep = [meta.timePartitioning?.field, ...(meta.clustering?.fields ?? [])].filter((f): f is string => f !== undefined);
  for (const k of keep) {
    const now = findField(meta.schema, k);
    const next = findField(source, k);
    if (next === undefined || now === undefined || next.type !== now.type) throw errors.invalid(`Provided Schema does not match Table ${name}. Field ${k} is used for partitioning or clustering and must keep its type.`);
  }
  return source;
}

/** Loaded rows are keyed by the source's field names; refuse a source whose names differ from the table's only in case. */
function checkExactNames(name: string, source: readonly TableField[], table: readonly TableField[]): void {
  for (const s of source) {
    const t = findField(table, s.name);
    if (t !== undefined && t.name !== s.name) throw errors.invalid(`Provided Schema does not match Table ${name}. Field ${s.name} differs in case from the table's field ${t.name}; the emulator matches names exactly.`);
    if (t?.fields !== undefined && s.fields !== undefined) checkExactNames(name, s.fields, t.fields);
  }
}

