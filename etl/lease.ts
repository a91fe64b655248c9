/**
 * One closer at a time per period: a lease object created with
 * `ifGenerationMatch: 0`, holding an expiry so that a crashed closer's lease
 * is taken over (deleted at its generation, then created anew).
 */
import type { Bucket } from '@google-cloud/storage';
import { AppError } from '../lib/errors.ts';
import { createIfAbsent, deleteObject, download, replaceIfGeneration, statObject } from './storage-io.ts';

export interface Lease {
  name: string;
  generation: string;
}

export async function acquireLease(bucket: Bucket, name: string, owner: string, now: number, leaseMs: number): Promise<Lease | undefined> {
  const body = Buffer.from(JSON.stringify({ owner, expiresAt: new Date(now + leaseMs).toISOString() }));
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await createIfAbsent(bucket, name, body, { contentType: 'application/json' });
    const info = await statObject(bucket, name);
    if (info === undefined) continue; // released meanwhile: try again
    if (r === 'created') return { name, generation: info.generation };
    const held = await download(bucket, name);
    let expiresAt: number;
    try {
      expiresAt = Date.parse((JSON.parse(held?.toString('utf8') ?? '{}') as { expiresAt?: string }).expiresAt ?? '');
    } catch {
      expiresAt = 0; // unreadable lease: treat as expired
    }
    if (Number.isFinite(expiresAt) && expiresAt > now) return undefined;
    await deleteObject(bucket, name, info.generation);
  }
  return undefined;
}

export async function releaseLease(bucket: Bucket, lease: Lease): Promise<void> {
  await deleteObject(bucket, lease.name, lease.generation);
}

/**
 * Extends a held lease (a long close): rewritten at its generation, so a
 * lease taken over after it expired is not clobbered; that case throws CONFLICT.
 */
export async function renewLease(bucket: Bucket, lease: Lease, owner: string, now: number, leaseMs: number): Promise<void> {
  const body = Buffer.from(JSON.stringify({ owner, expiresAt: new Date(now + leaseMs).toISOString() }));
  const lost = (): AppError => new AppError('CONFLICT', { message: `lease ${lease.name} was lost (expired and taken over)` });
  if ((await replaceIfGeneration(bucket, lease.name, body, lease.generation, 'application/json')) === 'changed') throw lost();
  const info = await statObject(bucket, lease.name);
  if (info === undefined) throw lost();
  lease.generation = info.generation;
}

/**
 * A renewal to call between steps of a long close: it renews `lease` once a
 * third of `leaseMs` has passed since the last renewal.
 */
export function leaseHeartbeat(bucket: Bucket, lease: Lease, owner: string, now: () => number, leaseMs: number): () => Promise<void> {
  let renewed = now();
  return async () => {
    const t = now();
    if (t - renewed < leaseMs / 3) return;
    await renewLease(bucket, lease, owner, t, leaseMs);
    renewed = t;
  };
}
