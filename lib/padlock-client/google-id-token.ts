/**
 * Identity tokens for calling padlock on Cloud Run (`PadlockClientOptions.idToken`):
 * google-auth-library's ID-token client for the runtime's service account (the
 * metadata server on GKE or Cloud Run, or a service-account key in
 * GOOGLE_APPLICATION_CREDENTIALS), one per audience; it caches each token until
 * shortly before it expires.
 */
import { GoogleAuth, type IdTokenClient } from 'google-auth-library';

export function googleIdTokens(auth: GoogleAuth = new GoogleAuth()): (audience: string) => Promise<string> {
  const clients = new Map<string, Promise<IdTokenClient>>();
  return async (audience) => {
    let client = clients.get(audience);
    if (client === undefined) {
      client = auth.getIdTokenClient(audience);
      clients.set(audience, client);
      client.catch(() => clients.delete(audience));
    }
    const headers = await (await client).getRequestHeaders();
    const value = headers.get('authorization') ?? '';
    if (!value.startsWith('Bearer ')) throw new Error('the ID-token client returned no bearer token');
    return value.slice('Bearer '.length);
  };
}
