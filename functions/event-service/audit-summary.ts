/**
 * Compaction of audit counts: an instance folds its final count of a type and
 * hour into the hour's summary object (`auditSummaryObjectName`), then deletes
 * its own object, so once an hour is over the ETL lists one object per
 * type-hour instead of one per instance. The fold is a read-modify-write under
 * `ifGenerationMatch` (0 when the summary does not exist yet), retried on a
 * precondition failure: concurrent instances never lose each other's entries,
 * and folding the same count again changes nothing (idempotent).
 */
import type { Bucket } from '@google-cloud/storage';
import { auditObjectName, auditSummaryObjectName, foldAuditCount, parseAuditSummary, type AuditCount, type AuditSummary } from '../../lib/events/contract.ts';

/** Precondition races tolerated before a fold gives up (the caller retries at its next flush). */
const FOLD_ATTEMPTS = 8;

const httpCode = (err: unknown): unknown => (err as { code?: unknown } | undefined)?.code;

async function readSummary(bucket: Bucket, name: string): Promise<{ summary: AuditSummary | undefined; generation: number }> {
  const file = bucket.file(name);
  try {
    // Generation first: if the content read is newer, the write's precondition fails and the fold retries.
    const [meta] = await file.getMetadata();
    const generation = Number(meta.generation ?? NaN);
    const [bytes] = await file.download();
    if (!Number.isSafeInteger(generation)) throw new Error(`audit summary ${name} has no generation`);
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      json = undefined;
    }
    // An unreadable summary is replaced, not trusted: its instances' own objects are only deleted after their fold.
    return { summary: parseAuditSummary(json), generation };
  } catch (err) {
    if (httpCode(err) === 404) return { summary: undefined, generation: 0 };
    throw err;
  }
}

/** Folds `count` into its hour's summary; rejects after repeated races or a storage failure. */
export async function foldIntoSummary(bucket: Bucket, count: AuditCount): Promise<void> {
  const name = auditSummaryObjectName(count.eventType, count.hour);
  for (let attempt = 1; ; attempt++) {
    const { summary, generation } = await readSummary(bucket, name);
    const next = foldAuditCount(summary, count);
    if (summary !== undefined && JSON.stringify(next) === JSON.stringify(summary)) return;
    try {
      await bucket.file(name).save(JSON.stringify(next), {
        resumable: false,
        contentType: 'application/json',
        validation: false,
        preconditionOpts: { ifGenerationMatch: generation },
      });
      return;
    } catch (err) {
      if (httpCode(err) !== 412 || attempt >= FOLD_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40 * attempt));
    }
  }
}

/** Deletes the instance's own object of `count` (after its fold); a missing object is fine. */
export async function deleteInstanceObject(bucket: Bucket, count: AuditCount): Promise<void> {
  try {
    await bucket.file(auditObjectName(count.eventType, count.hour, count.instanceId)).delete();
  } catch (err) {
    if (httpCode(err) !== 404) throw err;
  }
}
