/**
 * Factories for the official Google clients. Each takes explicit endpoints so
 * the same product code talks to emulators locally and to Google in production;
 * nothing else in the code knows which one it is talking to.
 */
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { BigQuery } from '@google-cloud/bigquery';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { Firestore } from '@google-cloud/firestore';
import { Bigtable } from '@google-cloud/bigtable';

export interface GcpTarget {
  projectId: string;
}

/** `emulatorHost` is `host:port`; absent means Google with default credentials. */
export function createPubSub(opts: GcpTarget & { emulatorHost?: string | undefined }): PubSub {
  if (opts.emulatorHost === undefined) return new PubSub({ projectId: opts.projectId });
  return new PubSub({ projectId: opts.projectId, apiEndpoint: opts.emulatorHost, emulatorMode: true });
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

/**
 * `apiEndpoint` is the BigQuery emulator's base URL (`http://127.0.0.1:9050`),
 * or `host:port` as BIGQUERY_EMULATOR_HOST is usually written (plain http is
 * then assumed); absent means Google. The client sends no credentials to a
 * custom endpoint.
 */
export function createBigQuery(opts: GcpTarget & { apiEndpoint?: string | undefined }): BigQuery {
  if (opts.apiEndpoint === undefined) return new BigQuery({ projectId: opts.projectId });
  const endpoint = /^https?:\/\//.test(opts.apiEndpoint) ? opts.apiEndpoint : `http://${opts.apiEndpoint}`;
  return new BigQuery({ projectId: opts.projectId, apiEndpoint: endpoint.replace(/\/+$/, '') });
}

export function createKms(opts: { apiEndpoint?: string | undefined } = {}): KeyManagementServiceClient {
  return opts.apiEndpoint === undefined
    ? new KeyManagementServiceClient()
    : new KeyManagementServiceClient({ apiEndpoint: opts.apiEndpoint });
}

export function createFirestore(opts: GcpTarget & { emulatorHost?: string | undefined; databaseId?: string }): Firestore {
  if (opts.emulatorHost === undefined) {
    return new Firestore({ projectId: opts.projectId, databaseId: opts.databaseId });
  }
  const [host, port] = splitHostPort(opts.emulatorHost);
  return new Firestore({
    projectId: opts.projectId,
    databaseId: opts.databaseId,
    host,
    port,
    ssl: false,
    customHeaders: { Authorization: 'Bearer owner' },
  });
}

export function createBigtable(opts: GcpTarget & { emulatorHost?: string | undefined; appProfileId?: string | undefined }): Bigtable {
  const profile = opts.appProfileId === undefined ? {} : { appProfileId: opts.appProfileId };
  if (opts.emulatorHost === undefined) return new Bigtable({ projectId: opts.projectId, ...profile });
  const [host, port] = splitHostPort(opts.emulatorHost);
  // metricsEnabled: false, or the client looks for credentials to export metrics and dies.
  return new Bigtable({
    projectId: opts.projectId,
    ...profile,
    apiEndpoint: `${host}:${port}`,
    metricsEnabled: false,
  } as ConstructorParameters<typeof Bigtable>[0]);
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
}
