/**
 * Server-rendered HTML of the status pages: the grid (types × periods,
 * coloured by state), a type page and a partition page. Everything that
 * comes from the registry, the buckets or the request is escaped; no script,
 * no external resource (CSS inline).
 */
import type { Priority } from '../../lib/registry/types.ts';
import type { DeadLetterCount } from './dead-letters.ts';
import type { TypeView } from './scanner.ts';
import { partitionStates, type PartitionState, type PartitionStatus } from './state.ts';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const stateColours: Record<PartitionState, string> = {
  open: '#cfe2ff',
  closing: '#fff3cd',
  overdue: '#f8a5a5',
  missing: '#dc3545',
  empty: '#f1f1f1',
  'closed-complete': '#75c687',
  'closed-deadline': '#f0ad4e',
};

const stateLabels: Record<PartitionState, string> = {
  open: 'open',
  closing: 'closing',
  overdue: 'overdue (past its close deadline)',
  missing: 'missing (accepted, nothing staged)',
  empty: 'empty (nothing accepted)',
  'closed-complete': 'closed complete',
  'closed-deadline': 'closed at deadline',
};

const css = `
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 8px}h2{font-size:15px;margin:16px 0 6px}
table.grid{border-collapse:collapse}table.grid td,table.grid th{border:1px solid #fff;padding:0}
table.grid th{font-weight:normal;font-size:11px;color:#555;padding:0 2px;white-space:nowrap}
table.grid th.type{text-align:left;padding-right:8px}
td.cell a{display:block;width:22px;height:18px;text-align:center;font-size:10px;color:#222;text-decoration:none;line-height:18px}
td.late a{box-shadow:inset 0 -4px 0 #8e44ad}td.loaded a{font-weight:bold}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border-radius:3px}
table.list{border-collapse:collapse}table.list td,table.list th{border:1px solid #ddd;padding:2px 6px;text-align:left}
form{margin:8px 0}.muted{color:#777}
${partitionStates.map((s) => `td.s-${s}{background:${stateColours[s]}}`).join('')}
`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${css}</style></head><body>${body}</body></html>`;
}

const partitionHref = (type: string, period: string): string => `/partitions/${encodeURIComponent(type)}/${encodeURIComponent(period)}`;
const typeHref = (type: string): string => `/types/${encodeURIComponent(type)}`;

function legend(): string {
  return `<p class="legend">${partitionStates.map((s) => `<span class="s-${s}" style="background:${stateColours[s]}">${escapeHtml(stateLabels[s])}</span>`).join('')}<span style="box-shadow:inset 0 -4px 0 #8e44ad">late events</span><span><b>B</b> loaded into BigQuery</span></p>`;
}

function cellTitle(p: PartitionStatus): string {
  const parts = [`${p.eventType} ${p.period}: ${stateLabels[p.state]}`, `accepted ${p.accepted}`];
  if (p.delivered !== null) parts.push(`delivered ${p.delivered}`);
  else parts.push(`staged ${p.staged}`);
  if (p.missing > 0) parts.push(`missing ${p.missing}`);
  if (p.late > 0) parts.push(`late ${p.late}`);
  if (p.loaded !== null) parts.push(p.loaded ? 'loaded' : 'not loaded');
  parts.push(p.slo.met ? `within the ${p.slo.hours} h SLO` : `SLO of ${p.slo.hours} h missed`);
  return parts.join(', ');
}

function cell(p: PartitionStatus): string {
  const classes = ['cell', `s-${p.state}`, ...(p.late > 0 ? ['late'] : []), ...(p.loaded === true ? ['loaded'] : [])];
  const mark = p.missing > 0 ? `-${p.missing}` : p.loaded === true ? 'B' : p.late > 0 ? `+${p.late}` : '';
  return (
    `<td class="${classes.join(' ')}" data-type="${escapeHtml(p.eventType)}" data-period="${escapeHtml(p.period)}" data-state="${p.state}"` +
    ` data-accepted="${p.accepted}" data-staged="${p.staged}" data-missing="${p.missing}" data-late="${p.late}" data-loaded="${p.loaded === null ? '' : String(p.loaded)}">` +
    `<a href="${escapeHtml(partitionHref(p.eventType, p.period))}" title="${escapeHtml(cellTitle(p))}">${escapeHtml(mark)}</a></td>`
  );
}

export interface GridFilter {
  owner: string | undefined;
  priority: Priority | undefined;
  hours: number;
  page: number;
}

export interface GridRow {
  type: TypeView;
  partitions: PartitionStatus[];
}

/** The grid page: one table of hourly types, one of daily types; periods oldest left. */
export function renderGrid(p: {
  at: string;
  filter: GridFilter;
  owners: string[];
  hourly: { columns: string[]; rows: GridRow[] };
  daily: { columns: string[]; rows: GridRow[] };
  totalTypes: number;
  pageSize: number;
}): string {
  const f = p.filter;
  const opt = (value: string, selected: boolean, label = value): string => `<option value="${escapeHtml(value)}"${selected ? ' selected' : ''}>${escapeHtml(label)}</option>`;
  const form =
    `<form method="get" action="/"><label>owner <select name="owner">${opt('', f.owner === undefined, 'all')}${p.owners.map((o) => opt(o, o === f.owner)).join('')}</select></label> ` +
    `<label>priority <select name="priority">${opt('', f.priority === undefined, 'all')}${(['high', 'normal', 'low'] as const).map((x) => opt(x, x === f.priority)).join('')}</select></label> ` +
    `<label>hours <input name="hours" type="number" min="1" max="744" value="${f.hours}" style="width:4em"></label> <button type="submit">show</button></form>`;
  const table = (id: string, columns: string[], rows: GridRow[], label: (c: string) => string): string => {
    if (rows.length === 0) return '';
    const head = `<tr><th class="type">type</th>${columns.map((c) => `<th title="${escapeHtml(c)}">${escapeHtml(label(c))}</th>`).join('')}</tr>`;
    const body = rows
      .map((r) => {
        const byPeriod = new Map(r.partitions.map((x) => [x.period, x]));
        return `<tr data-type="${escapeHtml(r.type.name)}"><th class="type"><a href="${escapeHtml(typeHref(r.type.name))}">${escapeHtml(r.type.name)}</a> <span class="muted">${escapeHtml(r.type.owner)} · ${r.type.priority}</span></th>${columns
          .map((c) => {
            const x = byPeriod.get(c);
            return x === undefined ? '<td></td>' : cell(x);
          })
          .join('')}</tr>`;
      })
      .join('');
    return `<table class="grid" id="${id}">${head}${body}</table>`;
  };
  const pages = Math.max(1, Math.ceil(p.totalTypes / p.pageSize));
  const link = (n: number): string => {
    const q = new URLSearchParams();
    if (f.owner !== undefined) q.set('owner', f.owner);
    if (f.priority !== undefined) q.set('priority', f.priority);
    q.set('hours', String(f.hours));
    q.set('page', String(n));
    return `<a href="/?${escapeHtml(q.toString())}">${n}</a>`;
  };
  const pager = pages > 1 ? `<p>page ${Array.from({ length: pages }, (_, i) => (i + 1 === f.page ? `<b>${i + 1}</b>` : link(i + 1))).join(' ')}</p>` : '';
  return page(
    'Partition status',
    `<h1>Partition status</h1><p class="muted">as of ${escapeHtml(p.at)} · ${p.totalTypes} types · <a href="/v1/partitions">JSON</a></p>${form}${legend()}` +
      `<h2>Hourly partitions</h2>${table('hourly', p.hourly.columns, p.hourly.rows, (c) => c.slice(11, 13))}` +
      (p.daily.rows.length > 0 ? `<h2>Daily partitions</h2>${table('daily', p.daily.columns, p.daily.rows, (c) => c.slice(5))}` : '') +
      pager,
  );
}

function deadLetterText(d: DeadLetterCount | undefined, hour?: string): string {
  if (d === undefined) return 'not counted yet';
  const n = hour === undefined ? d.total : (d.byHour.get(hour) ?? 0);
  return `${n}${d.capped ? '+' : ''} (counted ${d.countedAt})`;
}

/** One partition: its state, counts and links to the manifest, late counter and dead letters. */
export function renderPartition(p: PartitionStatus, type: TypeView, deadLetters: DeadLetterCount | undefined): string {
  const base = `/v1/partitions/${encodeURIComponent(p.eventType)}/${encodeURIComponent(p.period)}`;
  const dlHour = type.partitioning === 'hourly' ? p.period : undefined;
  const rows: [string, string][] = [
    ['state', `<span class="s-${p.state}" data-state="${p.state}" style="background:${stateColours[p.state]};padding:1px 6px">${escapeHtml(stateLabels[p.state])}</span>`],
    ['period', `${escapeHtml(p.start)} – ${escapeHtml(p.end)}`],
    ['accepted', String(p.accepted)],
    ['staged (not closed)', `${p.staged} records in ${p.stagedFiles} files`],
    ['delivered', p.delivered === null ? '—' : String(p.delivered)],
    ['missing', String(p.missing)],
    ['closed at', p.closedAt === null ? '—' : escapeHtml(p.closedAt)],
    ['SLO', `${p.slo.hours} h, due ${escapeHtml(p.slo.due)}: ${p.slo.met ? 'met' : 'missed'}${p.slo.closeLagSeconds !== null ? `, closed ${p.slo.closeLagSeconds} s after the period end` : ''}${p.slo.remainingSeconds !== null ? `, ${p.slo.remainingSeconds} s left` : ''}`],
    ['manifest', p.closedAt === null ? 'not closed' : `<a id="manifest" href="${escapeHtml(`${base}/manifest`)}">_SUCCESS</a>`],
    ['late events', `<a id="late" href="${escapeHtml(`${base}/late`)}">${p.late}</a>`],
    ['dead letters', `<a id="dead-letters" href="${escapeHtml(`/v1/dead-letters?type=${encodeURIComponent(p.eventType)}`)}">${escapeHtml(deadLetterText(deadLetters, dlHour))}</a>${dlHour === undefined ? ' (whole type)' : ' (this hour)'}`],
    ['BigQuery', p.loaded === null ? 'not stored in BigQuery' : p.loaded ? `loaded, ${p.loadedRows} rows` : 'not loaded yet'],
  ];
  return page(
    `${p.eventType} ${p.period}`,
    `<h1><a href="/">Partition status</a> › <a href="${escapeHtml(typeHref(p.eventType))}">${escapeHtml(p.eventType)}</a> › ${escapeHtml(p.period)}</h1>` +
      `<table class="list" id="partition">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('')}</table>`,
  );
}

/** Throughput of a type over the window, from its partitions. */
export function throughput(partitions: readonly PartitionStatus[], partitioning: 'hourly' | 'daily'): { perHour: number; peak: number; total: number } {
  const total = partitions.reduce((s, p) => s + p.accepted, 0);
  const hours = partitions.length * (partitioning === 'hourly' ? 1 : 24);
  const peak = partitions.reduce((m, p) => Math.max(m, p.accepted), 0);
  return { perHour: hours === 0 ? 0 : total / hours, peak, total };
}

/** A type: settings, schema versions, throughput, and its partitions newest first. */
export function renderType(type: TypeView, partitions: readonly PartitionStatus[], deadLetters: DeadLetterCount | undefined): string {
  const t = throughput(partitions, type.partitioning);
  const unit = type.partitioning === 'hourly' ? 'hour' : 'day';
  const settings: [string, string][] = [
    ['owner', type.owner],
    ['description', type.description],
    ['priority', `${type.priority} (SLO ${type.sloHours} h)`],
    ['storage', type.storage.join(', ')],
    ['partitioning', type.partitioning],
    ['status', type.status],
    ['dead letters', deadLetterText(deadLetters)],
  ];
  return page(
    type.name,
    `<h1><a href="/">Partition status</a> › ${escapeHtml(type.name)}</h1>` +
      `<table class="list" id="settings">${settings.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>` +
      `<h2>Schema versions</h2><table class="list" id="versions"><tr><th>version</th><th>fingerprint</th><th>registered</th></tr>${type.versions
        .map((v) => `<tr><td>${v.version}</td><td><code>${escapeHtml(v.fingerprint)}</code></td><td>${escapeHtml(v.createdAt)}</td></tr>`)
        .join('')}</table>` +
      `<h2>Throughput</h2><p id="throughput">${t.total} events accepted in the window, ${t.perHour.toFixed(1)} per hour on average, at most ${t.peak} in one ${unit}.</p>` +
      `<table class="list" id="periods"><tr><th>${unit}</th><th>state</th><th>accepted</th><th>delivered</th><th>late</th></tr>${[...partitions]
        .reverse()
        .map(
          (p) =>
            `<tr><td><a href="${escapeHtml(partitionHref(p.eventType, p.period))}">${escapeHtml(p.period)}</a></td><td class="s-${p.state}">${escapeHtml(stateLabels[p.state])}</td><td>${p.accepted}</td><td>${p.delivered ?? ''}</td><td>${p.late}</td></tr>`,
        )
        .join('')}</table>`,
  );
}
