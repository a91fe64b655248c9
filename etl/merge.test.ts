import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { periodOf } from '../lib/partitions.ts';
import { writeContainer } from '../lib/avro/container.ts';
import { dedupById, summarizeRecords } from './closer.ts';
import { ContainerBlockReader, ContainerStreamWriter } from './container-stream.ts';
import { decodeStaged, encodeDelivered, encodeStaged, stagedEnvelopeSchema, type StagedRecord } from './envelope.ts';
import { buildStagedFile, parseStagedFile } from './files.ts';
import { distinctPerInstance } from './completeness.ts';
import { avroType } from '../lib/avro/long.ts';
import { ContainerCursor, mergeCursors, readEnvelope, summarize } from './merge.ts';

const period = periodOf(Date.UTC(2026, 0, 5, 7), 'hourly');

async function cursorOver(name: string, bytes: Buffer): Promise<ContainerCursor> {
  const reader = new ContainerBlockReader(name, bytes.length, async (o, l) => bytes.subarray(o, o + l), 64);
  return new ContainerCursor(name, reader).start();
}

async function cursorsOver(files: StagedRecord[][]): Promise<ContainerCursor[]> {
  return Promise.all(files.map((f, i) => cursorOver(`f${i}`, buildStagedFile(`f${i}`, 't', period, f))));
}

const recordArb: fc.Arbitrary<StagedRecord> = fc.record({
  eventId: fc.stringMatching(/^[a-e]{1,3}$/),
  receiveTime: fc.integer({ min: period.startMs, max: period.endMs - 1 }),
  schemaFingerprint: fc.constantFrom('fp1', 'fp2'),
  stats: fc.constantFrom<Record<string, number>>({}, { nulledFields: 1 }, { nulledFields: 2, other: 5 }),
  record: fc.uint8Array({ maxLength: 4 }).map((a) => Buffer.from(a)),
});
/** Records as staged from event-service instances or direct producers (no instance). */
const attributedArb: fc.Arbitrary<StagedRecord> = fc
  .tuple(recordArb, fc.constantFrom<string | undefined>('i1', 'i2', undefined))
  .map(([r, instanceId]) => (instanceId === undefined ? r : { ...r, instanceId }));
/** Records spread over 1–6 staged files: ids repeat within and across files (redeliveries, several versions). */
const filesArb = fc.array(fc.array(recordArb, { maxLength: 40 }), { minLength: 1, maxLength: 6 });

describe('merging sorted staged files', () => {
  it('counts distinct ids per accepting instance (an id staged with two instances counts for each), whatever the files', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(attributedArb, { maxLength: 40 }), { minLength: 1, maxLength: 6 }), async (files) => {
        const s = await summarize(await cursorsOver(files));
        expect(s.byInstance).toEqual(distinctPerInstance(files.flat()));
        expect(s.unique).toBe(dedupById(files.flat()).length);
      }),
      { numRuns: 150 },
    );
  });

  it('reads files staged before envelopes carried the instance (as direct), in a merge and in a run', async () => {
    const legacySchema = { ...stagedEnvelopeSchema, fields: stagedEnvelopeSchema.fields.filter((f) => f.name !== 'instanceId') };
    const legacyType = avroType(legacySchema);
    const old: StagedRecord[] = ['a', 'c'].map((id) => ({ eventId: id, receiveTime: period.startMs, schemaFingerprint: 'fp', stats: { n: 1 }, record: Buffer.from([7]) }));
    const legacy = writeContainer(
      old.map((r) => legacyType.toBuffer(r)),
      { schema: legacySchema, syncMarker: Buffer.alloc(16, 3), codec: 'deflate' },
    );
    const fresh = buildStagedFile('new', 't', period, [{ eventId: 'b', receiveTime: period.startMs, schemaFingerprint: 'fp', stats: {}, record: Buffer.from([8]), instanceId: 'i1' }]);
    expect(parseStagedFile(legacy)).toEqual(old);
    const s = await summarize([await cursorOver('legacy', legacy), await cursorOver('new', fresh)]);
    expect(s.byInstance).toEqual(new Map([['', 2], ['i1', 1]]));
    // A run copies envelope bytes: a legacy record is re-encoded with today's envelope.
    const bytes: Buffer[] = [];
    await mergeCursors([await cursorOver('legacy', legacy), await cursorOver('new', fresh)], { dedup: false }, (c) => void bytes.push(c.currentBytes!));
    expect(bytes.map((b) => decodeStaged(b, 0).value.eventId)).toEqual(['a', 'b', 'c']);
    expect(bytes.map((b) => decodeStaged(b, 0).value.instanceId)).toEqual([undefined, 'i1', undefined]);
  });

  it('yields every id once, the record the in-memory dedup keeps, in id order', async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, async (files) => {
        const out: StagedRecord[] = [];
        const counts = await mergeCursors(await cursorsOver(files), { dedup: true }, (c) => {
          out.push(c.current!);
        });
        const expected = dedupById(files.flat());
        expect(out.map((r) => [r.eventId, r.schemaFingerprint, r.record.toString('hex'), r.receiveTime, r.stats])).toEqual(
          expected.map((r) => [r.eventId, r.schemaFingerprint, r.record.toString('hex'), r.receiveTime, r.stats]),
        );
        expect(counts).toEqual({ read: files.flat().length, emitted: expected.length });
      }),
      { numRuns: 150 },
    );
  });

  it('counts what the manifest reports: distinct ids per version, receive-time range, summed stats', async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, async (files) => {
        const s = await summarize(await cursorsOver(files));
        const unique = dedupById(files.flat());
        const expected = summarizeRecords(unique);
        expect(s.read).toBe(files.flat().length);
        expect(s.unique).toBe(unique.length);
        expect(s.minReceiveTime).toBe(expected.minReceiveTime);
        expect(s.maxReceiveTime).toBe(expected.maxReceiveTime);
        expect(s.stats).toEqual(expected.transformStats);
        const perFp = new Map<string, number>();
        for (const r of unique) perFp.set(r.schemaFingerprint, (perFp.get(r.schemaFingerprint) ?? 0) + 1);
        expect(s.byFingerprint).toEqual(perFp);
      }),
      { numRuns: 100 },
    );
  });

  it('without dedup keeps every record in order (what an intermediate run holds)', async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, async (files) => {
        const out: Buffer[] = [];
        await mergeCursors(await cursorsOver(files), { dedup: false }, (c) => {
          out.push(Buffer.from(c.currentBytes!));
        });
        const all = files.flat();
        expect(out.length).toBe(all.length);
        // A run is itself a valid merge input: re-merging it with dedup gives the same result.
        const run = writeContainer(out, { schema: stagedEnvelopeSchema, syncMarker: Buffer.alloc(16, 1), codec: 'null' });
        const again: StagedRecord[] = [];
        await mergeCursors([await cursorOver('run', run)], { dedup: true }, (c) => {
          again.push(c.current!);
        });
        expect(again.map((r) => r.eventId)).toEqual(dedupById(all).map((r) => r.eventId));
      }),
      { numRuns: 60 },
    );
  });

  it('writes each record as encodeDelivered does, and reads its fields as decoding it does', async () => {
    // Ids of several UTF-8 widths and payloads on both sides of the byte-by-byte copy's bound.
    const wideArb = fc
      .tuple(attributedArb, fc.stringMatching(/^[a-cé€😀]{1,3}$/u), fc.uint8Array({ maxLength: 200 }))
      .map(([r, eventId, payload]): StagedRecord => ({ ...r, eventId, record: Buffer.from(payload) }));
    const collect = async (feed: (w: ContainerStreamWriter) => Promise<void>): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      const w = new ContainerStreamWriter({ schema: stagedEnvelopeSchema, syncMarker: Buffer.alloc(16, 4), codec: 'null', blockBytes: 512 }, (c) => void chunks.push(c));
      await feed(w);
      await w.end();
      return Buffer.concat(chunks);
    };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(wideArb, { maxLength: 30 }), { minLength: 1, maxLength: 4 }), async (files) => {
        const seen: unknown[] = [];
        const merged = await collect(async (w) => {
          await mergeCursors(await cursorsOver(files), { dedup: true }, (c) => {
            const r = c.current!;
            seen.push([c.fingerprint, c.receiveTime, c.instanceId, c.hasStats, r.schemaFingerprint, r.receiveTime, r.instanceId ?? '', Object.keys(r.stats).length > 0]);
            return c.writeDelivered(w);
          });
        });
        for (const row of seen) expect((row as unknown[]).slice(0, 4)).toEqual((row as unknown[]).slice(4));
        const expected = await collect(async (w) => {
          for (const r of dedupById(files.flat())) await w.append(encodeDelivered(r.eventId, r.receiveTime, r.record));
        });
        expect(merged.equals(expected)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('writes a record whose longs are not in their shortest form as encodeDelivered does', async () => {
    const r: StagedRecord = { eventId: 'a', receiveTime: 5, schemaFingerprint: 'fp', stats: {}, record: Buffer.from([9, 8]) };
    const canonical = encodeStaged(r);
    // The id's length (1, zigzag 0x02) padded to two bytes: the same value, other bytes.
    const padded = Buffer.concat([Buffer.from([0x82, 0x00]), canonical.subarray(1)]);
    const file = writeContainer([padded], { schema: stagedEnvelopeSchema, syncMarker: Buffer.alloc(16, 5), codec: 'null' });
    const out: Buffer[] = [];
    await mergeCursors([await cursorOver('padded', file)], { dedup: true }, (c) =>
      c.writeDelivered({ append: (b) => void out.push(Buffer.from(b)), appendRanges: () => expect.fail('copied non-canonical bytes') }),
    );
    expect(out).toEqual([encodeDelivered('a', 5, Buffer.from([9, 8]))]);
  });

  it('refuses a staged file that is not sorted, naming it', async () => {
    const recs = ['b', 'a'].map((id): StagedRecord => ({ eventId: id, receiveTime: period.startMs, schemaFingerprint: 'fp', stats: {}, record: Buffer.from([1]) }));
    const unsorted = writeContainer(recs.map(encodeStaged), { schema: stagedEnvelopeSchema, syncMarker: Buffer.alloc(16, 2), codec: 'deflate' });
    const cursor = await cursorOver('staging/t/x.avro', unsorted);
    await expect(mergeCursors([cursor], { dedup: true }, () => undefined)).rejects.toThrow('staging/t/x.avro: staged records are not sorted by event id');
  });

  it('decodes envelopes exactly as avsc does, and rejects truncated ones', () => {
    fc.assert(
      fc.property(recordArb, fc.stringMatching(/^[\p{L}\p{N}-]{1,40}$/u), (r, id) => {
        const bytes = encodeStaged({ ...r, eventId: id });
        expect(readEnvelope(bytes, 0)).toEqual(decodeStaged(bytes, 0));
        expect(readEnvelope(bytes.subarray(0, bytes.length - 1), 0)).toBeUndefined();
      }),
    );
  });
});
