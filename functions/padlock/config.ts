/**
 * Padlock's configuration: `loadConfig(env)` validates every variable once and
 * names the bad one. Defaults live in `defaults` below, each with its reason.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { booleanVar, parseEnv, portVar, positiveIntVar, hostPortVar, type Env } from '../../lib/config.ts';
import { AppError } from '../../lib/errors.ts';
import { personalCategories } from '../../lib/semantic-types.ts';
import { POSTGRES_SCHEMA_PATTERN } from './postgres-store.ts';
import { serviceEntrySchema, type ServiceEntry } from './services.ts';
import { storeKinds, type StoreKind } from './store.ts';

export const defaults = {
  /** Local mode unless told otherwise: production must opt in (and then needs KMS and the Bigtable or PostgreSQL store). */
  mode: 'local',
  host: '127.0.0.1',
  port: 8090,
  dataDir: '.data/padlock',
  /** Service-side keychain cache TTL. With the client's TTL it bounds how long a deletion takes to reach every cache. */
  cacheTtlMs: 2_000,
  /** Users kept in the service's cache (a keychain is < 1 KiB). */
  cacheMaxUsers: 100_000,
  /** Deadline of one store call; beyond it the request answers 503 KEY_STORE_UNAVAILABLE (fail fast, the caller retries). */
  storeDeadlineMs: 1_000,
  /** Deadline of one Cloud KMS call. */
  kmsDeadlineMs: 2_000,
  /** Users in one multi-get. */
  maxUsersPerRequest: 1_000,
  /** Request body limit. */
  maxBodyBytes: 1 << 20,
  bigtableInstance: 'padlock',
  bigtableTable: 'keychains',
  postgresHost: '127.0.0.1',
  postgresPort: 5432,
  postgresDatabase: 'padlock',
  postgresUser: 'padlock',
  postgresSchema: 'padlock',
  /** Connections per instance: a lookup is one statement, a create two, so a few serve hundreds of requests a second. */
  postgresPoolSize: 10,
} as const;

export type StoreConfig =
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'bigtable'; projectId: string; instanceId: string; tableId: string; appProfileId?: string; emulatorHost?: string; createTable: boolean }
  | { kind: 'postgres'; host: string; port: number; database: string; user: string; password?: string; schema: string; poolSize: number };

export type KekConfig = { kind: 'local-file'; path: string } | { kind: 'kms'; keyName: string; apiEndpoint?: string; deadlineMs: number };

export interface PadlockConfig {
  mode: 'local' | 'production';
  host: string;
  port: number;
  services: ServiceEntry[];
  /** Data categories keychains hold a root key for. */
  categories: string[];
  /** The primary store: it answers every call. */
  store: StoreConfig;
  /** During a store migration, the store every create and delete is also applied to (its failures never reach callers). */
  darkload?: StoreConfig;
  /** Creates answer 503 (retryable) while set: the window in which instances run on different primaries during a switch. */
  createsPaused: boolean;
  kek: KekConfig;
  cacheTtlMs: number;
  cacheMaxUsers: number;
  storeDeadlineMs: number;
  maxUsersPerRequest: number;
  maxBodyBytes: number;
}

const kmsKeyName = z
  .string()
  .regex(/^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/, 'expected projects/…/locations/…/keyRings/…/cryptoKeys/…');

const shape = {
  PADLOCK_MODE: z.enum(['local', 'production']).default(defaults.mode),
  PADLOCK_HOST: z.string().trim().min(1).default(defaults.host),
  PADLOCK_PORT: portVar.default(defaults.port),
  PADLOCK_DATA_DIR: z.string().trim().min(1).default(defaults.dataDir),
  PADLOCK_SERVICES: z.string().optional(),
  PADLOCK_SERVICES_FILE: z.string().trim().min(1).optional(),
  PADLOCK_STORE: z.enum(storeKinds).default('embedded'),
  PADLOCK_DARKLOAD_STORE: z.enum(storeKinds).optional(),
  PADLOCK_CREATES_PAUSED: booleanVar.default(false),
  PADLOCK_POSTGRES_HOST: z.string().trim().min(1).default(defaults.postgresHost),
  PADLOCK_POSTGRES_PORT: portVar.default(defaults.postgresPort),
  PADLOCK_POSTGRES_DATABASE: z.string().trim().min(1).default(defaults.postgresDatabase),
  PADLOCK_POSTGRES_USER: z.string().trim().min(1).default(defaults.postgresUser),
  PADLOCK_POSTGRES_PASSWORD: z.string().min(1).optional(),
  PADLOCK_POSTGRES_SCHEMA: z.string().regex(POSTGRES_SCHEMA_PATTERN, 'expected a lower-case SQL identifier (letters, digits, _)').default(defaults.postgresSchema),
  PADLOCK_POSTGRES_POOL_SIZE: positiveIntVar.default(defaults.postgresPoolSize),
  PADLOCK_BIGTABLE_INSTANCE: z.string().trim().min(1).default(defaults.bigtableInstance),
  PADLOCK_BIGTABLE_TABLE: z.string().trim().min(1).default(defaults.bigtableTable),
  PADLOCK_BIGTABLE_APP_PROFILE: z.string().trim().regex(/^[a-z0-9_-]{1,50}$/i, 'expected a Bigtable app profile id').optional(),
  BIGTABLE_EMULATOR_HOST: hostPortVar.optional(),
  GCP_PROJECT: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a GCP project id').default('local-project'),
  PADLOCK_KMS_KEY: kmsKeyName.optional(),
  PADLOCK_KMS_ENDPOINT: z.string().trim().min(1).optional(),
  PADLOCK_KEK_FILE: z.string().trim().min(1).optional(),
  PADLOCK_CACHE_TTL_MS: positiveIntVar.default(defaults.cacheTtlMs),
  PADLOCK_CACHE_MAX_USERS: positiveIntVar.default(defaults.cacheMaxUsers),
  PADLOCK_STORE_DEADLINE_MS: positiveIntVar.default(defaults.storeDeadlineMs),
  PADLOCK_KMS_DEADLINE_MS: positiveIntVar.default(defaults.kmsDeadlineMs),
  PADLOCK_MAX_USERS_PER_REQUEST: positiveIntVar.default(defaults.maxUsersPerRequest),
};

function invalid(variable: string, problem: string): AppError {
  return new AppError('CONFIG_INVALID', { message: `Invalid configuration: ${variable}: ${problem}`, details: { variables: [variable] } });
}

/** Parses the service list (`[{name, secretSha256, contexts?, admin?}]`), naming `variable` on error. */
export function parseServices(text: string, variable: string): ServiceEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(variable, 'expected a JSON array of {name, secretSha256, contexts?, admin?}');
  }
  const result = z.array(serviceEntrySchema).min(1).safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw invalid(variable, `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  const names = result.data.map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw invalid(variable, `service ${dup} is listed twice`);
  return result.data;
}

type ParsedEnv = z.infer<z.ZodObject<typeof shape>>;

/** The configuration of one store kind from its variables (each kind has its own, so two can be configured at once). */
function storeConfigOf(kind: StoreKind, e: ParsedEnv): StoreConfig {
  switch (kind) {
    case 'embedded':
      return { kind, dataDir: e.PADLOCK_DATA_DIR };
    case 'bigtable':
      return {
        kind,
        projectId: e.GCP_PROJECT,
        instanceId: e.PADLOCK_BIGTABLE_INSTANCE,
        tableId: e.PADLOCK_BIGTABLE_TABLE,
        ...(e.PADLOCK_BIGTABLE_APP_PROFILE ? { appProfileId: e.PADLOCK_BIGTABLE_APP_PROFILE } : {}),
        ...(e.BIGTABLE_EMULATOR_HOST ? { emulatorHost: e.BIGTABLE_EMULATOR_HOST } : {}),
        // Terraform owns the production table; locally (emulator) padlock creates it.
        createTable: e.BIGTABLE_EMULATOR_HOST !== undefined,
      };
    case 'postgres':
      return {
        kind,
        host: e.PADLOCK_POSTGRES_HOST,
        port: e.PADLOCK_POSTGRES_PORT,
        database: e.PADLOCK_POSTGRES_DATABASE,
        user: e.PADLOCK_POSTGRES_USER,
        ...(e.PADLOCK_POSTGRES_PASSWORD !== undefined ? { password: e.PADLOCK_POSTGRES_PASSWORD } : {}),
        schema: e.PADLOCK_POSTGRES_SCHEMA,
        poolSize: e.PADLOCK_POSTGRES_POOL_SIZE,
      };
  }
}

/** The configuration of one store of the given kind from the environment (the migration CLI's `--from`/`--to`). */
export function loadStoreConfig(kind: StoreKind, env: Env = process.env): StoreConfig {
  return storeConfigOf(kind, parseEnv(shape, env));
}

export function loadConfig(env: Env = process.env): PadlockConfig {
  const e = parseEnv(shape, env);
  let servicesText: string;
  let servicesVar: string;
  if (e.PADLOCK_SERVICES !== undefined) {
    servicesText = e.PADLOCK_SERVICES;
    servicesVar = 'PADLOCK_SERVICES';
  } else if (e.PADLOCK_SERVICES_FILE !== undefined) {
    servicesVar = 'PADLOCK_SERVICES_FILE';
    try {
      servicesText = readFileSync(e.PADLOCK_SERVICES_FILE, 'utf8');
    } catch {
      throw invalid(servicesVar, `cannot read ${e.PADLOCK_SERVICES_FILE}`);
    }
  } else {
    throw invalid('PADLOCK_SERVICES', 'set PADLOCK_SERVICES (JSON) or PADLOCK_SERVICES_FILE (path) to the calling services');
  }
  const services = parseServices(servicesText, servicesVar);

  const production = e.PADLOCK_MODE === 'production';
  let kek: KekConfig;
  if (e.PADLOCK_KMS_KEY !== undefined) {
    kek = { kind: 'kms', keyName: e.PADLOCK_KMS_KEY, deadlineMs: e.PADLOCK_KMS_DEADLINE_MS, ...(e.PADLOCK_KMS_ENDPOINT ? { apiEndpoint: e.PADLOCK_KMS_ENDPOINT } : {}) };
  } else if (production) {
    throw invalid('PADLOCK_KMS_KEY', 'production mode needs a Cloud KMS key; a local KEK file is for local mode only');
  } else {
    kek = { kind: 'local-file', path: e.PADLOCK_KEK_FILE ?? path.join(e.PADLOCK_DATA_DIR, 'kek.key') };
  }

  const store = storeConfigOf(e.PADLOCK_STORE, e);
  if (production && store.kind === 'embedded') {
    throw invalid('PADLOCK_STORE', 'production mode needs the bigtable or postgres store (the embedded store is single-process, local only)');
  }
  let darkload: StoreConfig | undefined;
  if (e.PADLOCK_DARKLOAD_STORE !== undefined) {
    if (e.PADLOCK_DARKLOAD_STORE === e.PADLOCK_STORE) throw invalid('PADLOCK_DARKLOAD_STORE', `must differ from PADLOCK_STORE (both are ${e.PADLOCK_STORE})`);
    if (production && e.PADLOCK_DARKLOAD_STORE === 'embedded') throw invalid('PADLOCK_DARKLOAD_STORE', 'the embedded store is local only');
    darkload = storeConfigOf(e.PADLOCK_DARKLOAD_STORE, e);
  }

  return {
    mode: e.PADLOCK_MODE,
    host: e.PADLOCK_HOST,
    port: e.PADLOCK_PORT,
    services,
    categories: personalCategories(),
    store,
    ...(darkload ? { darkload } : {}),
    createsPaused: e.PADLOCK_CREATES_PAUSED,
    kek,
    cacheTtlMs: e.PADLOCK_CACHE_TTL_MS,
    cacheMaxUsers: e.PADLOCK_CACHE_MAX_USERS,
    storeDeadlineMs: e.PADLOCK_STORE_DEADLINE_MS,
    maxUsersPerRequest: e.PADLOCK_MAX_USERS_PER_REQUEST,
    maxBodyBytes: defaults.maxBodyBytes,
  };
}
