/**
 * Credentials of the local platform: padlock service secrets and composer
 * team tokens, generated once per data folder and kept in
 * `<dataDir>/local-credentials.json` (mode 0600), never printed or logged.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface LocalCredentials {
  /** Padlock service name → secret. */
  padlock: { etl: string; 'consumer-analytics': string; privacy: string };
  /** Composer team → bearer token. */
  composer: Record<string, string>;
}

/** Teams of the example specs; each gets its own composer token. */
export const LOCAL_TEAMS = ['web', 'identity', 'playback', 'dev-productivity'] as const;

const secret = (): string => randomBytes(24).toString('base64url');

export function localCredentialsFile(dataDir: string): string {
  return path.join(dataDir, 'local-credentials.json');
}

export function loadOrCreateLocalCredentials(dataDir: string): LocalCredentials {
  const file = localCredentialsFile(dataDir);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as LocalCredentials;
  const creds: LocalCredentials = {
    padlock: { etl: secret(), 'consumer-analytics': secret(), privacy: secret() },
    composer: Object.fromEntries(LOCAL_TEAMS.map((team) => [team, secret()])),
  };
  writeFileSync(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  return creds;
}
