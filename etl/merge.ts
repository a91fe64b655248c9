/**
 * The k-way merge behind closing: every staged file is sorted by
 * (event id, writer fingerprint, record bytes), so merging them with a heap of
 * cursors yields the period in that order while holding one block per file.
 * Of several records with one id the first is kept: the smallest by that
 * (total) order, whatever the files, their order and the merge rounds
 * (deterministic close).
 */
import type { Bucket } from '@google-cloud/storage';
import { AppError } from '../lib/errors.ts';
import { ContainerBlockReader } from './container-stream.ts';
import { compareIds, type StagedRecord } from './envelope.ts';
import { readRange, type ObjectInfo } from './storage-io.ts';

/**
 * The merge order, total over what a staged record holds: event id, writer
 * fingerprint, payload bytes, then receive time and stats (a producer's retry
 * of one event has the same payload but a later receive time).
 */
export function compareStaged(a: StagedRecord, b: StagedRecord): number {
  return (
    compareIds(a.eventId, b.eventId) ||
    compareIds(a.schemaFingerprint, b.schemaFingerprint) ||
    Buffer.compare(a.record, b.record) ||
    a.receiveTime - b.receiveTime ||
    compareIds(statsKey(a.stats), statsKey(b.stats))
  );
}

const statsKey = (stats: Record<string, number>): string => JSON.stringify(Object.entries(stats).sort(([x], [y]) => compareIds(x, y)));

/** A position in a sorted sequence of staged records. */
export interface StagedCursor {
  readonly name: string;
  /** The record under the cursor; undefined once exhausted. */
  readonly current: StagedRecord | undefined;
  /** The envelope bytes of `current` (for copying into a run without re-encoding). */
  readonly currentBytes: Buffer | undefined;
  /** Moves on; a promise only when a new block has to be read. */
  advance(): void | Promise<void>;
}

/** A cursor over a container of staged envelopes read block by block; checks the order as it goes. */
export class ContainerCursor implements StagedCursor {
  current: StagedRecord | undefined;
  currentBytes: Buffer | undefined;
  private block: Buffer = Buffer.alloc(0);
  private left = 0;
  private pos = 0;

  constructor(
    readonly name: string,
    private readonly reader: ContainerBlockReader,
  ) {}

  /** Opens the file and moves to its first record. */
  async start(): Promise<this> {
    await this.reader.open();
    await this.advance();
    return this;
  }

  advance(): void | Promise<void> {
    if (this.left > 0) {
      this.take();
      return;
    }
    return this.nextBlock();
  }

  private async nextBlock(): Promise<void> {
    for (;;) {
      const block = await this.reader.next();
      if (block === undefined) {
        this.current = undefined;
        this.currentBytes = undefined;
        return;
      }
      if (block.count === 0) continue;
      this.block = block.data;
      this.left = block.count;
      this.pos = 0;
      this.take();
      return;
    }
  }

  private take(): void {
    const start = this.pos;
    const r = readEnvelope(this.block, start);
    if (r === undefined) throw new AppError('DECODE_FAILED', { message: `${this.name}: a staged record does not decode` });
    const previous = this.current;
    this.current = r.value;
    this.currentBytes = this.block.subarray(start, r.offset);
    this.pos = r.offset;
    this.left--;
    if (previous !== undefined && compareStaged(previous, r.value) > 0) {
      throw new AppError('DECODE_FAILED', { message: `${this.name}: staged records are not sorted by event id` });
    }
  }
}

/**
 * Decodes one staged envelope (`stagedEnvelopeSchema`) at `pos`; undefined if
 * it is malformed. Hand-written for the merge's hot loop: the payload stays a
 * view into the block, and the longs (receive time, stats) must be safe
 * integers, as the stager writes them.
 */
export function readEnvelope(buf: Buffer, pos: number): { value: StagedRecord; offset: number } | undefined {
  let p = pos;
  const long = (): number | undefined => {
    let n = 0;
    let k = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= buf.length) return undefined;
      const b = buf[p++]!;
      n += (b & 0x7f) * k;
      if ((b & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      k *= 0x80;
    }
    return undefined; // beyond 2^56: not a time or a count the stager wrote
  };
  const text = (): string | undefined => {
    const n = long();
    if (n === undefined || n < 0 || p + n > buf.length) return undefined;
    const s = buf.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  const eventId = text();
  const receiveTime = long();
  const schemaFingerprint = text();
  if (eventId === undefined || receiveTime === undefined || schemaFingerprint === undefined) return undefined;
  const stats: Record<string, number> = {};
  for (;;) {
    let count = long();
    if (count === undefined) return undefined;
    if (count === 0) break;
    if (count < 0) {
      count = -count;
      if (long() === undefined) return undefined; // block size
    }
    for (let i = 0; i < count; i++) {
      const k = text();
      const v = long();
      if (k === undefined || v === undefined) return undefined;
      Object.defineProperty(stats, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  const size = long();
  if (size === undefined || size < 0 || p + size > buf.length) return undefined;
  const record = buf.subarray(p, p + size);
  p += size;
  return { value: { eventId, receiveTime, schemaFingerprint, stats, record }, offset: p };
}

/** Opens a cursor over a staged file or run in `bucket`, reading `chunkBytes` at a time. */
export async function openCursor(bucket: Bucket, object: Pick<ObjectInfo, 'name' | 'size' | 'generation'>, chunkBytes?: number): Promise<ContainerCursor> {
  const reader = new ContainerBlockReader(
    object.name,
    object.size,
    (offset, length) => readRange(bucket, object.name, offset, length, object.generation),
    chunkBytes,
  );
  return new ContainerCursor(object.name, reader).start();
}

/** Min-heap of cursors by their current record. */
class CursorHeap {
  private readonly items: StagedCursor[] = [];

  get size(): number {
    return this.items.length;
  }

  push(c: StagedCursor): void {
    if (c.current === undefined) return;
    const a = this.items;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (compareStaged(a[p]!.current!, a[i]!.current!) <= 0) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  peek(): StagedCursor | undefined {
    return this.items[0];
  }

  /** Restores the order after the top cursor moved on (or drops it if exhausted). */
  fixTop(): void {
    const a = this.items;
    if (a[0]!.current === undefined) {
      const last = a.pop()!;
      if (a.length === 0) return;
      a[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && compareStaged(a[l]!.current!, a[m]!.current!) < 0) m = l;
      if (r < a.length && compareStaged(a[r]!.current!, a[m]!.current!) < 0) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

export interface MergeCounts {
  /** Records read from the inputs. */
  read: number;
  /** Records handed to `onRecord`. */
  emitted: number;
}

/**
 * Merges sorted cursors, calling `onRecord` for each record in order (only
 * the first of each event id with `dedup`); awaits `onRecord` when it returns
 * a promise (backpressure from an upload).
 */
export async function mergeCursors(
  cursors: readonly StagedCursor[],
  opts: { dedup: boolean; /** Awaited every 64k records (lease renewal in a long close). */ heartbeat?: () => Promise<void> },
  onRecord: (record: StagedRecord, bytes: Buffer) => void | Promise<void>,
): Promise<MergeCounts> {
  const heap = new CursorHeap();
  for (const c of cursors) heap.push(c);
  let read = 0;
  let emitted = 0;
  let lastId: string | undefined;
  while (heap.size > 0) {
    const top = heap.peek()!;
    const record = top.current!;
    read++;
    if (!opts.dedup || record.eventId !== lastId) {
      lastId = record.eventId;
      emitted++;
      const pending = onRecord(record, top.currentBytes!);
      if (pending !== undefined) await pending;
    }
    const moved = top.advance();
    if (moved !== undefined) await moved;
    heap.fixTop();
    if (opts.heartbeat !== undefined && (read & 0xffff) === 0) await opts.heartbeat();
  }
  return { read, emitted };
}

/** What a dedup merge found: the partition's audit and manifest figures. */
export interface MergeSummary {
  /** Records read (staged records, duplicates included). */
  read: number;
  /** Distinct event ids: the records the partition will hold. */
  unique: number;
  /** Unique records per writer fingerprint. */
  byFingerprint: Map<string, number>;
  minReceiveTime: number | undefined;
  maxReceiveTime: number | undefined;
  /** Summed transform stats of the unique records. */
  stats: Map<string, number>;
}

/** Merges with dedup, counting instead of writing. */
export async function summarize(cursors: readonly StagedCursor[], heartbeat?: () => Promise<void>): Promise<MergeSummary> {
  const byFingerprint = new Map<string, number>();
  const stats = new Map<string, number>();
  let min: number | undefined;
  let max: number | undefined;
  const counts = await mergeCursors(cursors, { dedup: true, heartbeat }, (r) => {
    byFingerprint.set(r.schemaFingerprint, (byFingerprint.get(r.schemaFingerprint) ?? 0) + 1);
    if (min === undefined || r.receiveTime < min) min = r.receiveTime;
    if (max === undefined || r.receiveTime > max) max = r.receiveTime;
    for (const k in r.stats) {
      if (Object.hasOwn(r.stats, k)) stats.set(k, (stats.get(k) ?? 0) + r.stats[k]!);
    }
  });
  return { read: counts.read, unique: counts.emitted, byFingerprint, minReceiveTime: min, maxReceiveTime: max, stats };
}
