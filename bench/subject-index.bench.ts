/**
 * What the subject index adds to closing a partition with personal fields.
 * Per hour size it closes the hour (PartitionCloser: merge, parts, the index,
 * `_SUCCESS`) and then times the index alone again over the same parts
 * (`indexPartFiles`: download, decode, walk, count), so the index's share of
 * the close is measured in the same run; it also prints the index's bytes per
 * distinct subject.
 *
 * The GCS emulator runs in this process (in memory). Records have the sign-up
 * shape (3 encrypted values: email, phone, one contact email), one user per 4
 * records, encrypted with in-memory keys (lib/privacy/test-keys.ts).
 * `BENCH_INDEX_SIZES=50000,200000` (default) picks the hours,
 * `BENCH_INDEX_RUNS=3` the runs of the index alone (median printed).
 */
import { avroType } from '../lib/avro/long.ts';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { auditObjectName, type AuditCount } from '../lib/events/contract.ts';
import { createStorage } from '../lib/gcp/clients.ts';
import { startGcsEmulator } from '../emulators/gcs/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { periodOf, subjectIndexObjectName, type Period } from '../lib/partitions.ts';
import { RecordEncryptor } from '../lib/privacy/record-encryptor.ts';
import { FakeKeySource } from '../lib/privacy/test-keys.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { PartitionCloser } from '../etl/closer.ts';
import { resolveTuning } from '../etl/config.ts';
import type { TypeContext } from '../etl/context.ts';
import { createEncryptionTransform } from '../etl/encryption-transform.ts';
import { idSetHash, type StagedRecord } from '../etl/envelope.ts';
import { buildStagedFile, STAGED_COUNT_KEY } from '../etl/files.ts';
import { LateWriter } from '../etl/late.ts';
import { stagedObjectName } from '../etl/layout.ts';
import { newMetrics } from '../etl/metrics.ts';
import { SchemaResolver } from '../etl/schemas.ts';
import { createIfAbsent } from '../etl/storage-io.ts';
import { indexPartFiles } from '../etl/subject-index.ts';
import { eventTypeRecord } from '../test/support/etl.ts';

const HOUR = 3_600_000;
const projectId = 'bench-project';
const period: Period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');
const schema: AvroSchemaJson = {
  type: 'record',
  name: 'SignUp',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'email', type: 'string', semanticType: 'email' },
    { name: 'phone', type: ['null', 'string'], default: null, semanticType: 'phoneNumber' },
    { name: 'contacts', type: { type: 'array', items: { type: 'record', name: 'Contact', fields: [{ name: 'email', type: 'string', semanticType: 'email' }] } } },
    { name: 'plan', type: 'string' },
  ],
};
const PER_FILE = 10_000;

const intList = (text: string | undefined, fallback: number[]): number[] => {
  const list = (text ?? '').split(',').map((s) => Number(s.trim())).filter((n) => Number.isSafeInteger(n) && n > 0);
  return list.length > 0 ? list : fallback;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const sizes = intList(process.env.BENCH_INDEX_SIZES, [50_000, 200_000]);
const runs = intList(process.env.BENCH_INDEX_RUNS, [3])[0]!;
const gcs = await startGcsEmulator();
const storage = createStorage({ projectId, apiEndpoint: gcs.url });
const keys = new FakeKeySource();
const fingerprint = schemaFingerprint(schema);
const sourceType = avroType(schema);

try {
  console.log(`hour of N sign-up records (3 encrypted values each, N/4 users), staged in files of ${PER_FILE}; index alone: median of ${runs}`);
  for (const [i, size] of sizes.entries()) {
    const eventType = `index_bench_${i}`;
    const registry = new MemoryRegistryStore();
    await registry.putEventType(eventTypeRecord(eventType, [schema]), 0);
    const [staging] = await storage.createBucket(`index-bench-staging-${i}`);
    const [data] = await storage.createBucket(`index-bench-data-${i}`);
    const encryptor = new RecordEncryptor({ keys });
    const deliveredType = avroType(encryptor.deliveredSchema(schema));
    for (let from = 0; from < size; from += PER_FILE) {
      const values = [];
      for (let n = from; n < Math.min(size, from + PER_FILE); n++) {
        const record = { userId: `user-${n % Math.ceil(size / 4)}`, email: `u${n}@mail.example`, phone: `+46-${n}`, contacts: [{ email: `f${n}@mail.example` }], plan: 'pro' };
        values.push({ record: sourceType.fromBuffer(sourceType.toBuffer(record)), schema, fingerprint });
      }
      const encrypted = await encryptor.encryptBatch(eventType, values);
      const records: StagedRecord[] = encrypted.map((e, k) => ({
        eventId: `e-${String(from + k).padStart(8, '0')}`,
        receiveTime: period.startMs + Math.floor(((from + k) * HOUR) / size),
        schemaFingerprint: fingerprint,
        stats: {},
        record: deliveredType.toBuffer(e.record),
      }));
      const name = stagedObjectName(eventType, period, idSetHash(records.map((r) => r.eventId)));
      await createIfAbsent(staging, name, buildStagedFile(name, eventType, period, records), { metadata: { [STAGED_COUNT_KEY]: String(records.length) } });
    }
    const count: AuditCount = { eventType, hour: period.key, instanceId: 'bench', accepted: size, updatedAt: new Date().toISOString() };
    await staging.file(auditObjectName(eventType, period.key, 'bench')).save(JSON.stringify(count), { resumable: false });

    const ctx: TypeContext = {
      eventType,
      granularity: 'hourly',
      retentionDays: 30,
      priority: 'normal',
      staging,
      data,
      schemas: new SchemaResolver(eventType, registry, createEncryptionTransform({ keys }), 0),
      tuning: resolveTuning({}),
      now: () => period.endMs + HOUR,
      logger: silentLogger,
      instanceId: 'index-bench',
      metrics: newMetrics(),
    };
    const started = performance.now();
    const manifest = await new PartitionCloser(ctx, new LateWriter(ctx)).closePartition(period, { force: false });
    const closeSeconds = (performance.now() - started) / 1000;
    if (manifest?.recordCount !== size) throw new Error(`closed ${manifest?.recordCount} records, expected ${size}`);

    const seconds: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < runs; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const builder = await indexPartFiles(ctx, period, manifest.files);
      seconds.push((performance.now() - t0) / 1000);
      const used = process.cpuUsage(c0);
      cpu.push((used.user + used.system) / size);
      builder.toBytes();
    }
    const [indexBytes] = await data.file(subjectIndexObjectName(eventType, period)).download();
    const subjects = Math.ceil(size / 4);
    const index = median(seconds);
    console.log(
      `${String(size).padStart(8)} records, ${subjects} subjects: close ${closeSeconds.toFixed(2)} s (index included); index alone ${index.toFixed(2)} s ` +
        `(${(size / index).toFixed(0)} records/s, ${median(cpu).toFixed(1)} CPU µs/record) = ${((100 * index) / closeSeconds).toFixed(0)}% of the close; ` +
        `_SUBJECTS ${indexBytes.length} bytes, ${(indexBytes.length / subjects).toFixed(1)} B/subject`,
    );
    await staging.deleteFiles({ force: true }).catch(() => undefined);
    await data.deleteFiles({ force: true }).catch(() => undefined);
  }
} finally {
  await gcs.close();
}
