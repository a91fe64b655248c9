/**
 * Merge rounds: when a period has more staged files than one merge may hold
 * open (`closeMergeFanIn`), groups of them are merged into intermediate sorted
 * runs in the staging bucket, round after round, until few enough remain.
 * A run keeps every record (duplicates too: the final merge drops and counts
 * them) and is named after its inputs, so a re-run after a crash reuses it.
 */
import type { Bucket } from '@google-cloud/storage';
import { AppError } from '../lib/errors.ts';
import type { Period } from '../lib/partitions.ts';
import { ContainerStreamWriter } from './container-stream.ts';
import { idSetHash, stagedEnvelopeSchema, syncMarkerFor } from './envelope.ts';
import { runObjectName } from './layout.ts';
import { limiter, mergeCursors, openCursor } from './merge.ts';
import { openUpload, statObject, type ObjectInfo } from './storage-io.ts';

export type MergeInput = Pick<ObjectInfo, 'name' | 'size' | 'generation'>;

/**
 * Runs are deflated like staged files: uncompressed, they took 3–4 times the
 * range reads to merge back, which cost more CPU than deflating them
 * (`npm run bench etl-close` with `BENCH_CLOSE_FAN_IN=16`: 14.5 → 7.8 CPU µs
 * per record for a 200k hour in 20 files, against 5.7 without a round).
 */
const RUN_BLOCK_BYTES = 64 * 1024;
const READS_IN_FLIGHT = 16;

/** Reduces `inputs` (sorted by name) to at most `fanIn` sorted inputs, writing runs as needed. */
export async function reduceToFanIn(p: {
  staging: Bucket;
  eventType: string;
  period: Period;
  inputs: readonly MergeInput[];
  fanIn: number;
  /** Called between inputs (lease renewal). */
  heartbeat?: () => Promise<void>;
}): Promise<MergeInput[]> {
  if (p.fanIn < 2) throw new AppError('CONFIG_INVALID', { message: 'closeMergeFanIn must be at least 2' });
  let inputs = [...p.inputs];
  while (inputs.length > p.fanIn) {
    const next: MergeInput[] = [];
    for (let i = 0; i < inputs.length; i += p.fanIn) {
      const group = inputs.slice(i, i + p.fanIn);
      if (group.length === 1) {
        next.push(group[0]!);
        continue;
      }
      next.push(await writeRun(p.staging, runObjectName(p.eventType, p.period, idSetHash(group.map((g) => g.name))), group));
      await p.heartbeat?.();
    }
    inputs = next;
  }
  return inputs;
}

/** Merges `group` into the run `name` (or takes the one a crashed close left: same inputs, same bytes). */
async function writeRun(staging: Bucket, name: string, group: readonly MergeInput[]): Promise<MergeInput> {
  const there = await statObject(staging, name);
  if (there !== undefined) return there;
  const reads = limiter(READS_IN_FLIGHT);
  const cursors = await Promise.all(group.map((g) => openCursor(staging, g, reads)));
  const upload = openUpload(staging, name, { ifGenerationMatch: 0, contentType: 'avro/binary' });
  try {
    const writer = new ContainerStreamWriter(
      { schema: stagedEnvelopeSchema, syncMarker: syncMarkerFor(name), codec: 'deflate', blockBytes: RUN_BLOCK_BYTES },
      (chunk) => upload.write(chunk),
    );
    await mergeCursors(cursors, { dedup: false }, (c) => writer.append(c.currentBytes!));
    await writer.end();
  } catch (err) {
    upload.abort();
    throw err;
  }
  await upload.end(); // 'exists': another closer wrote the same run meanwhile
  const info = await statObject(staging, name);
  if (info === undefined) throw new AppError('STORAGE_FAILED', { message: `run ${name} vanished after it was written` });
  return info;
}
