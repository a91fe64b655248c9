/**
 * Test harness of padlock's system tests: starts the real service on
 * 127.0.0.1:0 over either store, with captured logs, and reads the store
 * directly (files or Bigtable rows) to check what it holds.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isAppError, type AppError } from '../../../lib/errors.ts';
import { createBigtable } from '../../../lib/gcp/clients.ts';
import { createLogger } from '../../../lib/logger.ts';
import { createPadlockClient, type PadlockClient, type PadlockClientOptions } from '../../../lib/padlock-client/index.ts';
import type { Clock } from '../../../lib/padlock-client/ttl-cache.ts';
import { loadConfig, type PadlockConfig } from '../../../functions/padlock/config.ts';
import { embeddedKeychainFile } from '../../../functions/padlock/embedded-store.ts';
import { createLocalKek, loadOrCreateKekFile, wrapAad } from '../../../functions/padlock/kek.ts';
import { startPadlock, type RunningPadlock } from '../../../functions/padlock/server.ts';
import { serviceEntry } from '../../../functions/padlock/services.ts';

export const secrets = {
  etl: 'etl-secret-0123456789abcdef',
  'consumer-analytics': 'consumer-secret-0123456789abcdef',
  signup: 'signup-secret-0123456789abcdef',
  privacy: 'privacy-secret-0123456789abcdef',
} as const;
export type ServiceName = keyof typeof secrets;

export const services = [
  serviceEntry('etl', secrets.etl, { contexts: ['etl', 'dataset-plays'] }),
  serviceEntry('consumer-analytics', secrets['consumer-analytics'], { contexts: ['consumer-analytics', 'dataset-plays'] }),
  serviceEntry('signup', secrets.signup),
  serviceEntry('privacy', secrets.privacy, { admin: true }),
];

export type StoreKind = 'embedded' | 'bigtable';

export interface Target {
  kind: StoreKind;
  dataDir: string;
  env: Record<string, string>;
  /** Every log line of every instance started on this target. */
  logs: string[];
  start(opts?: { clock?: Clock; cacheTtlMs?: number; env?: Record<string, string> }): Promise<RunningPadlock>;
  /** Wrapped root keys the store holds for the user, by category (read directly from the store). */
  wrappedKeys(userId: string): Promise<Map<string, Buffer>>;
  /** Everything the store holds for the user, as text (for "no key material left" checks). */
  rawRecord(userId: string): Promise<string>;
  /** Unwraps a stored key with the local KEK file (tests only: proves what the service derives from). */
  unwrap(userId: string, category: string, wrapped: Buffer): Promise<Buffer>;
}

export function makeTarget(kind: StoreKind, bigtable?: { host: string; projectId: string; table: string }): Target {
  const dataDir = mkdtempSync(path.join(tmpdir(), `padlock-${kind}-`));
  const env: Record<string, string> = {
    PADLOCK_PORT: '0',
    PADLOCK_DATA_DIR: dataDir,
    PADLOCK_SERVICES: JSON.stringify(services),
    ...(kind === 'bigtable' && bigtable
      ? { PADLOCK_STORE: 'bigtable', BIGTABLE_EMULATOR_HOST: bigtable.host, GCP_PROJECT: bigtable.projectId, PADLOCK_BIGTABLE_TABLE: bigtable.table }
      : {}),
  };
  const logs: string[] = [];
  const logger = createLogger({ component: 'padlock', level: 'DEBUG', sink: (line) => logs.push(line) });
  const client = kind === 'bigtable' && bigtable ? createBigtable({ projectId: bigtable.projectId, emulatorHost: bigtable.host }) : undefined;
  const table = client?.instance('padlock').table(bigtable?.table ?? '');

  const readRow = async (userId: string): Promise<Record<string, Record<string, { value: Buffer }[]>> | undefined> => {
    if (table === undefined) return undefined;
    const [rows] = await table.getRows({ keys: [userId], decode: false });
    return rows[0]?.data as Record<string, Record<string, { value: Buffer }[]>> | undefined;
  };

  return {
    kind,
    dataDir,
    env,
    logs,
    async start(opts = {}) {
      const config: PadlockConfig = loadConfig({ ...env, ...opts.env });
      if (opts.cacheTtlMs !== undefined) config.cacheTtlMs = opts.cacheTtlMs;
      return startPadlock(config, { logger, ...(opts.clock ? { clock: opts.clock } : {}) });
    },
    async wrappedKeys(userId) {
      const out = new Map<string, Buffer>();
      if (kind === 'embedded') {
        const file = embeddedKeychainFile(dataDir, userId);
        if (!existsSync(file)) return out;
        const json = JSON.parse(readFileSync(file, 'utf8')) as { categories?: Record<string, { wrappedRootKey?: string }> };
        for (const [c, v] of Object.entries(json.categories ?? {})) if (v.wrappedRootKey) out.set(c, Buffer.from(v.wrappedRootKey, 'base64'));
        return out;
      }
      const row = await readRow(userId);
      // Every version of every cell in the key family counts, not just the newest.
      for (const [c, cells] of Object.entries(row?.k ?? {})) for (const cell of cells) out.set(cells.length > 1 ? `${c}#${out.size}` : c, cell.value);
      return out;
    },
    async rawRecord(userId) {
      if (kind === 'embedded') {
        const file = embeddedKeychainFile(dataDir, userId);
        return existsSync(file) ? readFileSync(file, 'utf8') : '';
      }
      const row = await readRow(userId);
      if (row === undefined) return '';
      return JSON.stringify(
        Object.fromEntries(Object.entries(row).map(([f, cols]) => [f, Object.fromEntries(Object.entries(cols).map(([q, cells]) => [q, cells.map((c) => c.value.toString('base64'))]))])),
      );
    },
    async unwrap(userId, category, wrapped) {
      const kek = createLocalKek(loadOrCreateKekFile(path.join(dataDir, 'kek.key')));
      return kek.unwrap(wrapped, wrapAad(userId, category));
    },
  };
}

export function clientFor(url: string, service: ServiceName, opts: Partial<PadlockClientOptions> = {}): PadlockClient {
  return createPadlockClient({ url, service, secret: secrets[service], cacheTtlMs: 0, ...opts });
}

/** A raw HTTP call (for status codes and error bodies). */
export async function rawCall(url: string, method: string, p: string, opts: { service?: ServiceName; secret?: string; body?: unknown; contentType?: string } = {}): Promise<{ status: number; body: { code?: string; message?: string; details?: Record<string, unknown> } & Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (opts.service) headers.authorization = `Basic ${Buffer.from(`${opts.service}:${opts.secret ?? secrets[opts.service]}`).toString('base64')}`;
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(url + p, { method, headers, ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}) });
  return { status: res.status, body: (await res.json()) as never };
}

/** The AppError `p` rejects with (fails the test if it resolves, or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (isAppError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
