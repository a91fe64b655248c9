/**
 * Resumable upload sessions: where an upload stands between its chunks.
 * Sessions live in memory (an emulator restart loses them, as a client
 * would see with an expired session) and expire after an idle period.
 */
import { randomUUID } from 'node:crypto';
import type { DraftWriter } from './draft-writer.ts';
import type { ObjectRecord, WritableObjectFields } from './model.ts';
import type { Preconditions } from './preconditions.ts';

export interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  fields: WritableObjectFields;
  preconditions: Preconditions;
  draft: DraftWriter;
  /** Total size, once the client has said it. */
  total?: number;
  /** The object, once the upload completed. */
  result?: ObjectRecord;
  lastUsed: number;
  /** Requests on one session run one after another. */
  queue: Promise<void>;
}

/** Idle sessions are dropped after this long (GCS keeps them a week; tests need far less). */
const IDLE_MS = 60 * 60 * 1000;

export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.sweep(Date.now()), 60_000);
    this.timer.unref();
  }

  create(init: Omit<UploadSession, 'id' | 'lastUsed' | 'queue'>): UploadSession {
    const session: UploadSession = { ...init, id: randomUUID().replace(/-/g, ''), lastUsed: Date.now(), queue: Promise.resolve() };
    this.sessions.set(session.id, session);
    return session;
  }

  get(id: string): UploadSession | undefined {
    const s = this.sessions.get(id);
    if (s !== undefined) s.lastUsed = Date.now();
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /** Runs `work` after the session's earlier requests. */
  run<T>(session: UploadSession, work: () => Promise<T>): Promise<T> {
    const result = session.queue.then(work);
    session.queue = result.then(
      () => {},
      () => {},
    );
    return result;
  }

  sweep(now: number): void {
    for (const [id, s] of this.sessions) {
      if (now - s.lastUsed > IDLE_MS) {
        this.sessions.delete(id);
        if (s.result === undefined) void s.draft.abort().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(open.map((s) => (s.result === undefined ? s.draft.abort().catch(() => {}) : undefined)));
  }
}
