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
import { compareIds, encodeDelivered, encodeStaged, hasInstanceField, type StagedRecord } from './envelope.ts';
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
    compareIds(statsKey(a.stats), statsKey(b.stats)) ||
    compareIds(a.instanceId ?? '', b.instanceId ?? '')
  );
}

const statsKey = (stats: Record<string, number>): string => JSON.stringify(Object.entries(stats).sort(([x], [y]) => compareIds(x, y)));

/** Where the writing merge copies a delivered record (a `ContainerStreamWriter`). */
export interface DeliveredSink {
  append(record: Buffer): void | Promise<void>;
  appendRanges(src: Buffer, aFrom: number, aTo: number, bFrom: number, bTo: number): void | Promise<void>;
}

/** A position in a sorted sequence of staged records. */
export interface StagedCursor {
  readonly name: string;
  /** The event id under the cursor; undefined once exhausted. */
  readonly id: string | undefined;
  /** The record under the cursor (decoded on demand: the merges read the fields below instead). */
  readonly current: StagedRecord | undefined;
  /** The envelope bytes of the record under the cursor (copied into a run as they are). */
  readonly currentBytes: Buffer | undefined;
  /** Fields of the record under the cursor, read without decoding it into an object (valid while `id` is defined). */
  readonly fingerprint: string;
  readonly receiveTime: number;
  /** The accepting instance; '' for a direct producer's event. */
  readonly instanceId: string;
  /** Whether the record carries transform stats (then read them from `current`). */
  readonly hasStats: boolean;
  /** Appends the record under the cursor as a delivered record (`encodeDelivered`'s bytes) to `sink`. */
  writeDelivered(sink: DeliveredSink): void | Promise<void>;
  /** Moves on; a promise only when a new block has to be read. */
  advance(): void | Promise<void>;
}

/** The merge order of two cursors' records: the id alone decides unless the ids are equal. */
function compareCursors(a: StagedCursor, b: StagedCursor): number {
  return compareIds(a.id!, b.id!) || compareStaged(a.current!, b.current!);
}

/**
 * A cursor over a container of staged envelopes read block by block. Each
 * record is parsed in place as it passes: its id (the merge's key) as a
 * string, the other fields as offsets into the block or shared strings, so
 * that merging a record allocates nothing but its id (garbage collection was
 * a fifth of a large close's CPU, and it stalls the draining beside it). The
 * whole record is decoded only when asked for. Checks the order as it goes.
 */
export class ContainerCursor implements StagedCursor {
  id: string | undefined;
  receiveTime = 0;
  fingerprint = '';
  instanceId = '';
  hasStats = false;
  private decoded: StagedRecord | undefined;
  /** The block holding the record under the cursor, its bounds, and the next record's offset. */
  private block: Buffer = Buffer.alloc(0);
  private from = 0;
  private to = 0;
  /** End of the receive time (the delivered record's head: id and time, as staged) and the payload's bounds. */
  private headEnd = 0;
  private payloadFrom = 0;
  private payloadTo = 0;
  /** Whether the head's longs are in their shortest form, so its bytes are `encodeDelivered`'s. */
  private headCanonical = true;
  private left = 0;
  /** The previous record (the order check), kept in fields: no object per record. */
  private previousId: string | undefined;
  private previousBlock: Buffer = this.block;
  private previousFrom = 0;
  private previousDecoded: StagedRecord | undefined;
  /** False for a file staged before envelopes carried `instanceId` (envelope.ts). */
  private withInstance = true;

  constructor(
    readonly name: string,
    private readonly reader: ContainerBlockReader,
  ) {}

  get current(): StagedRecord | undefined {
    if (this.id === undefined) return undefined;
    this.decoded ??= this.decode(this.block, this.from);
    return this.decoded;
  }

  get currentBytes(): Buffer | undefined {
    if (this.id === undefined) return undefined;
    // A run has today's envelope: an older file's record is re-encoded with the (empty) instance.
    return this.withInstance ? this.block.subarray(this.from, this.to) : encodeStaged(this.current!);
  }

  writeDelivered(sink: DeliveredSink): void | Promise<void> {
    // The delivered record is the envelope's id and receive time followed by the payload's bytes: copied
    // straight from the block (staged ids are valid UTF-8, as the stager encoded them from strings).
    if (this.headCanonical) return sink.appendRanges(this.block, this.from, this.headEnd, this.payloadFrom, this.payloadTo);
    const r = this.current!;
    return sink.append(encodeDelivered(r.eventId, r.receiveTime, r.record));
  }

  /** Opens the file and moves to its first record. */
  async start(): Promise<this> {
    await this.reader.open();
    this.withInstance = hasInstanceField(this.reader.schema);
    await this.advance();
    return this;
  }

  advance(): void | Promise<void> {
    if (this.left > 0) {
      this.take(this.block);
      return;
    }
    return this.nextBlock();
  }

  private async nextBlock(): Promise<void> {
    for (;;) {
      const block = await this.reader.next();
      if (block === undefined) {
        this.id = undefined;
        this.decoded = undefined;
        return;
      }
      if (block.count === 0) continue;
      this.left = block.count;
      this.to = 0;
      this.take(block.data);
      return;
    }
  }

  /** Moves to the record at `end` of `block` (the current block, or a new one starting at 0). */
  private take(block: Buffer): void {
    this.previousId = this.id;
    this.previousBlock = this.block;
    this.previousFrom = this.from;
    this.previousDecoded = this.decoded;
    const from = this.to;
    const id = parseEnvelope(block, from, this.withInstance);
    if (id === undefined) throw new AppError('DECODE_FAILED', { message: `${this.name}: a staged record does not decode` });
    this.block = block;
    this.from = from;
    this.to = at;
    this.id = id;
    this.receiveTime = parsed.receiveTime;
    this.fingerprint = parsed.fingerprint;
    this.instanceId = parsed.instanceId;
    this.hasStats = parsed.hasStats;
    this.headEnd = parsed.headEnd;
    this.headCanonical = parsed.headCanonical;
    this.payloadFrom = parsed.payloadFrom;
    this.payloadTo = parsed.payloadTo;
    this.decoded = undefined;
    this.left--;
    const previous = this.previousId;
    if (previous !== undefined && previous >= id) {
      const before = this.previousDecoded ?? this.decode(this.previousBlock, this.previousFrom);
      if (previous > id || compareStaged(before, this.current!) > 0) {
        throw new AppError('DECODE_FAILED', { message: `${this.name}: staged records are not sorted by event id` });
      }
    }
  }

  private decode(block: Buffer, from: number): StagedRecord {
    const r = readEnvelope(block, from, this.withInstance);
    if (r === undefined) throw new AppError('DECODE_FAILED', { message: `${this.name}: a staged record does not decode` });
    return r.value;
  }
}

/** Min-heap of cursors by their current record. */
class CursorHeap {
  private readonly items: StagedCursor[] = [];

  get size(): number {
    return this.items.length;
  }

  push(c: StagedCursor): void {
    if (c.id === undefined) return;
    const a = this.items;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (compareCursors(a[p]!, a[i]!) <= 0) break;
      const t = a[p]!;
      a[p] = a[i]!;
      a[i] = t;
      i = p;
    }
  }

  peek(): StagedCursor | undefined {
    return this.items[0];
  }

  /** Restores the order after the top cursor moved on (or drops it if exhausted). */
  fixTop(): void {
    const a = this.items;
    if (a[0]!.id === undefined) {
      const last = a.pop()!;
      if (a.length === 0) return;
      a[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && compareCursors(a[l]!, a[m]!) < 0) m = l;
      if (r < a.length && compareCursors(a[r]!, a[m]!) < 0) m = r;
      if (m === i) return;
      const t = a[m]!;
      a[m] = a[i]!;
      a[i] = t;
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
 * Merges sorted cursors, calling `onRecord` with the cursor at each record in
 * order (only the first of each event id with `dedup`); awaits `onRecord`
 * when it returns a promise (backpressure from an upload).
 */
export async function mergeCursors(
  cursors: readonly StagedCursor[],
  opts: {
    dedup: boolean;
    /** Awaited every 64k records (lease renewal in a long close). */
    heartbeat?: () => Promise<void>;
    /** Called with the cursor at each duplicate `dedup` drops. */
    onDropped?: (at: StagedCursor) => void;
  },
  onRecord: (at: StagedCursor) => void | Promise<void>,
): Promise<MergeCounts> {
  const heap = new CursorHeap();
  for (const c of cursors) heap.push(c);
  let read = 0;
  let emitted = 0;
  let lastId: string | undefined;
  while (heap.size > 0) {
    const top = heap.peek()!;
    read++;
    if (!opts.dedup || top.id !== lastId) {
      lastId = top.id;
      emitted++;
      const pending = onRecord(top);
      if (pending !== undefined) await pending;
    } else {
      opts.onDropped?.(top);
    }
    const moved = top.advance();
    if (moved !== undefined) await moved;
    heap.fixTop();
    if ((read & 0xfff) === 0) {
      // Blocks read ahead can keep the merge busy for long stretches: let the worker's
      // pull, acks and staging run in between (closing must not stall draining).
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (opts.heartbeat !== undefined && (read & 0xffff) === 0) await opts.heartbeat();
    }
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
  /**
   * Distinct event ids per accepting instance ('' = direct producers): an id
   * staged with several instances (a client's retry accepted by two) counts
   * for each. Sums across disjoint id sets (shards).
   */
  byInstance: Map<string, number>;
}

/** Merges with dedup, counting instead of writing. */
export async function summarize(cursors: readonly StagedCursor[], heartbeat?: () => Promise<void>): Promise<MergeSummary> {
  const byFingerprint = new Map<string, number>();
  const stats = new Map<string, number>();
  let min: number | undefined;
  let max: number | undefined;
  const byInstance = new Map<string, number>();
  // Instances seen with the current id: duplicates are adjacent in the merge.
  const instancesOfId = new Set<string>();
  const countInstance = (instance: string): void => {
    if (instancesOfId.has(instance)) return;
    instancesOfId.add(instance);
    byInstance.set(instance, (byInstance.get(instance) ?? 0) + 1);
  };
  const onDropped = (c: StagedCursor): void => countInstance(c.instanceId);
  const counts = await mergeCursors(cursors, { dedup: true, heartbeat, onDropped }, (c) => {
    instancesOfId.clear();
    countInstance(c.instanceId);
    byFingerprint.set(c.fingerprint, (byFingerprint.get(c.fingerprint) ?? 0) + 1);
    const t = c.receiveTime;
    if (min === undefined || t < min) min = t;
    if (max === undefined || t > max) max = t;
    if (!c.hasStats) return;
    const rs = c.current!.stats;
    for (const k in rs) {
      if (Object.hasOwn(rs, k)) stats.set(k, (stats.get(k) ?? 0) + rs[k]!);
    }
  });
  return { read: counts.read, unique: counts.emitted, byFingerprint, minReceiveTime: min, maxReceiveTime: max, stats, byInstance };
}

/** Read position of the envelope readers (module-level: no closure or object per record in the hot loop). */
let at = 0;

/**
 * An Avro long at `at` that is a safe integer; NaN if malformed or beyond 2^53.
 * (lib/avro/binary.ts `readLong` is the general one; it returns an object per
 * call, which in this loop, run several times per record, was measurable garbage.)
 */
function readSafeLong(buf: Buffer): number {
  let n = 0;
  let k = 1;
  for (let i = 0; i < 8; i++) {
    if (at >= buf.length) return NaN;
    const b = buf[at++]!;
    n += (b & 0x7f) * k;
    if ((b & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    k *= 0x80;
  }
  return NaN; // beyond 2^56: not a time or a count the stager wrote
}

/** Skips a length-prefixed string or bytes at `at`; false if malformed. */
function skipBytes(buf: Buffer): boolean {
  const n = readSafeLong(buf);
  if (!(n >= 0) || at + n > buf.length) return false;
  at += n;
  return true;
}

function readText(buf: Buffer): string | undefined {
  const n = readSafeLong(buf);
  if (!(n >= 0) || at + n > buf.length) return undefined;
  const s = buf.toString('utf8', at, at + n);
  at += n;
  return s;
}

/** What `parseEnvelope` found besides the id (module-level: no object per record). */
const parsed = { receiveTime: 0, fingerprint: '', instanceId: '', hasStats: false, headEnd: 0, headCanonical: true, payloadFrom: 0, payloadTo: 0 };

/** Whether the long ending before `end` and starting at `start` is in its shortest form (as every Avro writer writes it). */
const shortest = (buf: Buffer, start: number, end: number): boolean => end - start === 1 || buf[end - 1] !== 0;

/**
 * Parses the envelope at `pos` in place: returns its event id and leaves its
 * other fields in `parsed` (stats only as whether there are any) and its end
 * in `at`; undefined if it is malformed.
 */
function parseEnvelope(buf: Buffer, pos: number, withInstance: boolean): string | undefined {
  at = pos;
  const idLength = readSafeLong(buf);
  if (!(idLength >= 0) || at + idLength > buf.length) return undefined;
  let canonical = shortest(buf, pos, at);
  const eventId = buf.toString('utf8', at, at + idLength);
  at += idLength;
  const timeFrom = at;
  const receiveTime = readSafeLong(buf);
  if (Number.isNaN(receiveTime)) return undefined;
  canonical &&= shortest(buf, timeFrom, at);
  parsed.headEnd = at;
  const fingerprint = readFingerprint(buf);
  if (fingerprint === undefined) return undefined;
  let hasStats = false;
  for (;;) {
    let count = readSafeLong(buf);
    if (Number.isNaN(count)) return undefined;
    if (count === 0) break;
    hasStats = true;
    if (count < 0) {
      count = -count;
      if (Number.isNaN(readSafeLong(buf))) return undefined;
    }
    for (let i = 0; i < count; i++) if (!skipBytes(buf) || Number.isNaN(readSafeLong(buf))) return undefined;
  }
  const size = readSafeLong(buf);
  if (!(size >= 0) || at + size > buf.length) return undefined;
  parsed.payloadFrom = at;
  at += size;
  parsed.payloadTo = at;
  let instanceId = '';
  if (withInstance) {
    const instance = readInstance(buf);
    if (instance === undefined) return undefined;
    instanceId = instance;
  }
  parsed.receiveTime = receiveTime;
  parsed.fingerprint = fingerprint;
  parsed.instanceId = instanceId;
  parsed.hasStats = hasStats;
  parsed.headCanonical = canonical;
  return eventId;
}

/** The last instance id decoded: a period has few per staged block, so their strings are shared. */
let lastInstance = '';
let lastInstanceBytes = Buffer.alloc(0);

function readInstance(buf: Buffer): string | undefined {
  const n = readSafeLong(buf);
  if (!(n >= 0) || at + n > buf.length) return undefined;
  if (n !== lastInstanceBytes.length || buf.compare(lastInstanceBytes, 0, n, at, at + n) !== 0) {
    lastInstanceBytes = Buffer.from(buf.subarray(at, at + n));
    lastInstance = lastInstanceBytes.toString('utf8');
  }
  at += n;
  return lastInstance;
}

const NO_STATS: Record<string, number> = Object.freeze({}) as Record<string, number>;
/** The last fingerprint decoded: a period has few, so their strings are shared, not made per record. */
let lastFingerprint = '';
let lastFingerprintBytes = Buffer.alloc(0);

function readFingerprint(buf: Buffer): string | undefined {
  const n = readSafeLong(buf);
  if (!(n >= 0) || at + n > buf.length) return undefined;
  if (n !== lastFingerprintBytes.length || buf.compare(lastFingerprintBytes, 0, n, at, at + n) !== 0) {
    lastFingerprintBytes = Buffer.from(buf.subarray(at, at + n));
    lastFingerprint = lastFingerprintBytes.toString('utf8');
  }
  at += n;
  return lastFingerprint;
}

/**
 * Decodes one staged envelope (`stagedEnvelopeSchema`) at `pos`; undefined if
 * it is malformed. Hand-written for the merge's hot loop: the payload stays a
 * view into the block, and the longs (receive time, stats) must be safe
 * integers, as the stager writes them.
 */
export function readEnvelope(buf: Buffer, pos: number, withInstance = true): { value: StagedRecord; offset: number } | undefined {
  at = pos;
  const eventId = readText(buf);
  const receiveTime = readSafeLong(buf);
  const schemaFingerprint = readFingerprint(buf);
  if (eventId === undefined || Number.isNaN(receiveTime) || schemaFingerprint === undefined) return undefined;
  let stats = NO_STATS;
  for (;;) {
    let count = readSafeLong(buf);
    if (Number.isNaN(count)) return undefined;
    if (count === 0) break;
    if (count < 0) {
      count = -count;
      if (Number.isNaN(readSafeLong(buf))) return undefined; // block size
    }
    if (stats === NO_STATS) stats = {};
    for (let i = 0; i < count; i++) {
      const k = readText(buf);
      const v = readSafeLong(buf);
      if (k === undefined || Number.isNaN(v)) return undefined;
      Object.defineProperty(stats, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  const size = readSafeLong(buf);
  if (!(size >= 0) || at + size > buf.length) return undefined;
  const record = buf.subarray(at, at + size);
  at += size;
  const value: StagedRecord = { eventId, receiveTime, schemaFingerprint, stats, record };
  if (withInstance) {
    const instanceId = readInstance(buf);
    if (instanceId === undefined) return undefined;
    if (instanceId !== '') value.instanceId = instanceId;
  }
  return { value, offset: at };
}

/** Runs at most `max` tasks at once, the others queued in order. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function limiter(max: number): Limiter {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/**
 * Opens a cursor over a staged file or run in `bucket`. `reads` bounds the
 * range reads in flight across the cursors of one merge (each cursor reads
 * ahead; hundreds of requests at once would only cost memory).
 */
export async function openCursor(bucket: Bucket, object: Pick<ObjectInfo, 'name' | 'size' | 'generation'>, reads: Limiter): Promise<ContainerCursor> {
  const reader = new ContainerBlockReader(object.name, object.size, (offset, length) =>
    reads(() => readRange(bucket, object.name, offset, length, object.generation)),
  );
  return new ContainerCursor(object.name, reader).start();
}
