/**
 * Where the registry lives, as every component configures it: the composer's
 * embedded file store locally (`REGISTRY_STORE=file`, `REGISTRY_DIR`), or the
 * Firestore store in production (`REGISTRY_STORE=firestore`,
 * `REGISTRY_COLLECTION`, `FIRESTORE_EMULATOR_HOST` for the emulator).
 */
import { z } from 'zod';
import { hostPortVar } from '../config.ts';
import { createFirestore } from '../gcp/clients.ts';
import { FileRegistryStore } from './file.ts';
import { FirestoreRegistryStore } from './firestore.ts';
import type { RegistryStore } from './types.ts';

export type RegistryLocation =
  | { kind: 'file'; dir: string }
  | { kind: 'firestore'; emulatorHost?: string; collection: string };

export const DEFAULT_REGISTRY_DIR = '.data/registry';

/** The registry's environment variables, for a component's `parseEnv` shape. */
export const registryEnvShape = {
  REGISTRY_STORE: z.enum(['file', 'firestore']).default('file'),
  REGISTRY_DIR: z.string().trim().min(1, 'expected a folder path').default(DEFAULT_REGISTRY_DIR),
  FIRESTORE_EMULATOR_HOST: hostPortVar.optional(),
  REGISTRY_COLLECTION: z.string().trim().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'expected a collection id').default('eventTypes'),
};

export function registryLocationFromEnv(e: {
  REGISTRY_STORE: 'file' | 'firestore';
  REGISTRY_DIR: string;
  FIRESTORE_EMULATOR_HOST?: string | undefined;
  REGISTRY_COLLECTION: string;
}): RegistryLocation {
  if (e.REGISTRY_STORE === 'file') return { kind: 'file', dir: e.REGISTRY_DIR };
  return {
    kind: 'firestore',
    collection: e.REGISTRY_COLLECTION,
    ...(e.FIRESTORE_EMULATOR_HOST === undefined ? {} : { emulatorHost: e.FIRESTORE_EMULATOR_HOST }),
  };
}

export function openRegistryStore(location: RegistryLocation, projectId: string): RegistryStore {
  if (location.kind === 'file') return new FileRegistryStore(location.dir);
  const firestore = createFirestore({ projectId, emulatorHost: location.emulatorHost });
  return new FirestoreRegistryStore(firestore, { collection: location.collection });
}
