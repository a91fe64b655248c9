/**
 * `npm run bench status`: the partition status service's listing pass over
 * 500 types × 72 hours in the GCS emulator (a child process, so the CPU
 * figures are the status service's own; `BENCH_GCS=in-process` keeps it here).
 *
 * The buckets hold what 72 hours of delivery leave: per type and hour a part
 * file and a `_SUCCESS` manifest (70 closed hours, 2% of them closed at the
 * deadline), `_LOADED` markers for the types stored in BigQuery (1 in 5),
 * late counters on 5% of closed hours, audit counts for every hour, staged
 * files for the two hours not closed yet. Figures: wall time and CPU time of
 * a *first* pass (empty cache: lists everything, reads every manifest and
 * audit count) and of an *incremental* pass (lists from each type's frontier,
 * reads only new or changed objects), medians of several runs with min–max;
 * against a baseline measured in the same run: one bare listing of every
 * object in both buckets (what any listing-based status pays per refresh
 * without a cache).
 *
 * `BENCH_STATUS_TYPES` (500), `BENCH_STATUS_HOURS` (72), `BENCH_STATUS_RUNS`
 * (3 first passes; incremental passes are 2× that) change it.
 */
import { createStorage } from '../lib/gcp/clients.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import { auditObjectName } from '../lib/events/contract.ts';
import { lateCounterObjectName, loadMarkerObjectName, partObjectName, periodOf, successObjectName, type Manifest, type Period } from '../lib/partitions.ts';
import { silentLogger } from '../lib/logger.ts';
import { STAGED_COUNT_KEY, stagingPeriodPrefix } from '../lib/staging-layout.ts';
import { eventTypeRecord, pageViewSchema } from '../test/support/etl.ts';
import { defaultStatusTuning } from '../functions/status/config.ts';
import { PartitionScanner } from '../functions/status/scanner.ts';
import { startStagingEmulator } from './etl-harness.ts';

const HOUR = 3_600_000;
const TYPES = Number(process.env.BENCH_STATUS_TYPES ?? 500);
const HOURS = Number(process.env.BENCH_STATUS_HOURS ?? 72);
const RUNS = Number(process.env.BENCH_STATUS_RUNS ?? 3);
const UPLOADS_IN_FLIGHT = 48;

process.env.BENCH_GCS ??= 'child';
const gcs = await startStagingEmulator();
const storage = createStorage({ projectId: 'bench-project', apiEndpoint: gcs.url });
const staging = storage.bucket('bench-staging');
const data = storage.bucket('bench-data');
await storage.createBucket('bench-staging');
await storage.createBucket('bench-data');

// The clock: 30 minutes into the last hour; the hour before it ended and is not closed yet.
const base = Math.floor(Date.parse('2026-11-20T00:00:00Z') / HOUR) * HOUR;
const nowMs = base + (HOURS - 1) * HOUR + 30 * 60_000;
const registry = new MemoryRegistryStore();
const names = Array.from({ length: TYPES }, (_, i) => `bench_type_${String(i).padStart(4, '0')}`);

function manifest(type: string, p: Period, deadline: boolean): Manifest {
  const accepted = 1000;
  const delivered = deadline ? 990 : 1000;
  return {
    formatVersion: 1,
    eventType: type,
    partitioning: 'hourly',
    period: p.key,
    files: [{ name: partObjectName(type, p, 0), size: 10, crc32c: 'AAAAAA==', md5Hash: 'AAAAAAAAAAAAAAAAAAAAAA==', recordCount: delivered, schemaFingerprint: '0123456789abcdef' }],
    recordCount: delivered,
    schemaFingerprints: ['0123456789abcdef'],
    deliveredSchemas: { '0123456789abcdef': pageViewSchema },
    timeRange: { start: new Date(p.startMs).toISOString(), end: new Date(p.endMs).toISOString() },
    audit: { accepted, delivered, duplicatesDropped: 0, complete: !deadline },
    closedBy: deadline ? 'deadline' : 'complete',
    transformStats: {},
    lateCount: 0,
  };
}

type Upload = () => Promise<unknown>;
/** A simple media upload (less client overhead than \`file.save\`, so building 100k objects takes a minute, not ten). */
async function put(bucket: string, name: string, body: string): Promise<void> {
  const res = await fetch(`${gcs.url}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  if (!res.ok) throw new Error(`upload of ${name} failed: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}
const uploads: Upload[] = [];
const json = (o: unknown): string => JSON.stringify(o);
for (const [i, type] of names.entries()) {
  const record = eventTypeRecord(type, [pageViewSchema], { priority: (['high', 'normal', 'low'] as const)[i % 3] });
  if (i % 5 === 0) record.settings.storage = ['gcs', 'bigquery'];
  await registry.putEventType(record, 0);
  for (let hIndex = 0; hIndex < HOURS; hIndex++) {
    const p = periodOf(base + hIndex * HOUR, 'hourly');
    uploads.push(() => put('bench-staging', auditObjectName(type, p.key, 'es-1'), json({ eventType: type, hour: p.key, instanceId: 'es-1', accepted: 1000, updatedAt: '2026-11-20T00:00:00Z' })));
    if (hIndex >= HOURS - 2) {
      uploads.push(() => staging.file(`${stagingPeriodPrefix(type, p)}${String(hIndex).padStart(64, '0')}.avro`).save('x', { resumable: false, validation: false, metadata: { metadata: { [STAGED_COUNT_KEY]: '1000' } } }));
      continue;
    }
    const deadline = (i * HOURS + hIndex) % 50 === 0;
    uploads.push(() => put('bench-data', partObjectName(type, p, 0), 'x'));
    uploads.push(() => put('bench-data', successObjectName(type, p), json(manifest(type, p, deadline))));
    if (i % 5 === 0) {
      uploads.push(() =>
        put(
          'bench-data',
          loadMarkerObjectName(type, p),
          json({ formatVersion: 1, eventType: type, period: p.key, table: `bench.events.${type}$${p.key.replace(/[-T]/g, '')}`, jobId: 'j', rows: 1000, manifestSha256: 'x', loadedAt: '2026-11-20T00:00:00Z', late: [], lateRows: 0 }),
        ),
      );
    }
    if ((i + hIndex) % 20 === 0) {
      uploads.push(() => put('bench-data', lateCounterObjectName(type, p), json({ eventType: type, period: p.key, count: 3, files: [], updatedAt: '2026-11-20T00:00:00Z' })));
    }
  }
}
const buildStart = performance.now();
let nextUpload = 0;
await Promise.all(
  Array.from({ length: UPLOADS_IN_FLIGHT }, async () => {
    while (nextUpload < uploads.length) await uploads[nextUpload++]!();
  }),
);
console.log(`built ${TYPES} types × ${HOURS} hours: ${uploads.length} objects in ${((performance.now() - buildStart) / 1000).toFixed(1)} s (GCS emulator in a ${gcs.where})`);

interface Figures {
  wallMs: number;
  cpuMs: number;
}
async function measure(fn: () => Promise<unknown>): Promise<Figures> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await fn();
  const wallMs = performance.now() - t;
  const c = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (c.user + c.system) / 1000 };
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
function summary(label: string, runs: Figures[], extra = ''): { wall: number; cpu: number } {
  const w = runs.map((r) => r.wallMs);
  const c = runs.map((r) => r.cpuMs);
  const f = (xs: number[]): string => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  console.log(`${label.padEnd(28)} wall ${f(w).padEnd(24)} CPU ${f(c).padEnd(24)} ${extra}`);
  return { wall: median(w), cpu: median(c) };
}

const tuning = { ...defaultStatusTuning, windowHours: HOURS };
const scanner = (): PartitionScanner =>
  new PartitionScanner({ storage, stagingBucket: 'bench-staging', dataBucket: 'bench-data', registry, tuning, logger: silentLogger, now: () => nowMs });

const bare: Figures[] = [];
let bareObjects = 0;
const first: Figures[] = [];
const incremental: Figures[] = [];
let firstStats = '';
let incStats = '';
let cells = 0;
for (let r = 0; r < RUNS; r++) {
  bare.push(
    await measure(async () => {
      const [a] = await staging.getFiles({ autoPaginate: true });
      const [b] = await data.getFiles({ autoPaginate: true });
      bareObjects = a.length + b.length;
    }),
  );
  const s = scanner();
  first.push(await measure(() => s.refresh()));
  const fs = s.lastPass();
  firstStats = `${fs.listRequests} list requests, ${fs.objectsListed} objects listed, ${fs.downloads} read`;
  for (let k = 0; k < 2; k++) {
    incremental.push(await measure(() => s.refresh()));
    const is = s.lastPass();
    incStats = `${is.listRequests} list requests, ${is.objectsListed} objects listed, ${is.downloads} read`;
  }
  const last = (xs: Figures[]): string => `${xs[xs.length - 1]!.wallMs.toFixed(0)} ms wall, ${xs[xs.length - 1]!.cpuMs.toFixed(0)} ms CPU`;
  console.log(`run ${r + 1}: bare listing ${last(bare)}; first pass ${last(first)}; incremental ${last(incremental)}`);
  const snap = s.snapshot()!;
  cells = [...snap.partitions.values()].reduce((n, ps) => n + ps.length, 0);
}
console.log(`${TYPES} types × ${HOURS} hours = ${cells} partitions in the window; medians of ${RUNS} (first) and ${2 * RUNS} (incremental) passes, (min–max)`);
const b = summary('baseline: bare listing', bare, `${bareObjects} objects, no reads`);
const f1 = summary('first pass (cold cache)', first, firstStats);
const inc = summary('incremental pass', incremental, incStats);
console.log(`ratios to the bare listing: first ${(f1.wall / b.wall).toFixed(2)}× wall, incremental ${(inc.wall / b.wall).toFixed(3)}× wall, ${(inc.cpu / b.cpu).toFixed(3)}× CPU`);
await gcs.close();
