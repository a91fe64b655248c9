/**
 * Backups of the key store that respect shredding (README "Backups"):
 *
 * - `dumpKeychains` writes every keychain as the store holds it (wrapped root
 *   keys and tombstones, never an unwrapped key) to a new JSON-lines file of
 *   mode 0600: a header with the creation time and the expiry, one line per
 *   user, a trailer with the count (so a truncated dump is refused).
 * - `restoreDump` refuses an expired, malformed or truncated dump before it
 *   writes anything, then applies the deletions the live store holds, the dump
 *   (with `copyKeychain`: tombstones win, a key is never replaced), and the live
 *   deletions again, so a user or category deleted after the dump, or while the
 *   restore ran, stays deleted.
 */
import { createReadStream } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { AppError } from '../../lib/errors.ts';
import { copyKeychain } from './migration.ts';
import type { KeyStore, ScannableKeyStore, StoredCategory, StoredKeychain } from './store.ts';

export const DUMP_FORMAT = 'padlock-keychain-dump';
export const DUMP_VERSION = 1;
/** The deletion bound for backups: no dump outlives a deletion by more than this. */
export const MAX_DUMP_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;
/** Longest line a dump may hold (a keychain has a handful of categories of ~60-byte wrapped keys). */
const MAX_LINE_CHARS = 1 << 20;
/** Keychains restored at once. */
const RESTORE_CONCURRENCY = 16;

export interface DumpHeader {
  format: typeof DUMP_FORMAT;
  version: typeof DUMP_VERSION;
  store: string;
  createdAt: string;
  expiresAt: string;
}

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)) && new Date(s).toISOString() === s, 'expected an ISO 8601 UTC time');
const headerShape = z.object({ format: z.literal(DUMP_FORMAT), version: z.literal(DUMP_VERSION), store: z.string(), createdAt: isoTime, expiresAt: isoTime }).strict();
const base64 = z.string().refine((s) => Buffer.from(s, 'base64').toString('base64') === s && s.length > 0, 'expected canonical base64');
const categoryShape = z.discriminatedUnion('state', [
  z.object({ category: z.string(), state: z.literal('active'), wrappedRootKey: base64 }).strict(),
  z.object({ category: z.string(), state: z.literal('deleted') }).strict(),
]);
const keychainShape = z.discriminatedUnion('state', [
  z.object({ userId: z.string(), state: z.literal('deleted') }).strict(),
  z.object({ userId: z.string(), state: z.literal('active'), categories: z.array(categoryShape) }).strict(),
]);
const trailerShape = z.object({ end: z.literal(true), keychains: z.number().int().nonnegative() }).strict();

function dumpInvalid(file: string, line: number, why: string): AppError {
  return new AppError('BAD_REQUEST', { message: `Dump ${file} is not valid at line ${line}: ${why}` });
}

function lineOf(userId: string, keychain: StoredKeychain): string | undefined {
  if (keychain.state === 'absent') return undefined;
  if (keychain.state === 'deleted') return JSON.stringify({ userId, state: 'deleted' });
  const categories = [...keychain.categories].map(([category, c]) =>
    c.state === 'active' ? { category, state: 'active', wrappedRootKey: c.wrappedRootKey.toString('base64') } : { category, state: 'deleted' },
  );
  return JSON.stringify({ userId, state: 'active', categories });
}

export interface DumpResult extends DumpHeader {
  keychains: number;
}

/**
 * Writes every keychain of `store` to `file`, which must not exist yet (created
 * with mode 0600; removed again if the dump fails). The dump expires
 * `expiresInDays` after `now`, at most `MAX_DUMP_RETENTION_DAYS`.
 */
export async function dumpKeychains(
  store: ScannableKeyStore,
  file: string,
  opts: { expiresInDays: number; pageSize: number; now?: Date },
): Promise<DumpResult> {
  if (!Number.isInteger(opts.expiresInDays) || opts.expiresInDays < 1 || opts.expiresInDays > MAX_DUMP_RETENTION_DAYS) {
    throw new AppError('CONFIG_INVALID', {
      message: `Invalid configuration: EXPIRES_IN_DAYS must be 1..${MAX_DUMP_RETENTION_DAYS} (the deletion bound for backups), got ${opts.expiresInDays}`,
    });
  }
  const now = opts.now ?? new Date();
  const header: DumpHeader = {
    format: DUMP_FORMAT,
    version: DUMP_VERSION,
    store: store.kind,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + opts.expiresInDays * DAY_MS).toISOString(),
  };
  // 'wx': never overwrite (an older dump may have another expiry); 0600 at creation, before any key is written.
  const handle = await open(file, 'wx', 0o600);
  let keychains = 0;
  try {
    await handle.write(`${JSON.stringify(header)}\n`);
    let cursor: string | undefined;
    do {
      const page = await store.scan(cursor, opts.pageSize);
      const lines: string[] = [];
      for (const [userId, keychain] of page.keychains) {
        const line = lineOf(userId, keychain);
        if (line !== undefined) lines.push(line);
      }
      if (lines.length > 0) await handle.write(`${lines.join('\n')}\n`);
      keychains += lines.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    await handle.write(`${JSON.stringify({ end: true, keychains })}\n`);
    await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    throw err;
  }
  return { ...header, keychains };
}

type DumpLine = { kind: 'header'; header: DumpHeader } | { kind: 'keychain'; userId: string; keychain: StoredKeychain } | { kind: 'trailer'; keychains: number };

function keychainOf(parsed: z.infer<typeof keychainShape>): StoredKeychain {
  if (parsed.state === 'deleted') return { state: 'deleted' };
  const categories = new Map<string, StoredCategory>();
  for (const c of parsed.categories) {
    categories.set(c.category, c.state === 'active' ? { state: 'active', wrappedRootKey: Buffer.from(c.wrappedRootKey, 'base64') } : { state: 'deleted' });
  }
  return { state: 'active', categories };
}

/** The dump's lines, parsed and checked in order: a header first, a trailer last with the right count. */
async function* readDump(file: string): AsyncGenerator<DumpLine> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    yield* parseLines(file, lines);
  } finally {
    lines.close();
    input.destroy();
  }
}

async function* parseLines(file: string, lines: AsyncIterable<string>): AsyncGenerator<DumpLine> {
  let n = 0;
  let keychains = 0;
  let ended = false;
  for await (const text of lines) {
    n++;
    if (text.length > MAX_LINE_CHARS) throw dumpInvalid(file, n, `line longer than ${MAX_LINE_CHARS} characters`);
    if (ended) throw dumpInvalid(file, n, 'data after the trailer');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw dumpInvalid(file, n, 'not JSON');
    }
    const shape = n === 1 ? headerShape : typeof json === 'object' && json !== null && Object.hasOwn(json, 'end') ? trailerShape : keychainShape;
    const parsed = shape.safeParse(json);
    if (!parsed.success) throw dumpInvalid(file, n, parsed.error.issues.map((i) => `${i.path.join('.') || '(line)'}: ${i.message}`).join('; '));
    if (n === 1) yield { kind: 'header', header: parsed.data as DumpHeader };
    else if (shape === trailerShape) {
      const count = (parsed.data as z.infer<typeof trailerShape>).keychains;
      if (count !== keychains) throw dumpInvalid(file, n, `trailer counts ${count} keychains, the dump holds ${keychains}`);
      ended = true;
      yield { kind: 'trailer', keychains: count };
    } else {
      keychains++;
      const k = parsed.data as z.infer<typeof keychainShape>;
      yield { kind: 'keychain', userId: k.userId, keychain: keychainOf(k) };
    }
  }
  if (n === 0) throw dumpInvalid(file, 1, 'empty file');
  if (!ended) throw dumpInvalid(file, n, 'no trailer: the dump is truncated');
}

/** Checks the whole dump (format, expiry, every line, trailer) without writing anything; returns its header. */
export async function checkDump(file: string, now: Date = new Date()): Promise<DumpHeader & { keychains: number }> {
  let header: DumpHeader | undefined;
  let keychains = 0;
  for await (const line of readDump(file)) {
    if (line.kind === 'header') {
      header = line.header;
      const created = Date.parse(header.createdAt);
      const expires = Date.parse(header.expiresAt);
      if (expires <= created || expires - created > MAX_DUMP_RETENTION_DAYS * DAY_MS) {
        throw dumpInvalid(file, 1, `expiresAt must be within ${MAX_DUMP_RETENTION_DAYS} days after createdAt`);
      }
      if (now.getTime() >= expires) {
        throw new AppError('PRECONDITION_FAILED', {
          message: `Dump ${file} expired at ${header.expiresAt} (created ${header.createdAt}): an expired dump may hold keys deleted since, it must not be restored`,
        });
      }
    } else if (line.kind === 'trailer') keychains = line.keychains;
  }
  if (header === undefined) throw dumpInvalid(file, 1, 'no header');
  return { ...header, keychains };
}

export interface DeletionCounts {
  users: number;
  categories: number;
}

/** Applies to `target` every user and category tombstone `live` holds (keys are not copied). */
export async function reapplyDeletions(live: ScannableKeyStore, target: KeyStore, pageSize: number): Promise<DeletionCounts> {
  const counts: DeletionCounts = { users: 0, categories: 0 };
  let cursor: string | undefined;
  do {
    const page = await live.scan(cursor, pageSize);
    await Promise.all(
      page.keychains.map(async ([userId, keychain]) => {
        if (keychain.state === 'deleted') {
          counts.users++;
          await target.deleteUser(userId);
        } else if (keychain.state === 'active') {
          for (const [category, c] of keychain.categories) {
            if (c.state !== 'deleted') continue;
            counts.categories++;
            await target.deleteCategory(userId, category);
          }
        }
      }),
    );
    cursor = page.cursor;
  } while (cursor !== undefined);
  return counts;
}

export interface RestoreResult extends DumpHeader {
  keychains: number;
  /** Tombstones of the live store applied after the dump was restored. */
  deletions: DeletionCounts;
}

/**
 * Restores `file` into `to` and re-applies every deletion `deletionsFrom` (the
 * live store) holds. Live deletions are applied before the dump too, so the
 * target never holds a deleted key even while the restore runs, and again
 * after it, for deletions made meanwhile.
 */
export async function restoreDump(
  file: string,
  stores: { to: KeyStore; deletionsFrom: ScannableKeyStore },
  opts: { pageSize: number; now?: Date },
): Promise<RestoreResult> {
  const header = await checkDump(file, opts.now);
  await reapplyDeletions(stores.deletionsFrom, stores.to, opts.pageSize);
  let batch: Promise<void>[] = [];
  for await (const line of readDump(file)) {
    if (line.kind !== 'keychain') continue;
    batch.push(copyKeychain(stores.to, line.userId, line.keychain));
    if (batch.length >= RESTORE_CONCURRENCY) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
  const deletions = await reapplyDeletions(stores.deletionsFrom, stores.to, opts.pageSize);
  return { ...header, deletions };
}
