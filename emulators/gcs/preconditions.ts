/**
 * GCS preconditions (`ifGenerationMatch`, `ifGenerationNotMatch`,
 * `ifMetagenerationMatch`, `ifMetagenerationNotMatch`), checked against the
 * live object or its absence. `ifGenerationMatch=0` means "only if absent".
 */
import type { AppError } from '../../lib/errors.ts';
import { errors } from './gcs-errors.ts';

export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

const names = ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const;

/** Reads preconditions from query parameters, with an optional prefix (`ifSource…` for copy sources). */
export function preconditionsFrom(query: URLSearchParams, source = false): Preconditions {
  const out: Preconditions = {};
  for (const n of names) {
    const key = source ? n.replace(/^if/, 'ifSource') : n;
    const v = query.get(key);
    if (v === null) continue;
    if (!/^\d+$/.test(v)) throw errors.invalid(`Invalid argument for ${key}: ${v}`);
    out[n] = BigInt(v).toString();
  }
  return out;
}

/** Reads `objectPreconditions` of a compose source (numbers or strings). */
export function preconditionsFromJson(value: unknown): Preconditions {
  if (typeof value !== 'object' || value === null) return {};
  const v = (value as Record<string, unknown>).ifGenerationMatch;
  return v === undefined ? {} : { ifGenerationMatch: String(v) };
}

/**
 * The error these preconditions raise against `current` (undefined: no live
 * object), or undefined when they hold. Mirrors GCS: a missing object fails
 * every precondition except `ifGenerationMatch=0` and the `NotMatch` forms.
 */
export function checkPreconditions(
  pre: Preconditions,
  current: { generation: string; metageneration: number } | undefined,
): AppError | undefined {
  const gen = current?.generation ?? '0';
  if (pre.ifGenerationMatch !== undefined && pre.ifGenerationMatch !== gen) return errors.preconditionFailed();
  if (pre.ifGenerationNotMatch !== undefined && pre.ifGenerationNotMatch === gen) return errors.preconditionFailed();
  if (pre.ifMetagenerationMatch !== undefined) {
    if (current === undefined || pre.ifMetagenerationMatch !== String(current.metageneration)) {
      return errors.preconditionFailed();
    }
  }
  if (pre.ifMetagenerationNotMatch !== undefined && current !== undefined) {
    if (pre.ifMetagenerationNotMatch === String(current.metageneration)) return errors.preconditionFailed();
  }
  return undefined;
}

export function hasPreconditions(pre: Preconditions): boolean {
  return names.some((n) => pre[n] !== undefined);
}
