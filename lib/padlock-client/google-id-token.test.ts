/**
 * googleIdTokens against a loopback stand-in for the metadata server (there is
 * none off Google Cloud): the real google-auth-library asks it for an identity
 * token per audience and reuses an unexpired one.
 */
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GoogleAuth } from 'google-auth-library';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { googleIdTokens } from './google-id-token.ts';

/** An unsigned JWT with `aud` and `exp` (the client reads exp to cache it; Cloud Run would verify the signature). */
function jwt(audience: string, n: number): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ aud: audience, exp: Math.floor(Date.now() / 1000) + 3600, n })}.c2lnbmF0dXJl`;
}

const asked: string[] = [];
let server: http.Server;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://metadata');
    res.setHeader('metadata-flavor', 'Google');
    if (req.headers['metadata-flavor'] !== 'Google') return void res.writeHead(403).end();
    if (url.pathname.endsWith('/service-accounts/default/identity')) {
      const audience = url.searchParams.get('audience') ?? '';
      asked.push(audience);
      return void res.writeHead(200, { 'content-type': 'application/text' }).end(jwt(audience, asked.length));
    }
    if (url.pathname === '/computeMetadata/v1/project/project-id') return void res.writeHead(200).end('test-project');
    res.writeHead(200).end('');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  vi.stubEnv('GCE_METADATA_HOST', `127.0.0.1:${(server.address() as AddressInfo).port}`);
  vi.stubEnv('METADATA_SERVER_DETECTION', 'assume-present');
  vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
  vi.stubEnv('CLOUDSDK_CONFIG', mkdtempSync(path.join(tmpdir(), 'no-gcloud-')));
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

it('fetches one identity token per audience from the runtime service account, and reuses it until it expires', async () => {
  const tokens = googleIdTokens(new GoogleAuth());
  const primary = await tokens('https://padlock-abc.a.run.app');
  const mirror = await tokens('https://padlock-mirror-abc.a.run.app');
  expect(await tokens('https://padlock-abc.a.run.app')).toBe(primary);
  expect(asked).toEqual(['https://padlock-abc.a.run.app', 'https://padlock-mirror-abc.a.run.app']);
  const claims = (t: string): { aud: string } => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { aud: string };
  expect(claims(primary).aud).toBe('https://padlock-abc.a.run.app');
  expect(claims(mirror).aud).toBe('https://padlock-mirror-abc.a.run.app');
});
