/**
 * The key store on PostgreSQL (Cloud SQL for PostgreSQL in production), through
 * a pooled `pg` client. Two tables in one schema:
 *
 * - `keychain_users(user_id bytea PRIMARY KEY, deleted boolean)`: one row per
 *   user padlock created a keychain for or deleted; `deleted` is the user
 *   tombstone, and the row is the lock that orders creates against a deletion.
 * - `keychain_keys(user_id bytea, category text, wrapped_root_key bytea NULL,
 *   PRIMARY KEY (user_id, category))`: one row per category; a NULL key is the
 *   category tombstone (an opt-out).
 *
 * User ids are stored as their UTF-8 bytes: exact (no collation, no encoding
 * conversion; a user id may hold U+0000, which `text` refuses) and ordered
 * byte-wise, as Bigtable orders row keys, for the migration jobs' scans.
 *
 * Create-if-absent is one statement: an upsert that locks the user's row and
 * returns its latest committed version, then `INSERT … ON CONFLICT DO NOTHING`
 * of the categories, only if the user is not deleted. The primary key decides
 * between concurrent creates; the row lock orders a create against a deletion,
 * which upserts `deleted` first and then, in a second statement of the same
 * transaction (so with a snapshot taken after it holds the lock), deletes the
 * key rows. The stored keychain is then re-read and returned, never assumed.
 *
 * Fail fast: no retries; connecting, waiting for a pooled connection and every
 * statement are bounded by the store deadline.
 */
import pg from 'pg';
import type { ScannableKeyStore, StoredCategory, StoredKeychain } from './store.ts';

export interface PostgresStoreOptions {
  /** Host name, IP address, or a Unix socket folder (e.g. Cloud SQL's `/cloudsql/<instance>`). */
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** Schema holding padlock's tables (created if missing). */
  schema: string;
  /** Connections in the pool. */
  poolSize: number;
  /** Bound of connecting, of waiting for a pooled connection and of one statement, in ms. */
  deadlineMs: number;
  /** Called when an idle pooled connection fails (e.g. the server restarted); the pool drops it. */
  onIdleError?: (err: Error) => void;
}

/** A schema name padlock accepts: a plain lower-case SQL identifier, so it needs no quoting rules. */
export const POSTGRES_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** PostgreSQL store with its pool; `ensureSchema()` creates the tables if missing. */
export interface PostgresKeyStore extends ScannableKeyStore {
  readonly kind: 'postgres';
  ensureSchema(): Promise<void>;
}

interface KeychainRow {
  user_id: Buffer;
  deleted: boolean | null;
  category: string | null;
  wrapped_root_key: Buffer | null;
}

export function createPostgresStore(opts: PostgresStoreOptions): PostgresKeyStore {
  if (!POSTGRES_SCHEMA_PATTERN.test(opts.schema)) throw new Error(`Invalid PostgreSQL schema name: ${opts.schema}`);
  const users = `${opts.schema}.keychain_users`;
  const keys = `${opts.schema}.keychain_keys`;
  const pool = new pg.Pool({
    host: opts.host,
    port: opts.port,
    database: opts.database,
    user: opts.user,
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    max: opts.poolSize,
    connectionTimeoutMillis: opts.deadlineMs,
    query_timeout: opts.deadlineMs,
    statement_timeout: opts.deadlineMs,
    application_name: 'padlock',
  });
  // An idle connection that breaks (server restart, network) must not crash the process.
  pool.on('error', (err) => opts.onIdleError?.(err));

  const bytes = (userId: string): Buffer => Buffer.from(userId, 'utf8');

  const readRows = async (userIds: readonly string[]): Promise<Map<string, KeychainRow[]>> => {
    // One statement, one snapshot, one round trip for the whole multi-get.
    const { rows } = await pool.query<KeychainRow>(
      `SELECT user_id, deleted, NULL::text AS category, NULL::bytea AS wrapped_root_key FROM ${users} WHERE user_id = ANY($1::bytea[])
       UNION ALL
       SELECT user_id, NULL, category, wrapped_root_key FROM ${keys} WHERE user_id = ANY($1::bytea[])`,
      [userIds.map(bytes)],
    );
    const byUser = new Map<string, KeychainRow[]>();
    for (const row of rows) {
      const id = row.user_id.toString('utf8');
      const list = byUser.get(id);
      if (list) list.push(row);
      else byUser.set(id, [row]);
    }
    return byUser;
  };

  const readOne = async (userId: string): Promise<StoredKeychain> => toKeychain((await readRows([userId])).get(userId));

  const inTransaction = async (fn: (client: pg.PoolClient) => Promise<void>): Promise<void> => {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await fn(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw err;
    } finally {
      client.release(broken);
    }
  };

  return {
    kind: 'postgres',
    async ensureSchema() {
      await inTransaction(async (client) => {
        // Instances starting together: one creates, the others wait and find it done.
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('padlock schema ' || $1::text))`, [opts.schema]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${users} (user_id bytea PRIMARY KEY, deleted boolean NOT NULL DEFAULT false)`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${keys} (user_id bytea NOT NULL, category text NOT NULL, wrapped_root_key bytea, PRIMARY KEY (user_id, category))`,
        );
      });
    },
    async read(userIds) {
      const rows = await readRows(userIds);
      return new Map(userIds.map((id) => [id, toKeychain(rows.get(id))]));
    },
    async scan(cursor, limit) {
      // Users with a row in either table (an opt-out before sign-up has only a key row), in byte order.
      const { rows } = await pool.query<{ user_id: Buffer }>(
        `SELECT user_id FROM (SELECT user_id FROM ${users} WHERE user_id > $1 UNION SELECT user_id FROM ${keys} WHERE user_id > $1) ids
         ORDER BY user_id LIMIT $2`,
        [cursor === undefined ? Buffer.alloc(0) : Buffer.from(cursor, 'hex'), limit],
      );
      const ids = rows.map((r) => r.user_id.toString('utf8'));
      const byUser = await readRows(ids);
      const last = rows.at(-1);
      return {
        keychains: ids.map((id) => [id, toKeychain(byUser.get(id))] as [string, StoredKeychain]),
        cursor: rows.length < limit || last === undefined ? undefined : last.user_id.toString('hex'),
      };
    },
    async createIfAbsent(userId, wrappedRootKeys) {
      const entries = [...wrappedRootKeys];
      await pool.query(
        // The no-op update takes the user's row lock and yields its latest committed `deleted`.
        `WITH u AS (
           INSERT INTO ${users} (user_id) VALUES ($1) ON CONFLICT (user_id) DO UPDATE SET deleted = ${users}.deleted RETURNING deleted
         )
         INSERT INTO ${keys} (user_id, category, wrapped_root_key)
         SELECT $1, c.category, c.wrapped_root_key FROM unnest($2::text[], $3::bytea[]) AS c(category, wrapped_root_key), u
         WHERE NOT u.deleted
         ON CONFLICT (user_id, category) DO NOTHING`,
        [bytes(userId), entries.map(([c]) => c), entries.map(([, w]) => w)],
      );
      // Whatever the insert reported, the stored keychain is the answer.
      return readOne(userId);
    },
    async deleteUser(userId) {
      await inTransaction(async (client) => {
        await client.query(`INSERT INTO ${users} (user_id, deleted) VALUES ($1, true) ON CONFLICT (user_id) DO UPDATE SET deleted = true`, [bytes(userId)]);
        // A new statement: its snapshot sees every create that held the row lock before us.
        await client.query(`DELETE FROM ${keys} WHERE user_id = $1`, [bytes(userId)]);
      });
    },
    async deleteCategory(userId, category) {
      await pool.query(
        `INSERT INTO ${keys} (user_id, category, wrapped_root_key) VALUES ($1, $2, NULL)
         ON CONFLICT (user_id, category) DO UPDATE SET wrapped_root_key = NULL`,
        [bytes(userId), category],
      );
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}

function toKeychain(rows: readonly KeychainRow[] | undefined): StoredKeychain {
  if (rows === undefined) return { state: 'absent' };
  if (rows.some((r) => r.deleted === true)) return { state: 'deleted' };
  const categories = new Map<string, StoredCategory>();
  for (const row of rows) {
    if (row.category === null) continue;
    categories.set(row.category, row.wrapped_root_key === null ? { state: 'deleted' } : { state: 'active', wrappedRootKey: row.wrapped_root_key });
  }
  return { state: 'active', categories };
}
