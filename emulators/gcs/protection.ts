/**
 * Object holds and object retention, as Cloud Storage enforces them:
 *
 * - `temporaryHold` / `eventBasedHold`: while either is set the object can be
 *   neither deleted nor replaced; anyone allowed to patch the object may set or
 *   release them.
 * - `retention: {mode, retainUntilTime}` (Object Retention Lock, only in a
 *   bucket created with `enableObjectRetention=true`): until `retainUntilTime`
 *   the object can be neither deleted nor replaced. Setting one or moving the
 *   time later is always allowed; shortening or removing an `Unlocked` one, or
 *   locking it, needs `overrideUnlockedRetention=true` (in GCS also the
 *   `storage.objects.overrideUnlockedRetention` permission); a `Locked` one can
 *   never be shortened, removed or unlocked. An object cannot carry an
 *   event-based hold and a retention at once.
 *
 * Metadata edits stay allowed on a protected object; refusals are 403
 * `forbidden`, bad values 400 `invalid`.
 */
import type { AppError } from '../../lib/errors.ts';
import { errors, gcsError } from './gcs-errors.ts';
import type { BucketRecord, ObjectProtection, ObjectRecord, ObjectRetention } from './model.ts';

/** What a request body asks for: a field left out is `undefined`, `null` asks to remove it. */
export interface ProtectionPatch {
  temporaryHold?: boolean;
  eventBasedHold?: boolean;
  retention?: ObjectRetention | null;
}

/** Reads the hold and retention fields of an object resource sent by a client. */
export function pickProtection(body: unknown): ProtectionPatch {
  const out: ProtectionPatch = {};
  if (typeof body !== 'object' || body === null) return out;
  const src = body as Record<string, unknown>;
  for (const f of ['temporaryHold', 'eventBasedHold'] as const) {
    const v = src[f];
    if (v === undefined) continue;
    if (v === null || v === false || v === 'false') out[f] = false;
    else if (v === true || v === 'true') out[f] = true;
    else throw errors.invalid(`Invalid value for ${f}: ${JSON.stringify(v)}`);
  }
  if (Object.hasOwn(src, 'retention')) {
    const r = src.retention;
    if (r === null) out.retention = null;
    else if (typeof r === 'object' && !Array.isArray(r)) out.retention = parseRetention(r as Record<string, unknown>);
    else throw errors.invalid('Invalid value for retention: expected an object with mode and retainUntilTime.');
  }
  return out;
}

function parseRetention(r: Record<string, unknown>): ObjectRetention {
  const mode = r.mode;
  if (mode !== 'Unlocked' && mode !== 'Locked') throw errors.invalid(`Invalid value for retention.mode: ${JSON.stringify(mode)} (Unlocked or Locked).`);
  const until = r.retainUntilTime;
  const ms = typeof until === 'string' ? Date.parse(until) : Number.NaN;
  if (Number.isNaN(ms)) throw errors.invalid(`Invalid value for retention.retainUntilTime: ${JSON.stringify(until)} (an RFC 3339 time).`);
  return { mode, retainUntilTime: new Date(ms).toISOString() };
}

/** The 403 for deleting or replacing `rec`, or undefined when nothing protects it at `nowMs`. */
export function protectionFailure(rec: ObjectRecord, nowMs: number): AppError | undefined {
  const id = `${rec.bucket}/${rec.name}`;
  if (rec.temporaryHold === true) {
    return forbidden(`Object '${id}' is under active Temporary hold and cannot be deleted, overwritten or archived until hold is removed.`);
  }
  if (rec.eventBasedHold === true) {
    return forbidden(`Object '${id}' is under active Event-Based hold and cannot be deleted, overwritten or archived until hold is removed.`);
  }
  if (rec.retention !== undefined && Date.parse(rec.retention.retainUntilTime) > nowMs) {
    return forbidden(`Object '${id}' is subject to object retention and cannot be deleted, overwritten or archived until ${rec.retention.retainUntilTime}.`);
  }
  return undefined;
}

/** The protection of a new object from its upload's resource (holds and retention may be set at insert). */
export function protectionAtInsert(bucket: BucketRecord, patch: ProtectionPatch, nowMs: number): ObjectProtection {
  return nextProtection(bucket, {}, patch, { override: false, nowMs });
}

/**
 * The protection after applying `patch` to `current`; throws GCS's error when
 * the change is not allowed. `replace` (objects.update) treats a field left
 * out as removed.
 */
export function nextProtection(
  bucket: BucketRecord,
  current: ObjectProtection,
  patch: ProtectionPatch,
  opts: { override: boolean; nowMs: number; replace?: boolean },
): ObjectProtection {
  const next: ObjectProtection = {};
  const temporaryHold = patch.temporaryHold ?? (opts.replace === true ? false : current.temporaryHold === true);
  const eventBasedHold = patch.eventBasedHold ?? (opts.replace === true ? false : current.eventBasedHold === true);
  if (temporaryHold) next.temporaryHold = true;
  if (eventBasedHold) next.eventBasedHold = true;
  const wanted = patch.retention === undefined ? (opts.replace === true ? null : (current.retention ?? null)) : patch.retention;
  if (wanted !== null) {
    if (bucket.objectRetention !== true) throw errors.invalid(`Object retention is not enabled on bucket '${bucket.name}'.`);
    if (eventBasedHold) throw errors.invalid('An object cannot have an event-based hold and a retention configuration at the same time.');
  }
  const failure = retentionChangeFailure(current.retention, wanted, opts);
  if (failure !== undefined) throw failure;
  if (wanted !== null) next.retention = wanted;
  return next;
}

function retentionChangeFailure(
  current: ObjectRetention | undefined,
  wanted: ObjectRetention | null,
  opts: { override: boolean; nowMs: number },
): AppError | undefined {
  if (current === undefined) {
    if (wanted !== null && Date.parse(wanted.retainUntilTime) <= opts.nowMs) {
      return errors.invalid(`retention.retainUntilTime ${wanted.retainUntilTime} is not in the future.`);
    }
    return undefined;
  }
  const same = wanted !== null && wanted.mode === current.mode && wanted.retainUntilTime === current.retainUntilTime;
  if (same) return undefined;
  const extends_ = wanted !== null && wanted.mode === current.mode && Date.parse(wanted.retainUntilTime) > Date.parse(current.retainUntilTime);
  if (extends_) return undefined;
  if (current.mode === 'Locked') {
    return forbidden('The retention of this object is Locked: its retain-until time can only be extended, never shortened or removed.');
  }
  if (!opts.override) {
    return forbidden('Shortening, removing or locking an Unlocked object retention requires overrideUnlockedRetention=true.');
  }
  return undefined;
}

function forbidden(message: string): AppError {
  return gcsError('FORBIDDEN', message, 'forbidden');
}

/** The protection fields of an object, for its JSON resource. */
export function protectionResource(o: ObjectProtection): Record<string, unknown> {
  return {
    ...(o.temporaryHold === true ? { temporaryHold: true } : {}),
    ...(o.eventBasedHold === true ? { eventBasedHold: true } : {}),
    ...(o.retention === undefined ? {} : { retention: { ...o.retention } }),
  };
}
