/**
 * The Cloud Storage client factory (re-exported by clients.ts, where the other
 * clients' are): alone here so that code needing only GCS loads no other client.
 */
import { Storage } from '@google-cloud/storage';

export interface GcpTarget {
  projectId: string;
}

/**
 * `apiEndpoint` is a base URL such as `http://127.0.0.1:4443`; absent means Google.
 * `maxRetries` overrides the client's default of 3 retries per request.
 */
export function createStorage(opts: GcpTarget & { apiEndpoint?: string | undefined; maxRetries?: number }): Storage {
  const retryOptions = opts.maxRetries === undefined ? {} : { retryOptions: { maxRetries: opts.maxRetries } };
  if (opts.apiEndpoint === undefined) return new Storage({ projectId: opts.projectId, ...retryOptions });
  return new Storage({
    ...retryOptions,
    projectId: opts.projectId,
    apiEndpoint: opts.apiEndpoint.replace(/\/+$/, ''),
    // Emulators take any token; this keeps the client from looking for credentials.
    authClient: undefined,
    credentials: undefined,
    token: 'emulator',
    useAuthWithCustomEndpoint: false,
  } as ConstructorParameters<typeof Storage>[0]);
}
