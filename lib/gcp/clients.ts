/**
 * Factories for the official Google clients. Each takes explicit endpoints so
 * the same product code talks to emulators locally and to Google in production;
 * nothing else in the code knows which one it is talking to.
 */
import { PubSub } from '@google-cloud/pubsub';
import { BigQuery } from '@google-cloud/bigquery';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { Firestore } from '@google-cloud/firestore';
import { Bigtable } from '@google-cloud/bigtable';
import type { GcpTarget } from './storage.ts';

export type { GcpTarget } from './storage.ts';
// In a module of its own so that a thread needing only GCS (etl/close-thread.ts) does not load every client.
export { createStorage } from './storage.ts';

/** `emulatorHost` is `host:port`; absent means Google with default credentials. */
export function createPubSub(opts: GcpTarget & { emulatorHost?: string | undefined }): PubSub {
  if (opts.emulatorHost === undefined) return new PubSub({ projectId: opts.projectId });
  return new PubSub({ projectId: opts.projectId, apiEndpoint: opts.emulatorHost, emulatorMode: true });
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
