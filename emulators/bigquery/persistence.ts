/**
 * Optional directory persistence. Layout under the directory:
 *
 *   projects/<p>/datasets/<d>/dataset.json
 *   projects/<p>/datasets/<d>/tables/<t>/table.json      metadata + which file holds each partition
 *   projects/<p>/datasets/<d>/tables/<t>/<n>.rows.json   the rows of one partition version
 *   projects/<p>/jobs/<jobId>.json
 *
 * A commit writes the new partitions' files first, then `table.json` through
 * a temporary file and a rename (atomic), then unlinks the files it no longer
 * names: a reader or a restart sees the table before or after the commit,
 * never between. Files no table.json names (left by a crash) are removed at start.
 * Names are percent-encoded so any id is a safe file name.
 */
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DatasetRecord, JobRecord, Partition, TableMeta, TableState } from './model.ts';
import type { Row } from './values.ts';

/** Where the catalog keeps its state (a no-op in memory). */
export interface Persistence {
  saveDataset(ds: DatasetRecord): Promise<void>;
  deleteDataset(projectId: string, datasetId: string): Promise<void>;
  /** Writes `table`; `changed` are the partitions whose rows differ from the last save. */
  saveTable(table: TableState, changed: ReadonlySet<string>): Promise<void>;
  deleteTable(meta: TableMeta): Promise<void>;
  saveJob(job: JobRecord): Promise<void>;
  loadAll(): Promise<{ datasets: DatasetRecord[]; tables: TableState[]; jobs: JobRecord[] }>;
}

export const memoryPersistence: Persistence = {
  saveDataset: async () => {},
  deleteDataset: async () => {},
  saveTable: async () => {},
  deleteTable: async () => {},
  saveJob: async () => {},
  loadAll: async () => ({ datasets: [], tables: [], jobs: [] }),
};

interface TableFile {
  meta: TableMeta;
  committedJobs: string[];
  partitions: { id: string; file: string; bytes: number; rows: number; lastModifiedTime: number }[];
}

const enc = (s: string): string => encodeURIComponent(s).replace(/\./g, '%2E');

export function directoryPersistence(root: string): Persistence {
  const datasetDir = (p: string, d: string): string => path.join(root, 'projects', enc(p), 'datasets', enc(d));
  const tableDir = (m: TableMeta): string => path.join(datasetDir(m.projectId, m.datasetId), 'tables', enc(m.tableId));
  const jobsDir = (p: string): string => path.join(root, 'projects', enc(p), 'jobs');
  /** Partition id → file name, per table dir, as last written. */
  const files = new Map<string, Map<string, string>>();

  async function atomicWrite(file: string, data: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, file);
  }

  return {
    async saveDataset(ds) {
      await atomicWrite(path.join(datasetDir(ds.projectId, ds.datasetId), 'dataset.json'), JSON.stringify(ds));
    },
    async deleteDataset(p, d) {
      const dir = datasetDir(p, d);
      for (const key of files.keys()) if (key.startsWith(dir + path.sep)) files.delete(key);
      await rm(dir, { recursive: true, force: true });
    },
    async saveTable(table, changed) {
      const dir = tableDir(table.meta);
      await mkdir(dir, { recursive: true });
      const previous = files.get(dir) ?? new Map<string, string>();
      const next = new Map<string, string>();
      const out: TableFile = { meta: table.meta, committedJobs: table.committedJobs, partitions: [] };
      for (const p of table.partitions.values()) {
        let file = previous.get(p.id);
        if (file === undefined || changed.has(p.id)) {
          file = `${randomUUID()}.rows.json`;
          await writeFile(path.join(dir, file), JSON.stringify(p.rows));
        }
        next.set(p.id, file);
        out.partitions.push({ id: p.id, file, bytes: p.bytes, rows: p.rows.length, lastModifiedTime: p.lastModifiedTime });
      }
      await atomicWrite(path.join(dir, 'table.json'), JSON.stringify(out));
      files.set(dir, next);
      const kept = new Set(next.values());
      for (const f of previous.values()) if (!kept.has(f)) await unlink(path.join(dir, f)).catch(() => undefined);
    },
    async deleteTable(meta) {
      const dir = tableDir(meta);
      files.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
    async saveJob(job) {
      const { result: _result, ...kept } = job;
      await atomicWrite(path.join(jobsDir(job.projectId), `${enc(job.jobId)}.json`), JSON.stringify(kept));
    },
    async loadAll() {
      const datasets: DatasetRecord[] = [];
      const tables: TableState[] = [];
      const jobs: JobRecord[] = [];
      for (const p of await list(path.join(root, 'projects'))) {
        const pdir = path.join(root, 'projects', p);
        for (const j of await list(path.join(pdir, 'jobs'))) {
          if (j.endsWith('.json')) jobs.push(JSON.parse(await readFile(path.join(pdir, 'jobs', j), 'utf8')) as JobRecord);
        }
        for (const d of await list(path.join(pdir, 'datasets'))) {
          const ddir = path.join(pdir, 'datasets', d);
          try {
            datasets.push(JSON.parse(await readFile(path.join(ddir, 'dataset.json'), 'utf8')) as DatasetRecord);
          } catch {
            continue; // a dataset whose creation never completed
          }
          for (const t of await list(path.join(ddir, 'tables'))) {
            const tdir = path.join(ddir, 'tables', t);
            let tf: TableFile;
            try {
              tf = JSON.parse(await readFile(path.join(tdir, 'table.json'), 'utf8')) as TableFile;
            } catch {
              await rm(tdir, { recursive: true, force: true });
              continue;
            }
            const partitions = new Map<string, Partition>();
            const names = new Map<string, string>();
            for (const pe of tf.partitions) {
              const rows = JSON.parse(await readFile(path.join(tdir, pe.file), 'utf8')) as Row[];
              partitions.set(pe.id, { id: pe.id, rows, bytes: pe.bytes, lastModifiedTime: pe.lastModifiedTime });
              names.set(pe.id, pe.file);
            }
            const kept = new Set(names.values());
            for (const f of await list(tdir)) if (f !== 'table.json' && !kept.has(f)) await unlink(path.join(tdir, f)).catch(() => undefined);
            files.set(tdir, names);
            tables.push({ meta: tf.meta, partitions, committedJobs: tf.committedJobs });
          }
        }
      }
      return { datasets, tables, jobs };
    },
  };
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
