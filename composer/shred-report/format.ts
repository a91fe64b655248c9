/** The shred report as text lines (the CLI's default output). Counts only: no value, decrypted or not, is ever printed. */
import type { FieldFinding, ShredReport } from './report.ts';

export function formatShredReport(r: ShredReport): string[] {
  const lines: string[] = [];
  lines.push(`shred report for subject ${r.subjectHash}: ${r.verdict}`);
  lines.push(
    `looked at ${r.eventTypes.length} event type(s): ${r.closedPartitions} closed partition(s), ${r.indexesRead} subject index(es) read, ${r.unindexed.length} without an index, ${r.lateFilesRead} late file(s) read`,
  );
  for (const p of r.partitions) {
    lines.push(`${p.eventType} ${p.period}${p.source === 'late' ? ' (late files)' : ''}: ${p.records} record(s)`);
    for (const f of p.fields) lines.push(`  ${f.schemaPath} [${f.category}, context ${f.keyContext}]: ${fieldLine(f, p.source === 'part')}`);
  }
  for (const fp of r.falsePositives) lines.push(`false positive: ${fp.eventType} ${fp.period} (index hit, no record of this user: verified by reading it)`);
  for (const u of r.unindexed) lines.push(`not read (${u.reason}): ${u.eventType} ${u.period}`);
  for (const k of r.keys) lines.push(`key ${k.keyContext}/${k.category}: ${k.status}`);
  lines.push(`total: ${r.totals.values} encrypted value(s), ${r.totals.decrypts} decrypt, ${r.totals.undecryptable} do not`);
  return lines;
}

function fieldLine(f: FieldFinding, indexed: boolean): string {
  const why = Object.entries(f.undecryptable).map(([reason, n]) => `${n} ${reason}`);
  const index = indexed ? ` (index: ${f.indexed})` : '';
  return `${f.values} value(s), ${f.decrypts} decrypt${why.length > 0 ? `, ${why.join(', ')}` : ''}${index}`;
}
