/**
 * Composer benchmark: apply 500 event types against the Pub/Sub emulator
 * (registry write + reconcile: dead-letter topic and subscription, Pub/Sub
 * schema, topic, ETL subscription, worker group, monitoring), then re-apply
 * them (the no-op path: observe only). Baseline in the same run: the bare
 * client calls creating topic + subscription + dead-letter topic and
 * subscription for 500 types, no registry, no schema, no checks.
 * Target: under 0.25 s per type. Same concurrency (8) for both.
 */
import { mkdtempSync, readdirSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPubSubEmulator } from '../emulators/google/google.ts';
import { createPubSub } from '../lib/gcp/clients.ts';
import { resourceNames } from '../lib/names.ts';
import { FileRegistryStore } from '../lib/registry/file.ts';
import { Composer } from '../composer/composer.ts';
import { Provisioner } from '../composer/provisioning.ts';
import { mapConcurrent } from '../composer/index.ts';
import type { EventTypeSpec } from '../composer/spec.ts';

const TYPES = Number(process.env.BENCH_TYPES ?? 500);
const CONCURRENCY = 8;
const projectId = 'bench-project';

function spec(name: string): EventTypeSpec {
  return {
    name,
    owner: 'bench',
    description: 'benchmark type',
    priority: (['high', 'normal', 'low'] as const)[name.length % 3] ?? 'normal',
    storage: ['gcs'],
    partitioning: 'hourly',
    retentionDays: 30,
    compatibility: 'BACKWARD_TRANSITIVE',
    schema: {
      type: 'record',
      name: 'BenchEvent',
      fields: [
        { name: 'userId', type: 'string', semanticType: 'userId' },
        { name: 'email', type: ['null', 'string'], default: null, semanticType: 'email' },
        { name: 'url', type: 'string' },
        { name: 'country', type: 'string', semanticType: 'country' },
        { name: 'at', type: 'long', semanticType: 'timestamp' },
      ],
    },
  };
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

async function main(): Promise<void> {
  process.env.METADATA_SERVER_DETECTION = 'none';
  const emulator = await startPubSubEmulator();
  const pubsub = createPubSub({ projectId, emulatorHost: emulator.host });
  const dir = mkdtempSync(path.join(tmpdir(), 'composer-bench-'));
  const provisioner = new Provisioner({ pubsub });
  const composer = new Composer({ registry: new FileRegistryStore(dir), provisioner });
  try {
    // Warm-up: connections, JIT.
    await composer.apply(spec('warmup_type'));

    const baselineNames = Array.from({ length: TYPES }, (_, i) => `base_${i}`);
    let t = performance.now();
    await mapConcurrent(baselineNames, CONCURRENCY, async (name) => {
      const [dlt] = await pubsub.createTopic(resourceNames.deadLetterTopic(name));
      await dlt.createSubscription(resourceNames.deadLetterSubscription(name));
      const [topic] = await pubsub.createTopic(resourceNames.topic(name));
      await topic.createSubscription(resourceNames.etlSubscription(name), {
        ackDeadlineSeconds: 60,
        deadLetterPolicy: { deadLetterTopic: dlt.name, maxDeliveryAttempts: 5 },
      });
    });
    const baselineMs = (performance.now() - t) / TYPES;

    const names = Array.from({ length: TYPES }, (_, i) => `bench_type_${i}`);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    t = performance.now();
    const results = await mapConcurrent(names, CONCURRENCY, (name) => composer.apply(spec(name)));
    const applyMs = (performance.now() - t) / TYPES;
    const failed = results.filter((r) => r.record.provisioning.state !== 'provisioned').length;

    t = performance.now();
    const again = await mapConcurrent(names, CONCURRENCY, (name) => composer.apply(spec(name)));
    const reapplyMs = (performance.now() - t) / TYPES;
    const changedOnReapply = again.filter((r) => r.action !== 'none' || r.changes.length > 0).length;

    t = performance.now();
    const records = await composer.registry.listEventTypes();
    const listMs = performance.now() - t;
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    const diskBytes = readdirSync(dir).reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0);
    const recordBytes = records.reduce((sum, r) => sum + JSON.stringify(r).length, 0);

    console.log(`types: ${TYPES}, concurrency ${CONCURRENCY}, Pub/Sub emulator, file registry`);
    console.log(`baseline (bare client: 2 topics + 2 subscriptions): ${baselineMs.toFixed(1)} ms/type`);
    console.log(`composer apply (registry + 8 reconcile steps):   ${applyMs.toFixed(1)} ms/type  (${(applyMs / baselineMs).toFixed(2)}x baseline; target < 250 ms: ${applyMs < 250 ? 'met' : 'MISSED'})`);
    console.log(`composer re-apply (no-op, observe only):        ${reapplyMs.toFixed(1)} ms/type  (${(reapplyMs / baselineMs).toFixed(2)}x baseline)`);
    console.log(`not provisioned: ${failed}; changed on re-apply: ${changedOnReapply} (expected 0)`);
    console.log(`registry: ${records.length} records, ${mb(diskBytes)} on disk, ${mb(recordBytes)} as JSON; list all: ${listMs.toFixed(0)} ms`);
    console.log(`heap: ${mb(heapBefore)} before apply, ${mb(heapAfter)} after (records in memory: ${mb(heapAfter - heapBefore)} delta)`);
    console.log(`rss: ${mb(process.memoryUsage().rss)}`);
  } finally {
    await provisioner.close();
    await pubsub.close();
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
