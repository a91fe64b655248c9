/**
 * The production key store on Bigtable. One row per user (row key = user id):
 * family `k` holds one cell per category with the wrapped root key, family `t`
 * holds tombstones (`t:<category>` for an opted-out category, `t:_user` for a
 * deleted user). Creates are conditional writes (CheckAndMutateRow), so
 * concurrent creates for one user leave one key per category; deletes remove
 * the key cells (every version) and write the tombstone in one atomic request.
 * No internal retries: every call has one bounded deadline.
 */
import type { Bigtable, Table } from '@google-cloud/bigtable';
import { keychainFamilies } from '../../lib/names.ts';
import type { ScannableKeyStore, StoredCategory, StoredKeychain } from './store.ts';

/** Families from lib/names.ts, which Terraform's keychains table is checked against. */
export const KEY_FAMILY = keychainFamilies.key;
export const TOMBSTONE_FAMILY = keychainFamilies.tombstone;
/** Qualifier of the user tombstone; categories never start with `_`. */
export const USER_TOMBSTONE = '_user';

export interface BigtableStoreOptions {
  instanceId: string;
  tableId: string;
  /** Per-call deadline (gRPC timeout) in ms. */
  deadlineMs: number;
}

interface Cell {
  value: Buffer | string;
}
type RowData = Record<string, Record<string, Cell[]>>;

/** Creates the table and its families if missing (local mode and tests; Terraform does it in production). */
export async function ensureKeychainTable(bigtable: Bigtable, instanceId: string, tableId: string): Promise<void> {
  const table = bigtable.instance(instanceId).table(tableId);
  const [exists] = await table.exists();
  if (exists) return;
  try {
    await table.create({ families: [{ name: KEY_FAMILY, rule: { versions: 1 } }, { name: TOMBSTONE_FAMILY, rule: { versions: 1 } }] });
  } catch (err) {
    if ((err as { code?: number }).code !== 6 /* ALREADY_EXISTS */) throw err;
  }
}

export function createBigtableStore(bigtable: Bigtable, opts: BigtableStoreOptions): ScannableKeyStore {
  const table: Table = bigtable.instance(opts.instanceId).table(opts.tableId);
  // Fail fast: the client's own read retries are off; the caller decides.
  (table as { maxRetries?: number }).maxRetries = 0;
  const gaxOptions = { timeout: opts.deadlineMs, maxRetries: 0, retry: { retryCodes: [] } };

  const readRows = (keys: readonly string[]): Promise<Map<string, RowData>> => readStream({ keys: [...keys] });

  const readStream = (select: { keys: string[] } | { ranges: object[]; limit: number }): Promise<Map<string, RowData>> =>
    new Promise((resolve, reject) => {
      const rows = new Map<string, RowData>();
      const stream = table.createReadStream({ ...select, decode: false, gaxOptions, filter: { column: { cellLimit: 1 } } } as never);
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new Error(`Bigtable read exceeded ${opts.deadlineMs} ms`));
      }, opts.deadlineMs);
      stream.on('data', (row: { id: string | Buffer; data: RowData }) => rows.set(row.id.toString(), row.data));
      stream.on('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.on('end', () => {
        clearTimeout(timer);
        resolve(rows);
      });
    });

  const readOne = async (userId: string): Promise<StoredKeychain> => toKeychain((await readRows([userId])).get(userId));

  /** One atomic MutateRow-equivalent of several mutation kinds: both branches of a check-and-mutate. */
  const mutateAtomically = async (userId: string, mutations: object[]): Promise<void> => {
    await table.row(userId).filter({ all: true } as never, { onMatch: mutations as never, onNoMatch: mutations as never, gaxOptions });
  };

  /** Writes `cells` if the predicate outputs no cell; true if written. */
  const insertUnless = async (userId: string, predicate: object, cells: Record<string, Buffer>): Promise<boolean> => {
    const [matched] = await table.row(userId).filter(predicate as never, {
      onNoMatch: [{ method: 'insert', data: { [KEY_FAMILY]: cells } }] as never,
      gaxOptions,
    });
    return !matched;
  };

  return {
    kind: 'bigtable',
    async read(userIds) {
      const rows = await readRows(userIds);
      return new Map(userIds.map((id) => [id, toKeychain(rows.get(id))]));
    },
    async scan(cursor, limit) {
      // Row keys in byte order; the cursor is the last row key, hex-encoded.
      const start = cursor === undefined ? undefined : { value: Buffer.from(cursor, 'hex'), inclusive: false };
      const rows = await readStream({ ranges: [start === undefined ? {} : { start }], limit });
      const ids = [...rows.keys()];
      const last = ids.at(-1);
      return {
        keychains: ids.map((id) => [id, toKeychain(rows.get(id))] as [string, StoredKeychain]),
        cursor: ids.length < limit || last === undefined ? undefined : Buffer.from(last, 'utf8').toString('hex'),
      };
    },
    async createIfAbsent(userId, wrappedRootKeys) {
      if (wrappedRootKeys.size === 0) return readOne(userId);
      const all = Object.fromEntries(wrappedRootKeys);
      // New user (empty row): the whole keychain in one conditional write.
      if (await insertUnless(userId, { all: true }, all)) {
        // The row was empty, so it now holds exactly these cells.
        return { state: 'active', categories: new Map([...wrappedRootKeys].map(([c, w]) => [c, { state: 'active', wrappedRootKey: w }])) };
      }
      // Existing row: each category only if it has neither key nor tombstone and the user is not deleted.
      await Promise.all(
        [...wrappedRootKeys].map(([category, wrapped]) =>
          insertUnless(userId, { column: `(${escapeRegex(category)}|${USER_TOMBSTONE})` }, { [category]: wrapped }),
        ),
      );
      return readOne(userId);
    },
    async deleteUser(userId) {
      await mutateAtomically(userId, [
        { method: 'delete', data: [KEY_FAMILY] },
        { method: 'insert', data: { [TOMBSTONE_FAMILY]: { [USER_TOMBSTONE]: Buffer.from(new Date().toISOString()) } } },
      ]);
    },
    async deleteCategory(userId, category) {
      await mutateAtomically(userId, [
        { method: 'delete', data: [`${KEY_FAMILY}:${category}`] },
        { method: 'insert', data: { [TOMBSTONE_FAMILY]: { [category]: Buffer.from(new Date().toISOString()) } } },
      ]);
    },
    async ping() {
      await readRows(['_padlock_ping']);
    },
    async close() {
      await bigtable.close();
    },
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function toKeychain(row: RowData | undefined): StoredKeychain {
  if (row === undefined) return { state: 'absent' };
  const tombstones = row[TOMBSTONE_FAMILY] ?? {};
  if (tombstones[USER_TOMBSTONE] !== undefined) return { state: 'deleted' };
  const categories = new Map<string, StoredCategory>();
  for (const [category, cells] of Object.entries(row[KEY_FAMILY] ?? {})) {
    const value = cells[0]?.value;
    if (value !== undefined) categories.set(category, { state: 'active', wrappedRootKey: Buffer.isBuffer(value) ? value : Buffer.from(value, 'binary') });
  }
  for (const category of Object.keys(tombstones)) categories.set(category, { state: 'deleted' });
  return { state: 'active', categories };
}
