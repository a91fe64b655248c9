/**
 * The embedded key store of local mode: one JSON file per user under
 * `<dataDir>/keychains/`, named by a hash of the user id, written atomically
 * (temp file, fsync, rename). Single process: a per-user lock in memory makes
 * create-if-absent race-free; two processes on one folder are not supported.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { withCreated, type KeychainPage, type ScannableKeyStore, type StoredCategory, type StoredKeychain } from './store.ts';

interface KeychainFile {
  version: 1;
  /** The user the file is for (its name is a hash); lets the migration jobs scan the store. Files written before it lack it. */
  userId?: string;
  deleted?: true;
  categories?: Record<string, { wrappedRootKey: string } | { deleted: true }>;
}

export function createEmbeddedStore(dataDir: string): ScannableKeyStore {
  const root = path.join(dataDir, 'keychains');
  const locks = new Map<string, Promise<unknown>>();

  const fileOf = (userId: string): string => embeddedKeychainFile(dataDir, userId);

  /** Runs `fn` after every earlier locked call for `userId`. */
  const locked = async <T>(userId: string, fn: () => Promise<T>): Promise<T> => {
    const previous = locks.get(userId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    locks.set(userId, tail);
    void tail.then(() => {
      if (locks.get(userId) === tail) locks.delete(userId);
    });
    return run;
  };

  const load = async (userId: string): Promise<StoredKeychain> => {
    let text: string;
    try {
      text = await readFile(fileOf(userId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
      throw err;
    }
    return fromFile(JSON.parse(text) as KeychainFile);
  };

  const save = async (userId: string, keychain: StoredKeychain): Promise<void> => {
    const file = fileOf(userId);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify({ ...toFile(keychain), userId }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  };

  return {
    kind: 'embedded',
    async read(userIds) {
      const entries = await Promise.all(userIds.map(async (id) => [id, await load(id)] as const));
      return new Map(entries);
    },
    createIfAbsent(userId, wrappedRootKeys) {
      return locked(userId, async () => {
        const current = await load(userId);
        const next = withCreated(current, wrappedRootKeys);
        if (next !== current) await save(userId, next);
        return next;
      });
    },
    deleteUser(userId) {
      return locked(userId, () => save(userId, { state: 'deleted' }));
    },
    deleteCategory(userId, category) {
      return locked(userId, async () => {
        const current = await load(userId);
        if (current.state === 'deleted') return;
        const categories = new Map(current.state === 'active' ? current.categories : []);
        categories.set(category, { state: 'deleted' });
        await save(userId, { state: 'active', categories });
      });
    },
    async scan(cursor, limit) {
      // File-name (hash) order; the cursor is the last file's hash.
      const page: KeychainPage = { keychains: [], cursor: undefined };
      const shards = (await readdir(root).catch(() => [] as string[])).filter((d) => /^[0-9a-f]{2}$/.test(d)).sort();
      for (const shard of shards) {
        if (cursor !== undefined && shard < cursor.slice(0, 2)) continue;
        const names = (await readdir(path.join(root, shard))).filter((f) => /^[0-9a-f]{64}\.json$/.test(f)).sort();
        for (const name of names) {
          const hash = name.slice(0, 64);
          if (cursor !== undefined && hash <= cursor) continue;
          if (page.keychains.length === limit) return page;
          const file = JSON.parse(await readFile(path.join(root, shard, name), 'utf8')) as KeychainFile;
          if (file.userId === undefined) throw new Error(`Keychain file ${shard}/${name} names no user (written by an older padlock): write to that user once, or migrate it by hand`);
          page.keychains.push([file.userId, fromFile(file)]);
          page.cursor = hash;
        }
      }
      return { keychains: page.keychains, cursor: undefined };
    },
    async ping() {
      await mkdir(root, { recursive: true });
      await readdir(root);
    },
    async close() {
      await Promise.all([...locks.values()]);
      // Leftover temp files of a crash mid-write hold nothing the renamed files lack.
      await cleanTempFiles(root);
    },
  };
}

async function cleanTempFiles(root: string): Promise<void> {
  let shards: string[];
  try {
    shards = await readdir(root);
  } catch {
    return;
  }
  for (const shard of shards) {
    const files = await readdir(path.join(root, shard)).catch(() => [] as string[]);
    for (const f of files.filter((f) => f.endsWith('.tmp'))) await rm(path.join(root, shard, f), { force: true });
  }
}

function toFile(keychain: StoredKeychain): KeychainFile {
  if (keychain.state === 'deleted') return { version: 1, deleted: true };
  const categories: NonNullable<KeychainFile['categories']> = {};
  if (keychain.state === 'active') {
    for (const [name, c] of keychain.categories) {
      categories[name] = c.state === 'active' ? { wrappedRootKey: c.wrappedRootKey.toString('base64') } : { deleted: true };
    }
  }
  return { version: 1, categories };
}

function fromFile(file: KeychainFile): StoredKeychain {
  if (file.deleted === true) return { state: 'deleted' };
  const categories = new Map<string, StoredCategory>();
  for (const [name, c] of Object.entries(file.categories ?? {})) {
    categories.set(name, 'wrappedRootKey' in c ? { state: 'active', wrappedRootKey: Buffer.from(c.wrappedRootKey, 'base64') } : { state: 'deleted' });
  }
  return { state: 'active', categories };
}

/** Path of a user's keychain file (for tests that inspect the store directly). */
export function embeddedKeychainFile(dataDir: string, userId: string): string {
  const hash = createHash('sha256').update(userId, 'utf8').digest('hex');
  return path.join(dataDir, 'keychains', hash.slice(0, 2), `${hash}.json`);
}
