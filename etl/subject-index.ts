/**
 * The close hook that writes a partition's subject index
 * (lib/privacy/subject-index.ts) next to its manifest: it reads back the part
 * files just written (one at a time, each verified against its manifest
 * entry), counts each subject's encrypted values per field, and stores
 * `_SUBJECTS` before `_SUCCESS`, so every closed partition has one.
 *
 * It depends only on the part files, not on how the close produced them, so
 * a close split into shards can call `indexPartFiles` per shard and store
 * `serializeSubjectIndex(mergeSubjectIndexes(…))` of their `build()`s: the
 * same bytes as one pass.
 */
import { readContainer, decodeRecords } from '../lib/avro/container.ts';
import { avroType } from '../lib/avro/long.ts';
import { crc32c, crc32cToBase64 } from '../lib/crc32c.ts';
import { AppError } from '../lib/errors.ts';
import { subjectIndexObjectName, successObjectName, type ManifestFile, type Period } from '../lib/partitions.ts';
import { compileEncryptedValuePlan, encryptedValuesOf, subjectOfPayload, type EncryptedValuePlan } from '../lib/privacy/encrypted-values.ts';
import { SubjectIndexBuilder } from '../lib/privacy/subject-index.ts';
import type { TypeContext } from './context.ts';
import { createIfAbsent, download, exists, replaceIfGeneration, statObject } from './storage-io.ts';

/** Indexes `files` (parts of one partition) and stores the index before `_SUCCESS`; throws CONFLICT if the partition closed meanwhile. */
export async function writeSubjectIndex(ctx: TypeContext, period: Period, files: readonly ManifestFile[]): Promise<void> {
  const builder = await indexPartFiles(ctx, period, files);
  await storeSubjectIndex(ctx, period, builder.toBytes());
}

/** Counts the subjects of some part files of a partition (`build()` for the object, `toBytes()` for the stored bytes). */
export async function indexPartFiles(ctx: TypeContext, period: Period, files: readonly ManifestFile[]): Promise<SubjectIndexBuilder> {
  const builder = new SubjectIndexBuilder(ctx.eventType, period.key);
  const plans = new Map<string, EncryptedValuePlan>();
  for (const file of files) {
    let plan = plans.get(file.schemaFingerprint);
    if (plan === undefined) {
      const resolved = await ctx.schemas.resolve(file.schemaFingerprint);
      if (resolved === undefined) throw new AppError('DECODE_FAILED', { message: `unknown schema fingerprint ${file.schemaFingerprint}` });
      plan = compileEncryptedValuePlan(resolved.deliveredSchema);
      plans.set(file.schemaFingerprint, plan);
    }
    builder.addFile(file.name);
    if (plan.root === undefined) continue;
    for (const payload of await readPayloads(ctx, file)) {
      const subject = subjectOfPayload(plan, payload);
      if (subject === undefined) continue;
      builder.addRecord(subject, encryptedValuesOf(plan, payload));
    }
  }
  return builder;
}

/** Stores `_SUBJECTS`, replacing one a crashed close left (its parts may have been different), never after `_SUCCESS`. */
export async function storeSubjectIndex(ctx: TypeContext, period: Period, bytes: Buffer): Promise<void> {
  const name = subjectIndexObjectName(ctx.eventType, period);
  const there = await statObject(ctx.data, name);
  const closed = async (): Promise<boolean> => exists(ctx.data, successObjectName(ctx.eventType, period));
  if (there !== undefined && (await closed())) throw new AppError('CONFLICT', { message: `partition ${period.key} was closed by another closer` });
  const outcome =
    there === undefined
      ? (await createIfAbsent(ctx.data, name, bytes, { contentType: 'application/json' })) === 'created'
      : (await replaceIfGeneration(ctx.data, name, bytes, there.generation, 'application/json')) === 'replaced';
  if (!outcome) throw new AppError('CONFLICT', { message: `the subject index of ${period.key} was written by another closer meanwhile` });
}

async function readPayloads(ctx: TypeContext, file: ManifestFile): Promise<unknown[]> {
  const bytes = await download(ctx.data, file.name);
  if (bytes === undefined || bytes.length !== file.size || crc32cToBase64(crc32c(bytes)) !== file.crc32c) {
    throw new AppError('STORAGE_FAILED', { message: `part ${file.name} does not hold the bytes written` });
  }
  const contents = readContainer(bytes);
  const type = avroType(contents.schema);
  return decodeRecords(contents, (buf, pos) => type.decode(buf, pos) as { value: { payload: unknown }; offset: number }).map((r) => r.payload);
}
