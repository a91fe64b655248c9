/**
 * Whether the hand-written container writer (lib/avro/container.ts) is worth
 * its code against avsc's BlockEncoder. Closing a partition starts from
 * staged envelopes whose payload is already Avro binary in the delivered
 * schema: ours splices those bytes into the part file; BlockEncoder encodes
 * values, so each payload must first be decoded. Both write the same
 * page-view records, deflate, the same sync marker and metadata; both outputs
 * are read back and compared. Prints the median of 5 runs per writer: CPU µs
 * per record and records per second, with the avsc figure as the baseline.
 */
import { Readable } from 'node:stream';
import avro from 'avsc';
import { avroType } from '../lib/avro/long.ts';
import { deliveredFileSchema } from '../lib/partitions.ts';
import { decodeRecords, readContainer, writeContainer } from '../lib/avro/container.ts';
import { encodeDelivered } from '../etl/envelope.ts';
import { makeEvents, pageViewSchema } from '../test/support/etl.ts';

const N = 100_000;
const RUNS = 5;
const payloadType = avroType(pageViewSchema);
const fileSchema = deliveredFileSchema(pageViewSchema);
const fileType = avroType(fileSchema);
const syncMarker = Buffer.alloc(16, 0x5a);
const metadata = { 'edp.eventType': 'page_view', 'edp.period': '2026-01-05T07' };
const staged = makeEvents(N, (i) => Date.UTC(2026, 0, 5, 7) + i).map((e) => ({ eventId: e.eventId, receiveTime: e.receiveTime, record: payloadType.toBuffer(e.payload) }));

function handWritten(): Buffer {
  return writeContainer(
    staged.map((r) => encodeDelivered(r.eventId, r.receiveTime, r.record)),
    { schema: fileSchema, syncMarker, codec: 'deflate', metadata },
  );
}

async function blockEncoder(): Promise<Buffer> {
  // avsc's typings omit `metadata`, which BlockEncoder takes.
  const options = { codec: 'deflate', syncMarker, metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, Buffer.from(v)])) };
  const encoder = new avro.streams.BlockEncoder(fileType as unknown as avro.Schema, options as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => encoder.on('data', (c: Buffer) => chunks.push(c)).on('end', resolve).on('error', reject));
  for (const r of staged) encoder.write({ eventId: r.eventId, receiveTime: r.receiveTime, payload: payloadType.fromBuffer(r.record) });
  encoder.end();
  await done;
  return Buffer.concat(chunks);
}

async function measure(write: () => Buffer | Promise<Buffer>): Promise<{ cpuUs: number; wallMs: number; bytes: Buffer }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const bytes = await write();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: cpu.user + cpu.system, wallMs, bytes };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function readAll(bytes: Buffer): Promise<unknown[]> {
  const out: unknown[] = [];
  await new Promise<void>((resolve, reject) => {
    Readable.from([bytes]).pipe(new avro.streams.BlockDecoder({ parseHook: () => fileType })).on('data', (r: unknown) => out.push(r)).on('end', resolve).on('error', reject);
  });
  return out;
}

const results: Record<string, { cpuUs: number[]; wallMs: number[]; size: number }> = {};
for (let run = 0; run < RUNS; run++) {
  for (const [name, write] of [
    ['avsc BlockEncoder (decode + encode)', blockEncoder],
    ['hand-written (splice)', handWritten],
  ] as const) {
    const m = await measure(write);
    const r = (results[name] ??= { cpuUs: [], wallMs: [], size: m.bytes.length });
    r.cpuUs.push(m.cpuUs);
    r.wallMs.push(m.wallMs);
    if (run === 0) {
      const ours = decodeRecords(readContainer(m.bytes), (b, p) => fileType.decode(b, p) as { value: unknown; offset: number });
      const viaAvsc = await readAll(m.bytes);
      if (ours.length !== N || JSON.stringify(viaAvsc) !== JSON.stringify(ours)) throw new Error(`${name}: output does not read back`);
    }
  }
}
const baseline = median(results['avsc BlockEncoder (decode + encode)']!.cpuUs);
console.log(`${N} delivered page-view records, deflate; median of ${RUNS} runs`);
for (const [name, r] of Object.entries(results)) {
  const cpu = median(r.cpuUs);
  console.log(
    `${name.padEnd(38)} ${(cpu / N).toFixed(2).padStart(6)} CPU µs/record  ${Math.round(N / (median(r.wallMs) / 1000)).toLocaleString('en').padStart(10)} records/s  ${(baseline / cpu).toFixed(2)}x baseline  ${r.size} bytes`,
  );
}
