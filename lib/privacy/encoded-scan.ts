/**
 * The encryption plan (delivered-schema.ts) applied to Avro binary instead of
 * decoded objects: a scan of one writer-schema datum finds the subject and
 * the byte range and plaintext of every personal value, stepping over
 * everything else without building it (lib/avro/skip.ts); `writeDelivered`
 * then copies the untouched bytes as they are and writes each personal value
 * in its delivered form (`["null", bytes]`, or `bytes` as an array item).
 * The result is the same datum the object path would re-encode
 * (`deliveredType.toBuffer(encrypt(decode(bytes)))`), with the same
 * plaintexts, associated data and Tink per-value format, at a fraction of the
 * cost: no object per field, no re-encoding of untouched subtrees.
 */
import { isUtf8 } from 'node:buffer';
import type avro from 'avsc';
import { associatedData } from '../crypto/aead.ts';
import { AppError } from '../errors.ts';
import { compileSkipper, MalformedDatumError, readVarint, startDatum, takeItems, varint } from '../avro/skip.ts';
import type { EncryptionPlan, PlanNode } from './delivered-schema.ts';
import { fieldStep, itemStep, valueStep } from './field-path.ts';

/** One personal value found by a scan. */
export interface PersonalSlot {
  /** Its bytes in the source datum, [start, end). */
  start: number;
  end: number;
  category: string;
  /** Associated data (event type and concrete field path). */
  ad: Buffer;
  /** The plaintext is `source[from, to)`: the scanned datum itself where its bytes are the plaintext. Null for a null value (written as null, not counted). */
  source: Buffer | null;
  from: number;
  to: number;
  /** Delivered as `["null", bytes]` (true) or `bytes` (array items of non-null source items). */
  nullable: boolean;
  withoutKey: 'null' | 'empty';
}

/** What a scan of one datum found. */
export interface ScannedDatum {
  /** The subject's value as avsc decodes it (undefined: no subject field in the schema). */
  subject: unknown;
  slots: PersonalSlot[];
}

interface ScanState {
  subject: unknown;
  slots: PersonalSlot[];
}

/** Scans from `pos`, returns the position after the datum; `path` is the runtime field path where it is not static. */
type Scan = (buf: Buffer, pos: number, path: string, st: ScanState) => number;

type TypeShape = avro.Type & {
  fields?: { name: string; type: avro.Type }[];
  itemsType?: avro.Type;
  valuesType?: avro.Type;
  types?: avro.Type[];
  branchName?: string;
  name?: string;
  underlyingType?: avro.Type;
};

/** Thrown at compile time for a shape the byte scan does not handle: the caller uses the object path (INTERNAL if it ever escaped). */
export class UnsupportedScan extends AppError {
  constructor(shape: string) {
    super('INTERNAL', { message: `the byte scan does not handle a ${shape}` });
    this.name = 'UnsupportedScan';
  }
}

/**
 * The scanner of one writer schema for one event type (associated data of
 * static paths is computed once here). Throws `UnsupportedScan` for a plan
 * the byte path does not cover (a subject below something other than
 * records).
 */
export function compileScanner(eventType: string, writerType: avro.Type, deliveredType: avro.Type, plan: EncryptionPlan): (buf: Buffer) => ScannedDatum {
  const skip = compileSkipper(writerType);
  const scan = compile(eventType, writerType, deliveredType, plan.root, plan.subjectPath, '');
  return (buf) => {
    const st: ScanState = { subject: undefined, slots: [] };
    startDatum();
    const end = scan === undefined ? skip(buf, 0) : scan(buf, 0, '', st);
    if (end !== buf.length) throw new MalformedDatumError('invalid length');
    return st;
  };
}

/**
 * @param staticPath the field path when no array or map lies above (then known now), else undefined
 * @returns undefined when nothing below needs looking at (skip it)
 */
function compile(eventType: string, writer: avro.Type, delivered: avro.Type, node: PlanNode | undefined, subject: readonly string[] | undefined, staticPath: string | undefined): Scan | undefined {
  const w = writer as TypeShape;
  const d = delivered as TypeShape;
  if (node === undefined && subject === undefined) return undefined;
  if (node?.kind === 'personal') return personal(eventType, w, d, node, staticPath);
  if (w.typeName.startsWith('logical:')) return compile(eventType, w.underlyingType!, d.typeName.startsWith('logical:') ? d.underlyingType! : d, node, subject, staticPath);
  switch (w.typeName) {
    case 'record':
    case 'error': {
      const fieldPlans = new Map(node?.kind === 'record' ? node.fields.map((f) => [f.name, f.node]) : []);
      const fields = w.fields!.map((f, i) => {
        const path = staticPath === undefined ? undefined : fieldStep(staticPath, f.name);
        const df = d.fields![i]!;
        if (subject !== undefined && subject[0] === f.name) {
          if (subject.length === 1) return subjectField(f.type);
          const ft = f.type as TypeShape;
          if (ft.typeName !== 'record') throw new UnsupportedScan('subject below a non-record');
          return compile(eventType, f.type, df.type, fieldPlans.get(f.name), subject.slice(1), path) ?? compileSkipper(f.type);
        }
        const scan = compile(eventType, f.type, df.type, fieldPlans.get(f.name), undefined, path);
        if (scan === undefined) return compileSkipper(f.type);
        const name = f.name;
        return path === undefined ? (buf: Buffer, pos: number, p: string, st: ScanState) => scan(buf, pos, fieldStep(p, name), st) : scan;
      });
      return (buf, pos, path, st) => {
        for (let i = 0; i < fields.length; i++) pos = (fields[i] as Scan)(buf, pos, path, st);
        return pos;
      };
    }
    case 'array': {
      if (node?.kind !== 'array') throw new UnsupportedScan('array plan');
      const item = compile(eventType, w.itemsType!, d.itemsType!, node.items, undefined, undefined)!;
      const parent = staticPath;
      return (buf, pos, path, st) => {
        const at = parent ?? path;
        let index = 0;
        for (;;) {
          pos = readVarint(buf, pos);
          let count = varint.value;
          if (count === 0) return pos;
          if (count < 0) {
            count = -count;
            pos = readVarint(buf, pos);
          }
          takeItems(count);
          for (let i = 0; i < count; i++) pos = item(buf, pos, itemStep(at, index++), st);
        }
      };
    }
    case 'map': {
      if (node?.kind !== 'map') throw new UnsupportedScan('map plan');
      const value = compile(eventType, w.valuesType!, d.valuesType!, node.values, undefined, undefined)!;
      const parent = staticPath;
      return (buf, pos, path, st) => {
        const at = parent ?? path;
        for (;;) {
          pos = readVarint(buf, pos);
          let count = varint.value;
          if (count === 0) return pos;
          if (count < 0) {
            count = -count;
            pos = readVarint(buf, pos);
          }
          takeItems(count);
          for (let i = 0; i < count; i++) {
            const keyStart = readVarint(buf, pos);
            const keyEnd = keyStart + varint.value;
            if (varint.value < 0 || keyEnd > buf.length) throw new MalformedDatumError('truncated');
            pos = value(buf, keyEnd, valueStep(at, buf.toString('utf8', keyStart, keyEnd)), st);
          }
        }
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      if (node?.kind !== 'union') throw new UnsupportedScan('union plan');
      const byName = new Map(node.branches.map((b) => [b.name, b.node]));
      const branches = w.types!.map((b, j) => {
        const bt = b as TypeShape;
        const plan = byName.get(bt.branchName ?? '') ?? (bt.name === undefined ? undefined : byName.get(bt.name));
        const scan = compile(eventType, b, d.types![j]!, plan, undefined, staticPath);
        const skip = compileSkipper(b);
        return scan ?? ((buf: Buffer, pos: number) => skip(buf, pos));
      });
      return (buf, pos, path, st) => {
        const next = readVarint(buf, pos);
        const branch = branches[varint.value];
        if (branch === undefined) throw new MalformedDatumError('invalid union or enum index');
        return branch(buf, next, path, st);
      };
    }
    default:
      throw new UnsupportedScan(`plan node ${node?.kind ?? 'subject'} on ${w.typeName}`);
  }
}

/** The subject field: decoded (it is one small value) and kept. */
function subjectField(type: avro.Type): Scan {
  const skip = compileSkipper(type);
  return (buf, pos, _path, st) => {
    const end = skip(buf, pos);
    st.subject = type.decode(buf, pos).value;
    return end;
  };
}

/** A personal leaf: its range and plaintext. Strings (the common case) are sliced, not decoded. */
function personal(eventType: string, w: TypeShape, d: TypeShape, node: Extract<PlanNode, { kind: 'personal' }>, staticPath: string | undefined): Scan {
  const nullable = d.typeName.startsWith('union');
  const skip = compileSkipper(w);
  const staticAd = staticPath === undefined ? undefined : associatedData(eventType, staticPath);
  const adCache = new Map<string, Buffer>();
  const adOf = (path: string): Buffer => {
    let ad = adCache.get(path);
    if (ad === undefined) {
      if (adCache.size >= MAX_CACHED_PATHS) adCache.clear();
      adCache.set(path, (ad = associatedData(eventType, path)));
    }
    return ad;
  };
  const readPlaintext = plaintextReader(w, node);
  return (buf, pos, path, st) => {
    const end = skip(buf, pos);
    const slot: PersonalSlot = { start: pos, end, category: node.category, ad: staticAd ?? adOf(path), source: null, from: 0, to: 0, nullable, withoutKey: node.withoutKey };
    readPlaintext(buf, pos, end, slot);
    st.slots.push(slot);
    return end;
  };
}

/** Paths under arrays and maps vary without end: a bounded cache, cleared when full. */
const MAX_CACHED_PATHS = 4096;

/** Points `slot` at the plaintext of the value in [pos, end): the object path's `node.encode(decoded value)`, or null for null. */
type PlaintextReader = (buf: Buffer, pos: number, end: number, slot: PersonalSlot) => void;

function plaintextReader(w: TypeShape, node: Extract<PlanNode, { kind: 'personal' }>): PlaintextReader {
  const set = (slot: PersonalSlot, source: Buffer | null, from: number, to: number): void => {
    slot.source = source;
    slot.from = from;
    slot.to = to;
  };
  const stringAt: PlaintextReader = (buf, pos, end, slot) => {
    const start = readVarint(buf, pos);
    // The object path decodes the string first: invalid UTF-8 becomes U+FFFD there, so here too.
    if (isUtf8(buf.subarray(start, end))) set(slot, buf, start, end);
    else {
      const replaced = Buffer.from(buf.toString('utf8', start, end), 'utf8');
      set(slot, replaced, 0, replaced.length);
    }
  };
  if (w.typeName === 'string' && isUtf8Encoder(node)) return stringAt;
  const types = w.types;
  if (w.typeName === 'union:unwrapped' && types !== undefined && types.length === 2 && isUtf8Encoder(node)) {
    const nullIndex = types.findIndex((t) => t.typeName === 'null');
    const stringIndex = types.findIndex((t) => t.typeName === 'string');
    if (nullIndex >= 0 && stringIndex >= 0) {
      return (buf, pos, end, slot) => {
        const next = readVarint(buf, pos);
        if (varint.value === nullIndex) set(slot, null, 0, 0);
        else stringAt(buf, next, end, slot);
      };
    }
  }
  return (buf, pos, _end, slot) => {
    const value = (w as avro.Type).decode(buf, pos).value as unknown;
    const plaintext = value === null || value === undefined ? null : node.encode(value);
    set(slot, plaintext, 0, plaintext?.length ?? 0);
  };
}

/** Whether the leaf's plaintext is the string's UTF-8. */
function isUtf8Encoder(node: Extract<PlanNode, { kind: 'personal' }>): boolean {
  return node.plaintext === 'utf8';
}
