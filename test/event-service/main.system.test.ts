/**
 * The event service's entry point as a process: bad configuration exits 1
 * naming the variable; a configured service serves events from the file
 * registry and exits 0 on SIGTERM after flushing its audit counts.
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Bucket } from '@google-cloud/storage';
import { createPubSub, createStorage } from '../../lib/gcp/clients.ts';
import { startGcsEmulator, type GcsEmulator } from '../../emulators/gcs/index.ts';
import { FileRegistryStore } from '../../lib/registry/file.ts';
import { resourceNames } from '../../lib/names.ts';
import { sleep } from '../../emulators/google/process.ts';
import { eventTypeRecord } from '../support/event-service.ts';
import { uniqueName } from '../support/names.ts';

const projectId = inject('projectId');

function runMain(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/event-service/main.ts'], {
    env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, output: () => out };
}

describe('event service main', () => {
  let gcs: GcsEmulator;
  let bucket: Bucket;
  beforeAll(async () => {
    gcs = await startGcsEmulator({ port: 0 });
    [bucket] = await createStorage({ projectId, apiEndpoint: gcs.url }).createBucket(uniqueName('evmain', 'staging'));
  });
  afterAll(async () => gcs?.close());

  it('exits 1 naming the bad variable', async () => {
    const p = runMain({ GCP_PROJECT: 'p', STAGING_BUCKET: 'b-ok', REGISTRY_DIR: '/tmp/x', PORT: 'nope' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('PORT');
  });

  it('serves events from the file registry and shuts down on SIGTERM, flushing audit counts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'event-service-registry-'));
    const type = `main_${randomBytes(3).toString('hex')}`;
    await new FileRegistryStore(dir).putEventType(eventTypeRecord(type, [{ type: 'record', name: 'M', fields: [{ name: 'n', type: 'int' }] }]), 0);
    const pubsub = createPubSub({ projectId, emulatorHost: inject('pubsubHost') });
    await pubsub.createTopic(resourceNames.topic(type));
    await pubsub.close();
    const p = runMain({
      PORT: '0',
      HOST: '127.0.0.1',
      GCP_PROJECT: projectId,
      PUBSUB_EMULATOR_HOST: inject('pubsubHost'),
      GCS_ENDPOINT: gcs.url,
      STAGING_BUCKET: bucket.name,
      REGISTRY_DIR: dir,
      AUDIT_FLUSH_MS: '60000',
    });
    let url: string | undefined;
    for (let i = 0; i < 300 && url === undefined; i++) {
      await sleep(100);
      url = /event service: (http:\/\/[0-9.:]+)/.exec(p.output())?.[1];
    }
    expect(url, p.output()).toBeDefined();
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ events: [{ type, payload: { n: 1 } }, { type, payload: { n: 2 } }] }),
    });
    expect(res.status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    // The audit flush interval is a minute: the count is there because shutdown flushed it, final,
    // compacted into the hour's summary (the instance's own object deleted).
    const [files] = await bucket.getFiles({ prefix: `audit/${type}/` });
    expect(files.map((f) => f.name)).toEqual([expect.stringMatching(new RegExp(`^audit/${type}/\\d{4}-\\d{2}-\\d{2}T\\d{2}/summary$`))]);
    const [bytes] = await files[0]!.download();
    expect(JSON.parse(bytes.toString('utf8'))).toMatchObject({ eventType: type, instances: [{ eventType: type, accepted: 2, final: true }] });
  });
});
