/** A staged hour for the close benchmarks (`etl-close`, `etl-close-drain`). */
import type { Bucket } from '@google-cloud/storage';
import { schemaFingerprint } from '../lib/avro/fingerprint.ts';
import { avroType } from '../lib/avro/long.ts';
import { auditObjectName, type AuditCount } from '../lib/events/contract.ts';
import type { Period } from '../lib/partitions.ts';
import { idSetHash, type StagedRecord } from '../etl/envelope.ts';
import { buildStagedFile, STAGED_COUNT_KEY } from '../etl/files.ts';
import { stagedObjectName } from '../etl/layout.ts';
import { createIfAbsent } from '../etl/storage-io.ts';
import { pageViewSchema } from '../test/support/etl.ts';

const HOUR = 3_600_000;

/** Stages `size` records of the page-view shape, files of `perFile` overlapping by 2%, and the audit count. */
export async function stageHour(staging: Bucket, eventType: string, period: Period, size: number, perFile: number): Promise<number> {
  const type = avroType(pageViewSchema);
  const fingerprint = schemaFingerprint(pageViewSchema);
  const overlap = Math.floor(perFile / 50);
  let files = 0;
  for (let from = 0; from < size; from += perFile) {
    const records: StagedRecord[] = [];
    for (let i = Math.max(0, from - overlap); i < Math.min(size, from + perFile); i++) {
      records.push({
        eventId: `e-${String(i).padStart(8, '0')}`,
        receiveTime: period.startMs + Math.floor((i * HOUR) / size),
        schemaFingerprint: fingerprint,
        stats: {},
        instanceId: 'bench',
        record: type.toBuffer({ userId: `user-${i % 97}`, url: `https://example.com/p/${i}`, durationMs: i }),
      });
    }
    const name = stagedObjectName(eventType, period, idSetHash(records.map((r) => r.eventId)));
    await createIfAbsent(staging, name, buildStagedFile(name, eventType, period, records), { metadata: { [STAGED_COUNT_KEY]: String(records.length) } });
    files++;
  }
  const hour = period.key;
  const count: AuditCount = { eventType, hour, instanceId: 'bench', accepted: size, final: true, updatedAt: new Date().toISOString() };
  await staging.file(auditObjectName(eventType, hour, 'bench')).save(JSON.stringify(count), { resumable: false });
  return files;
}
