/**
 * The embedded registry store, the local default: one JSON file per event
 * type, `<dir>/<name>.json`, holding the `EventTypeRecord` as JSON. Other
 * components (event service, ETL) may read the folder directly or through
 * `FileRegistryStore`'s read methods; a reader never sees a half-written file
 * because writes go to a temporary file that is then renamed over the old one.
 *
 * Writes are conditional on the stored revision, checked and written under a
 * lock: an in-process mutex per type (concurrent writers in one process queue
 * up) plus a lock file created with O_EXCL (writers in other processes, e.g.
 * the CLI beside a running composer). A lock file older than `staleLockMs` is
 * taken as left by a crashed writer and broken.
 */
import { open, readFile, readdir, rename, unlink, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.ts';
import { eventTypeNamePattern } from '../names.ts';
import type { EventTypeRecord, RegistryStore } from './types.ts';

export interface FileRegistryOptions {
  /** How long a lock file may live before it is considered abandoned (default 30 s). */
  staleLockMs?: number;
  /** How long a writer waits for another process's lock (default 10 s). */
  lockTimeoutMs?: number;
}

export class FileRegistryStore implements RegistryStore {
  readonly dir: string;
  private readonly staleLockMs: number;
  private readonly lockTimeoutMs: number;
  /** Tail of each type's queue of in-process writers. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(dir: string, options: FileRegistryOptions = {}) {
    this.dir = path.resolve(dir);
    this.staleLockMs = options.staleLockMs ?? 30_000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  }

  /** The file holding `name`'s record. */
  fileOf(name: string): string {
    if (!eventTypeNamePattern.test(name)) {
      throw new AppError('BAD_REQUEST', { message: `not an event-type name: ${JSON.stringify(name)}` });
    }
    return path.join(this.dir, `${name}.json`);
  }

  async getEventType(name: string): Promise<EventTypeRecord | undefined> {
    if (!eventTypeNamePattern.test(name)) return undefined;
    return this.readRecord(this.fileOf(name));
  }

  async listEventTypes(): Promise<EventTypeRecord[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw new AppError('REGISTRY_UNAVAILABLE', { cause: err });
    }
    const names = entries.filter((f) => f.endsWith('.json') && eventTypeNamePattern.test(f.slice(0, -5)));
    const records = await Promise.all(names.map((f) => this.readRecord(path.join(this.dir, f))));
    return records.filter((r): r is EventTypeRecord => r !== undefined).sort((a, b) => a.settings.name.localeCompare(b.settings.name));
  }

  async putEventType(record: EventTypeRecord, expectedRevision: number): Promise<EventTypeRecord> {
    const name = record.settings.name;
    const file = this.fileOf(name);
    const previous = this.queues.get(name) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.withFileLock(file, () => this.writeIfRevision(file, record, expectedRevision)));
    this.queues.set(name, run);
    try {
      return await run;
    } finally {
      if (this.queues.get(name) === run) this.queues.delete(name);
    }
  }

  private async writeIfRevision(file: string, record: EventTypeRecord, expectedRevision: number): Promise<EventTypeRecord> {
    const name = record.settings.name;
    const existing = await this.readRecord(file);
    const actual = existing?.revision ?? 0;
    if (actual !== expectedRevision) {
      throw new AppError(expectedRevision === 0 ? 'EVENT_TYPE_EXISTS' : 'CONCURRENT_UPDATE', {
        details: { eventType: name, expectedRevision, actualRevision: actual },
      });
    }
    const stored: EventTypeRecord = { ...structuredClone(record), revision: expectedRevision + 1 };
    const tmp = path.join(this.dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(JSON.stringify(stored, null, 2) + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new AppError('REGISTRY_UNAVAILABLE', { message: `cannot write ${file}`, cause: err });
    }
    return structuredClone(stored);
  }

  private async withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    const lock = `${file}.lock`;
    const deadline = Date.now() + this.lockTimeoutMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        const handle = await open(lock, 'wx');
        await handle.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AppError('REGISTRY_UNAVAILABLE', { cause: err });
      }
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > this.staleLockMs) {
        await unlink(lock).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) {
        throw new AppError('REGISTRY_UNAVAILABLE', { message: `registry lock ${lock} held too long` });
      }
      await new Promise((r) => setTimeout(r, delay));
    }
    try {
      return await fn();
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }

  private async readRecord(file: string): Promise<EventTypeRecord | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new AppError('REGISTRY_UNAVAILABLE', { cause: err });
    }
    try {
      return JSON.parse(text) as EventTypeRecord;
    } catch (err) {
      throw new AppError('REGISTRY_UNAVAILABLE', { message: `registry file ${file} is not valid JSON`, cause: err });
    }
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
