/**
 * Global setup of the `system` project: starts every emulator once per run on
 * free loopback ports and provides their endpoints to tests (`inject('pubsubHost')`).
 * Teardown stops them; if the run is killed, each emulator's watchdog does.
 */
import type { TestProject } from 'vitest/node';
import { startTestGcs } from './gcs.ts';
import { startBigQueryEmulator } from '../../../emulators/bigquery/index.ts';
import { startBigtableEmulator, startFirestoreEmulator, startPubSubEmulator } from '../../../emulators/google/google.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:port` of the Pub/Sub emulator. */
    pubsubHost: string;
    /** `127.0.0.1:port` of the Firestore emulator. */
    firestoreHost: string;
    /** `127.0.0.1:port` of the Bigtable emulator. */
    bigtableHost: string;
    /** Base URL of the project's own GCS emulator (in memory; fault injection at `/_emulator/faults`). */
    gcsUrl: string;
    /** Base URL of the project's own BigQuery emulator (in memory, loading from `gcsUrl`; faults at `/_emulator/faults`). */
    bigqueryUrl: string;
    /** Project id every test uses with the emulators. */
    projectId: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.METADATA_SERVER_DETECTION = 'none';
  const [pubsub, firestore, bigtable, gcs] = await Promise.all([
    startPubSubEmulator(),
    startFirestoreEmulator(),
    startBigtableEmulator(),
    startTestGcs(),
  ]);
  project.provide('pubsubHost', pubsub.host);
  project.provide('firestoreHost', firestore.host);
  project.provide('bigtableHost', bigtable.host);
  project.provide('gcsUrl', gcs.url);
  // Started after GCS: its load jobs read gs:// URIs from that emulator.
  const bigquery = await startBigQueryEmulator({ port: 0, gcsEndpoint: gcs.url });
  project.provide('bigqueryUrl', bigquery.url);
  project.provide('projectId', 'test-project');
  return async () => {
    await bigquery.close();
    await Promise.all([pubsub.stop(), firestore.stop(), bigtable.stop(), gcs.stop()]);
  };
}
