import { mkdtempSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors.ts';
import { loadConfig, parseServices } from './config.ts';
import { deriveKey, keyIdOf } from './derive.ts';
import { createKmsKek, createLocalKek, loadOrCreateKekFile, wrapAad, type KmsCalls } from './kek.ts';
import { authoriseContext, serviceEntry, ServiceRegistry } from './services.ts';
import { withCreated } from './store.ts';

const root = Buffer.alloc(32, 7);
const services = JSON.stringify([serviceEntry('etl', 's3cret-s3cret-s3cret')]);

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a throw');
}

describe('deriveKey', () => {
  it('is deterministic and separates contexts, categories and users', () => {
    const id = { context: 'etl', category: 'contact', userId: 'u1' };
    const a = deriveKey(root, id);
    expect(a.key.length).toBe(32);
    expect(deriveKey(root, id).key.equals(a.key)).toBe(true);
    for (const other of [{ ...id, context: 'ads' }, { ...id, category: 'location' }, { ...id, userId: 'u2' }]) {
      expect(deriveKey(root, other).key.equals(a.key)).toBe(false);
    }
    // Length-prefixed info: moving a boundary changes the key.
    expect(deriveKey(root, { context: 'etl', category: 'contactu', userId: '1' }).key.equals(a.key)).toBe(false);
  });

  it('gives a uint32 key id that is not a slice of the key', () => {
    const { key, keyId } = deriveKey(root, { context: 'etl', category: 'contact', userId: 'u1' });
    expect(keyId).toBe(keyIdOf(key));
    expect(keyId).toBeGreaterThanOrEqual(0);
    expect(keyId).toBeLessThanOrEqual(0xffffffff);
    for (let i = 0; i + 4 <= key.length; i++) expect(key.readUInt32BE(i)).not.toBe(keyId);
  });
});

describe('local KEK', () => {
  it('creates its file with mode 0600 and wraps with AAD binding user and category', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kek-')), 'sub', 'kek.key');
    const bytes = loadOrCreateKekFile(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateKekFile(file).equals(bytes)).toBe(true);
    const kek = createLocalKek(bytes);
    const wrapped = await kek.wrap(root, wrapAad('u1', 'contact'));
    expect(wrapped.includes(root)).toBe(false);
    expect((await kek.unwrap(wrapped, wrapAad('u1', 'contact'))).equals(root)).toBe(true);
    // A key that fails authentication is unreadable for good (not a KEK outage): retrying cannot help.
    await expect(kek.unwrap(wrapped, wrapAad('u2', 'contact'))).rejects.toMatchObject({ code: 'KEY_UNREADABLE', retryable: false });
    await expect(createLocalKek(Buffer.alloc(32, 1)).unwrap(wrapped, wrapAad('u1', 'contact'))).rejects.toMatchObject({ code: 'KEY_UNREADABLE' });
  });

  it('refuses a KEK file readable by others or of the wrong size', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kek-'));
    const open = path.join(dir, 'open.key');
    writeFileSync(open, Buffer.alloc(32));
    chmodSync(open, 0o644);
    expect(thrown(() => loadOrCreateKekFile(open)).code).toBe('KEK_UNAVAILABLE');
    const short = path.join(dir, 'short.key');
    writeFileSync(short, Buffer.alloc(16), { mode: 0o600 });
    expect(thrown(() => loadOrCreateKekFile(short)).code).toBe('KEK_UNAVAILABLE');
  });
});

describe('KMS KEK (a fake of its two Cloud KMS calls: there is no KMS emulator)', () => {
  const fakeKms = (): KmsCalls & { calls: string[] } => {
    const calls: string[] = [];
    const local = createLocalKek(Buffer.alloc(32, 9));
    return {
      calls,
      async encrypt(req) {
        calls.push(`encrypt ${req.name}`);
        return [{ ciphertext: await local.wrap(req.plaintext, req.additionalAuthenticatedData) }];
      },
      async decrypt(req) {
        calls.push(`decrypt ${req.name}`);
        return [{ plaintext: await local.unwrap(req.ciphertext, req.additionalAuthenticatedData) }];
      },
    };
  };
  const keyName = 'projects/p/locations/global/keyRings/r/cryptoKeys/padlock';

  it('wraps through encrypt and unwraps through decrypt with the AAD', async () => {
    const kms = fakeKms();
    const kek = createKmsKek(kms, keyName);
    const wrapped = await kek.wrap(root, wrapAad('u1', 'ads'));
    expect((await kek.unwrap(wrapped, wrapAad('u1', 'ads'))).equals(root)).toBe(true);
    expect(kms.calls).toEqual([`encrypt ${keyName}`, `decrypt ${keyName}`]);
  });

  it('maps KMS failures to KEK_UNAVAILABLE', async () => {
    const failing: KmsCalls = {
      encrypt: () => Promise.reject(new Error('14 UNAVAILABLE')),
      decrypt: () => Promise.resolve([{ plaintext: null }]),
    };
    const kek = createKmsKek(failing, keyName);
    await expect(kek.wrap(root, Buffer.from('a'))).rejects.toMatchObject({ code: 'KEK_UNAVAILABLE', retryable: true });
    await expect(kek.unwrap(Buffer.from('x'), Buffer.from('a'))).rejects.toMatchObject({ code: 'KEK_UNAVAILABLE' });
  });

  it('maps a ciphertext KMS refuses to decrypt (INVALID_ARGUMENT) to KEY_UNREADABLE, other failures to KEK_UNAVAILABLE', async () => {
    const refusing = (code: number): KmsCalls => ({
      encrypt: () => Promise.reject(new Error('unused')),
      decrypt: () => Promise.reject(Object.assign(new Error(`${code} grpc`), { code })),
    });
    await expect(createKmsKek(refusing(3), keyName).unwrap(Buffer.from('x'), Buffer.from('a'))).rejects.toMatchObject({ code: 'KEY_UNREADABLE', retryable: false });
    for (const code of [4, 7, 14]) {
      await expect(createKmsKek(refusing(code), keyName).unwrap(Buffer.from('x'), Buffer.from('a'))).rejects.toMatchObject({ code: 'KEK_UNAVAILABLE', retryable: true });
    }
  });
});

describe('services', () => {
  const registry = new ServiceRegistry([serviceEntry('etl', 'right', { contexts: ['etl', 'dataset-x'] }), serviceEntry('privacy', 'p', { admin: true })]);
  const basic = (s: string, p: string): string => `Basic ${Buffer.from(`${s}:${p}`).toString('base64')}`;

  it('authenticates by hashed secret and rejects unknown services and wrong secrets alike', () => {
    expect(registry.authenticate(basic('etl', 'right'))).toEqual({ name: 'etl', contexts: ['etl', 'dataset-x'], admin: false });
    expect(registry.authenticate(basic('privacy', 'p')).admin).toBe(true);
    for (const header of [basic('etl', 'wrong'), basic('nobody', 'right'), undefined, 'Bearer x', 'Basic !!!']) {
      expect(thrown(() => registry.authenticate(header)).status).toBe(401);
    }
  });

  it('authorises contexts: default first, others only if listed', () => {
    const etl = registry.authenticate(basic('etl', 'right'));
    expect(authoriseContext(etl, undefined)).toBe('etl');
    expect(authoriseContext(etl, 'dataset-x')).toBe('dataset-x');
    expect(thrown(() => authoriseContext(etl, 'dataset-y')).code).toBe('CONTEXT_FORBIDDEN');
  });
});

describe('loadConfig', () => {
  it('defaults to local mode with the embedded store and a local KEK file', () => {
    const c = loadConfig({ PADLOCK_SERVICES: services, PADLOCK_DATA_DIR: '/tmp/x' });
    expect(c.mode).toBe('local');
    expect(c.store).toEqual({ kind: 'embedded', dataDir: '/tmp/x' });
    expect(c.kek).toEqual({ kind: 'local-file', path: '/tmp/x/kek.key' });
    expect(c.categories).toContain('contact');
  });

  it('refuses production mode without KMS, or with the embedded store', () => {
    expect(thrown(() => loadConfig({ PADLOCK_SERVICES: services, PADLOCK_MODE: 'production', PADLOCK_STORE: 'bigtable' })).message).toContain('PADLOCK_KMS_KEY');
    const kms = 'projects/p/locations/global/keyRings/r/cryptoKeys/k';
    expect(thrown(() => loadConfig({ PADLOCK_SERVICES: services, PADLOCK_MODE: 'production', PADLOCK_KMS_KEY: kms })).message).toContain('PADLOCK_STORE');
    const c = loadConfig({ PADLOCK_SERVICES: services, PADLOCK_MODE: 'production', PADLOCK_KMS_KEY: kms, PADLOCK_STORE: 'bigtable' });
    expect(c.kek.kind).toBe('kms');
    expect(c.store.kind === 'bigtable' && c.store.createTable).toBe(false);
    const profiled = loadConfig({ PADLOCK_SERVICES: services, PADLOCK_MODE: 'production', PADLOCK_KMS_KEY: kms, PADLOCK_STORE: 'bigtable', PADLOCK_BIGTABLE_APP_PROFILE: 'padlock' });
    expect(profiled.store).toMatchObject({ kind: 'bigtable', appProfileId: 'padlock' });
    expect(thrown(() => loadConfig({ PADLOCK_SERVICES: services, PADLOCK_STORE: 'bigtable', PADLOCK_BIGTABLE_APP_PROFILE: 'no spaces' })).message).toContain('PADLOCK_BIGTABLE_APP_PROFILE');
  });

  it('names the bad variable', () => {
    expect(thrown(() => loadConfig({})).message).toContain('PADLOCK_SERVICES');
    expect(thrown(() => loadConfig({ PADLOCK_SERVICES: services, PADLOCK_PORT: 'x' })).message).toContain('PADLOCK_PORT');
    expect(thrown(() => loadConfig({ PADLOCK_SERVICES_FILE: '/nonexistent/services.json' })).message).toContain('PADLOCK_SERVICES_FILE');
    expect(thrown(() => parseServices('[{"name":"etl","secretSha256":"abc"}]', 'PADLOCK_SERVICES')).message).toMatch(/PADLOCK_SERVICES: 0\.secretSha256/);
    expect(thrown(() => parseServices(`[${JSON.stringify(serviceEntry('a', 'x'))},${JSON.stringify(serviceEntry('a', 'y'))}]`, 'V')).message).toContain('twice');
  });
});

describe('withCreated', () => {
  const w = Buffer.from('wrapped');
  it('adds only missing categories, keeps tombstones, never revives a deleted user', () => {
    const current = { state: 'active' as const, categories: new Map([['ads', { state: 'deleted' as const }]]) };
    const next = withCreated(current, new Map([['ads', w], ['contact', w]]));
    expect(next.state === 'active' && [...next.categories].map(([c, s]) => [c, s.state])).toEqual([['ads', 'deleted'], ['contact', 'active']]);
    const deleted = { state: 'deleted' as const };
    expect(withCreated(deleted, new Map([['contact', w]]))).toBe(deleted);
  });
});

describe('lookupJson', () => {
  it('writes the wire object in pure ASCII, for any user ids', async () => {
    const fc = (await import('fast-check')).default;
    const { lookupJson, toWire } = await import('./http.ts');
    const served = (n: number) => {
      const key = Buffer.alloc(32, n);
      const keyBase64 = key.toString('base64');
      return { key, keyId: n * 1000, keyBase64, json: `{"status":"found","keyId":${n * 1000},"key":"${keyBase64}"}` };
    };
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ unit: 'binary' }), fc.constantFrom('found', 'absent', 'deleted'))), (users) => {
        const results = users.map(([userId, status], i) =>
          status === 'found'
            ? { userId, status, categories: new Map([['contact', { status: 'found' as const, key: served(i) }], ['ads', { status: 'deleted' as const }]]) } as const
            : ({ userId, status } as const),
        );
        const json = lookupJson('ctx"x', results);
        expect(json).toMatch(/^[\x20-\x7e]*$/);
        expect(JSON.parse(json)).toEqual(toWire('ctx"x', results));
      }),
    );
  }, 30_000);
});
