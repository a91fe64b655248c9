/**
 * `npm start`: the whole platform on one machine. Starts the Pub/Sub emulator,
 * the GCS and BigQuery emulators (backed by the data folder), padlock, the
 * composer (which applies the example specs), the event service and the ETL
 * workers (with field encryption, loading types stored in BigQuery into the
 * emulator); prints each endpoint as `<name>: <url>`, and runs until
 * Ctrl-C or SIGTERM. Then it stops gracefully: the event service stops intake
 * (503 with Retry-After), the ETL stages every message Pub/Sub still holds
 * (the emulator keeps them in memory only), bounded by the drain timeout and
 * with a progress line every few seconds; then everything shuts down in
 * reverse order. A second signal skips the drain.
 * The only place that exits.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseStartOptions, type StartOptions } from './start-options.ts';
import { loadOrCreateLocalCredentials, localCredentialsFile } from './local-credentials.ts';
import { startPubSubEmulator } from '../emulators/google/google.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { startBigQueryEmulator } from '../emulators/bigquery/index.ts';
import { createStorage } from '../lib/gcp/clients.ts';
import { FileRegistryStore } from '../lib/registry/file.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { DEFAULT_KEY_CONTEXT } from '../lib/privacy/delivered-schema.ts';
import { createLogger } from '../lib/logger.ts';
import { startPadlock } from '../functions/padlock/server.ts';
import { loadConfig as loadPadlockConfig } from '../functions/padlock/config.ts';
import { serviceEntry } from '../functions/padlock/services.ts';
import { startComposer, loadConfig as loadComposerConfig } from '../composer/index.ts';
import { startEventService } from '../functions/event-service/server.ts';
import { withDefaults as eventServiceConfig } from '../functions/event-service/config.ts';
import { startEtlWorkers, type EtlWorkers } from '../etl/workers.ts';
import { createEncryptionTransform } from '../etl/encryption-transform.ts';
import { startStatusService } from '../functions/status/server.ts';
import { defaultStatusTuning } from '../functions/status/config.ts';
import { createPubSub } from '../lib/gcp/clients.ts';

interface Running {
  name: string;
  /** Printed as `<name>: <url>`; absent for components without an endpoint. */
  url?: string;
  stop(): Promise<void>;
}

/** What a graceful stop drains before stopping everything. */
interface Intake {
  eventService?: { stopIntake(): Promise<void> };
  etl?: EtlWorkers;
}

const logger = createLogger({ component: 'start' });

/** Example event types applied at start (one with personal fields). */
const EXAMPLE_SPECS = fileURLToPath(new URL('../test/fixtures/specs', import.meta.url));

export const localBuckets = { data: 'local-data', staging: 'local-staging' } as const;

/** Dataset of the event tables in the local BigQuery emulator (Terraform's default dataset id). */
export const localDataset = 'events';

async function startPlatform(opts: StartOptions, running: Running[], intake: Intake): Promise<void> {
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const creds = loadOrCreateLocalCredentials(dataDir);
  const registryDir = path.join(dataDir, 'registry');
  const base = { ...process.env, GCP_PROJECT: opts.projectId };

  const pubsub = await startPubSubEmulator({ port: opts.pubsubPort, dataDir });
  running.push({ name: 'pubsub', url: `http://${pubsub.host}`, stop: () => pubsub.stop() });

  const gcs = await startGcsEmulator({ port: opts.gcsPort, dir: path.join(dataDir, 'gcs'), host: '127.0.0.1' });
  running.push({ name: 'gcs', url: gcs.url, stop: () => gcs.close() });
  await ensureBuckets(opts.projectId, gcs.url);

  // Load jobs read their gs:// sources from the GCS emulator above.
  const bigquery = await startBigQueryEmulator({ port: opts.bigqueryPort, gcsEndpoint: gcs.url, dir: path.join(dataDir, 'bigquery'), host: '127.0.0.1' });
  running.push({ name: 'bigquery', url: bigquery.url, stop: () => bigquery.close() });

  const padlock = await startPadlock(
    loadPadlockConfig({
      ...base,
      PADLOCK_HOST: '127.0.0.1',
      PADLOCK_PORT: String(opts.padlockPort),
      PADLOCK_DATA_DIR: path.join(dataDir, 'padlock'),
      PADLOCK_SERVICES: JSON.stringify([
        serviceEntry('etl', creds.padlock.etl, { contexts: [DEFAULT_KEY_CONTEXT] }),
        serviceEntry('consumer-analytics', creds.padlock['consumer-analytics'], { contexts: [DEFAULT_KEY_CONTEXT] }),
        serviceEntry('privacy', creds.padlock.privacy, { admin: true }),
      ]),
    }),
  );
  running.push({ name: 'padlock', url: padlock.url, stop: () => padlock.close() });

  const composer = await startComposer(
    loadComposerConfig({
      ...base,
      COMPOSER_HOST: '127.0.0.1',
      COMPOSER_PORT: String(opts.composerPort),
      PUBSUB_EMULATOR_HOST: pubsub.host,
      REGISTRY_STORE: 'file',
      REGISTRY_DIR: registryDir,
      GCS_API_ENDPOINT: gcs.url,
      DATA_BUCKET: localBuckets.data,
      COMPOSER_TOKENS: Object.entries(creds.composer).map(([team, token]) => `${token}=${team}`).join(','),
      COMPOSER_SPECS_DIR: EXAMPLE_SPECS,
    }),
  );
  running.push({ name: 'composer', url: composer.url, stop: () => composer.close() });

  const registry = new FileRegistryStore(registryDir);
  const eventService = await startEventService(
    eventServiceConfig({
      host: '127.0.0.1',
      port: opts.eventServicePort,
      projectId: opts.projectId,
      pubsubEmulatorHost: pubsub.host,
      gcsEndpoint: gcs.url,
      stagingBucket: localBuckets.staging,
    }),
    { registry },
  );
  running.push({ name: 'event-service', url: eventService.url, stop: () => eventService.close() });
  intake.eventService = eventService;

  const keys = createPadlockClient({ url: padlock.url, service: 'etl', secret: creds.padlock.etl, context: DEFAULT_KEY_CONTEXT });
  const etl = await startEtlWorkers({
    projectId: opts.projectId,
    pubsubEmulatorHost: pubsub.host,
    storageEndpoint: gcs.url,
    stagingBucket: localBuckets.staging,
    dataBucket: localBuckets.data,
    registry,
    transform: createEncryptionTransform({ keys }),
    bigQuery: { endpoint: bigquery.url, dataset: localDataset },
  });
  running.push({ name: 'etl', stop: () => etl.close() });
  intake.etl = etl;
  logger.info('etl workers running', { eventTypes: etl.eventTypes() });

  // Read-only: the partition status page and API over the same buckets, registry and dead-letter subscriptions.
  const statusPubSub = createPubSub({ projectId: opts.projectId, emulatorHost: pubsub.host });
  const status = await startStatusService({
    host: '127.0.0.1',
    port: opts.statusPort,
    projectId: opts.projectId,
    storage: createStorage({ projectId: opts.projectId, apiEndpoint: gcs.url }),
    stagingBucket: localBuckets.staging,
    dataBucket: localBuckets.data,
    registry,
    pubsub: statusPubSub,
    tuning: defaultStatusTuning,
  });
  running.push({
    name: 'status',
    url: status.url,
    stop: async () => {
      await status.close();
      await statusPubSub.close();
    },
  });
}

async function ensureBuckets(projectId: string, gcsUrl: string): Promise<void> {
  const storage = createStorage({ projectId, apiEndpoint: gcsUrl });
  for (const name of Object.values(localBuckets)) {
    const [exists] = await storage.bucket(name).exists();
    // The data bucket retains closed partitions' objects, as on Google Cloud (etl/seal.ts).
    if (!exists) await storage.createBucket(name, { enableObjectRetention: name === localBuckets.data });
  }
}

/**
 * Stops intake, then lets the ETL stage what Pub/Sub still holds, bounded by
 * `timeoutMs`, printing progress; says what was left if the bound was hit.
 */
async function drain(intake: Intake, timeoutMs: number): Promise<void> {
  const say = (line: string): boolean => process.stdout.write(`${line}\n`);
  if (intake.eventService !== undefined) {
    await intake.eventService.stopIntake();
    say('stopping: intake closed (POST /v1/events answers 503 with Retry-After)');
  }
  if (intake.etl === undefined) return;
  say(`stopping: staging what Pub/Sub still holds (at most ${Math.round(timeoutMs / 1000)} s; Ctrl-C again to skip)`);
  const result = await intake.etl.drain({
    timeoutMs,
    onProgress: (p) => say(`draining: ${p.staged} staged, ${p.outstanding} in flight (${p.draining.join(', ')})`),
  });
  if (result.drained) say(`drained: ${result.staged} staged`);
  else {
    say(`drain timed out: ${result.staged} staged; still draining ${result.draining.join(', ')}, whose remaining messages are lost with the Pub/Sub emulator`);
    logger.warn('drain timed out', { staged: result.staged, outstanding: result.outstanding, eventTypes: result.draining });
  }
}

async function stopAll(running: Running[]): Promise<void> {
  for (const r of [...running].reverse()) {
    await r.stop().catch((err: unknown) => logger.error('stop failed', { stopping: r.name, err }));
  }
}

async function main(): Promise<void> {
  let opts: StartOptions;
  try {
    opts = parseStartOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  process.env.METADATA_SERVER_DETECTION = 'none';
  const running: Running[] = [];
  const intake: Intake = {};
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) {
      // A second signal: stop now. The emulator goes with us (its watchdog sees our pipe close).
      process.stdout.write('stopping now, without draining\n');
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    await drain(intake, opts.drainTimeoutMs).catch((err: unknown) => logger.error('drain failed', { err }));
    await stopAll(running);
    process.stdout.write('stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    await startPlatform(opts, running, intake);
  } catch (err) {
    process.stderr.write(`start failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll(running);
    process.exit(1);
  }
  if (stopping) return;
  for (const r of running) if (r.url !== undefined) process.stdout.write(`${r.name}: ${r.url}\n`);
  process.stdout.write(`credentials: ${localCredentialsFile(path.resolve(opts.dataDir))}\n`);
  logger.info('platform running; Ctrl-C to stop');
  setInterval(() => {}, 1 << 30);
}

void main();
