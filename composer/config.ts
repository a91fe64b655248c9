/**
 * The composer's configuration: `loadConfig(env)` validates every variable
 * once at start. Defaults suit the local platform (`npm start`).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | COMPOSER_HOST | 127.0.0.1 | REST API listen address |
 * | COMPOSER_PORT | 8090 | REST API port (0: any free port) |
 * | GCP_PROJECT | local-project | project of the Pub/Sub resources |
 * | PUBSUB_EMULATOR_HOST | — | `host:port`; absent: Google Pub/Sub |
 * | REGISTRY_STORE | file | `file` (embedded, local) or `firestore` |
 * | REGISTRY_DIR | .data/registry | folder of the file store |
 * | FIRESTORE_EMULATOR_HOST | — | Firestore emulator; absent: Google Firestore |
 * | REGISTRY_COLLECTION | eventTypes | Firestore collection |
 * | GCS_API_ENDPOINT, DATA_BUCKET | — | storage check; both absent: skipped |
 * | COMPOSER_TOKENS | — | `token=team,token2=team2`: bearer tokens of the teams |
 * | SEMANTIC_TYPES_FILE | — | JSON file of extra semantic types (extends the catalogue) |
 * | COMPOSER_SPECS_DIR | — | specs applied at start |
 * | COMPOSER_PROVISIONING | composer | who owns per-type Pub/Sub resources: `composer` or `terraform` (defaults.ts `ProvisioningMode`) |
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppError } from '../lib/errors.ts';
import { hostPortVar, parseEnv, portVar, urlVar, type Env } from '../lib/config.ts';
import { DEFAULT_REGISTRY_DIR, registryEnvShape, registryLocationFromEnv, type RegistryLocation } from '../lib/registry/open.ts';
import { defaultCatalogue, extendCatalogue, type SemanticCatalogue } from '../lib/semantic-types.ts';
import { DEFAULT_PROVISIONING_MODE, provisioningModes, type ProvisioningMode } from './defaults.ts';

export type RegistryConfig = RegistryLocation;

export interface ComposerConfig {
  host: string;
  port: number;
  projectId: string;
  pubsubEmulatorHost?: string;
  registry: RegistryConfig;
  /** Data bucket check; absent when no GCS is configured. */
  gcs?: { apiEndpoint?: string; bucket: string };
  /** Bearer token → team (a Map: a token is user input, never a property name). */
  tokens: ReadonlyMap<string, string>;
  catalogue: SemanticCatalogue;
  /** Folder (or file) of specs applied at start. */
  specsDir?: string;
  /** Largest accepted request body. */
  bodyLimit: string;
  /** Who owns the per-type Pub/Sub resources. */
  provisioning: ProvisioningMode;
}

export { DEFAULT_REGISTRY_DIR };
export const DEFAULT_COMPOSER_PORT = 8090;

const tokensVar = z
  .string()
  .trim()
  .regex(/^([^=,\s]+=[a-z][a-z0-9-]*)(,[^=,\s]+=[a-z][a-z0-9-]*)*$/, 'expected token=team[,token=team…]')
  .transform((s) => s.split(',').map((pair) => pair.split('=') as [string, string]))
  .refine((pairs) => new Set(pairs.map(([token]) => token)).size === pairs.length, 'a token is listed twice')
  .transform((pairs) => new Map(pairs));

export function loadConfig(env: Env = process.env): ComposerConfig {
  const e = parseEnv(
    {
      COMPOSER_HOST: z.string().trim().min(1).default('127.0.0.1'),
      COMPOSER_PORT: portVar.default(DEFAULT_COMPOSER_PORT),
      GCP_PROJECT: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'expected a Google Cloud project id').default('local-project'),
      PUBSUB_EMULATOR_HOST: hostPortVar.optional(),
      ...registryEnvShape,
      GCS_API_ENDPOINT: urlVar.optional(),
      DATA_BUCKET: z.string().trim().min(3).optional(),
      COMPOSER_TOKENS: tokensVar.optional(),
      SEMANTIC_TYPES_FILE: z.string().trim().min(1).optional(),
      COMPOSER_SPECS_DIR: z.string().trim().min(1).optional(),
      COMPOSER_BODY_LIMIT: z.string().trim().regex(/^\d+(kb|mb)$/i, 'expected a size like 1mb').default('1mb'),
      COMPOSER_PROVISIONING: z.enum(provisioningModes as [ProvisioningMode, ...ProvisioningMode[]]).default(DEFAULT_PROVISIONING_MODE),
    },
    env,
  );
  return {
    host: e.COMPOSER_HOST,
    port: e.COMPOSER_PORT,
    projectId: e.GCP_PROJECT,
    ...(e.PUBSUB_EMULATOR_HOST === undefined ? {} : { pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST }),
    registry: registryLocationFromEnv(e),
    ...(e.DATA_BUCKET === undefined ? {} : { gcs: { bucket: e.DATA_BUCKET, ...(e.GCS_API_ENDPOINT === undefined ? {} : { apiEndpoint: e.GCS_API_ENDPOINT }) } }),
    tokens: e.COMPOSER_TOKENS ?? new Map<string, string>(),
    catalogue: e.SEMANTIC_TYPES_FILE === undefined ? defaultCatalogue : loadCatalogueFile(e.SEMANTIC_TYPES_FILE),
    ...(e.COMPOSER_SPECS_DIR === undefined ? {} : { specsDir: e.COMPOSER_SPECS_DIR }),
    bodyLimit: e.COMPOSER_BODY_LIMIT,
    provisioning: e.COMPOSER_PROVISIONING,
  };
}

const semanticTypeSchema = z.object({
  personal: z.boolean(),
  category: z.string().min(1),
  accessTier: z.enum(['public', 'internal', 'restricted', 'confidential']),
  retentionDays: z.number().int().positive(),
  description: z.string().default(''),
});

/** Reads `{ "<name>": {personal, category, accessTier, retentionDays, description} }` and extends the defaults. */
export function loadCatalogueFile(file: string): SemanticCatalogue {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: SEMANTIC_TYPES_FILE ${file} is not readable JSON`, cause });
  }
  const parsed = z.record(z.string().regex(/^[a-z][A-Za-z0-9]*$/), semanticTypeSchema).safeParse(raw);
  if (!parsed.success) {
    throw new AppError('CONFIG_INVALID', {
      message: `Invalid configuration: SEMANTIC_TYPES_FILE ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    });
  }
  return extendCatalogue(parsed.data);
}
