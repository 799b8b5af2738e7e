/**
 * The replay report as one self-contained HTML page: the summary table and
 * inline SVG plots (no script, no external asset), drawn here so that the
 * page opens anywhere, offline, years later. Plots: per-function slowdown
 * CDF (paper Figure 9), scheduling latency CDFs per invocation and per
 * function (Figure 10), both on a log x-axis, and the cluster's sandbox
 * count over time. Several runs share each plot, one colour per run.
 */
import { distributions, summarizeLoaded, type LoadedRun, type RunSummary } from './report.js';
import { sortedCopy } from './stats.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];
const WIDTH = 760;
const HEIGHT = 400;
const M = { left: 64, right: 20, top: 36, bottom: 52 };
/** Points per CDF line: enough to look exact, few enough to keep the page small. */
const CDF_POINTS = 400;

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
}

export const SUMMARY_ROWS: Array<[keyof RunSummary, string]> = [
  ['invocations', 'invocations'],
  ['failures', 'failures'],
  ['cold_starts', 'cold starts (no sandbox on arrival)'],
  ['queued', 'queued (every sandbox busy on arrival)'],
  ['sched_p50_ms', 'scheduling latency p50 (ms)'],
  ['sched_p99_ms', 'scheduling latency p99 (ms)'],
  ['fn_sched_mean_p50_ms', 'per-function mean scheduling latency p50 (ms)'],
  ['fn_sched_mean_p99_ms', 'per-function mean scheduling latency p99 (ms)'],
  ['slowdown_p50', 'per-function slowdown p50'],
  ['slowdown_p99', 'per-function slowdown p99'],
  ['sandboxes_created', 'sandboxes created'],
];

export function renderReport(runs: readonly LoadedRun[]): string {
  const summaries = runs.map(summarizeLoaded);
  const dists = runs.map((r) => distributions(r.invocations));
  const color = (i: number) => COLORS[i % COLORS.length]!;
  const slowdown = cdfPlot(
    'Per-function slowdown (geometric mean per function)',
    'slowdown (latency / execution time)',
    runs.map((r, i) => ({
      label: r.meta.label,
      color: color(i),
      points: cdfPoints(dists[i]!.functionSlowdown),
    })),
  );
  const scheduling = cdfPlot(
    'Scheduling latency (latency - execution time)',
    'scheduling latency (ms)',
    runs.flatMap((r, i) => [
      {
        label: `${r.meta.label}: per invocation`,
        color: color(i),
        points: cdfPoints(dists[i]!.schedulingMs),
      },
      {
        label: `${r.meta.label}: per-function mean`,
        color: color(i),
        dashed: true,
        points: cdfPoints(dists[i]!.functionMeanSchedulingMs),
      },
    ]),
  );
  const timeline = linePlot(
    'Sandboxes over time',
    'time since the start of the replay (s)',
    'sandboxes',
    runs
      .filter((r) => r.timeline.length > 0)
      .map((r) => ({
        label: r.meta.label,
        color: color(runs.indexOf(r)),
        points: r.timeline.map((p): [number, number] => [p.tMs / 1000, p.sandboxes]),
      })),
  );
  const header = `<tr><th></th>${runs.map((r, i) => `<th style="color:${color(i)}">${esc(r.meta.label)}</th>`).join('')}</tr>`;
  const rows = [
    row(
      'execution',
      runs.map((r) => r.meta.execution),
    ),
    row(
      'trace window',
      runs.map(
        (r) =>
          `${r.meta.trace.functions} functions, ${r.meta.trace.minutes} min from minute ${r.meta.trace.firstMinute} (${r.meta.warmupMinutes} warm-up), iat ${r.meta.iat}, seed ${r.meta.seed}`,
      ),
    ),
    row(
      'late sends (> 10 ms)',
      runs.map((r) => r.meta.lateSends),
    ),
    ...SUMMARY_ROWS.map(([k, name]) =>
      row(
        name,
        summaries.map((s) => s[k]),
      ),
    ),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Baton trace replay report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin-bottom: 24px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 0 0 24px 0; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
svg .grid { stroke: #e5e5e5; }
svg .axis { stroke: #333; }
</style>
</head>
<body>
<h1>Trace replay report</h1>
<p>${runs.map((r) => `${esc(r.meta.label)}: ${esc(r.dir)}, started ${esc(r.meta.startedAt)}`).join('<br>')}</p>
<table id="summary">${header}${rows.join('')}</table>
<figure id="slowdown">${slowdown}</figure>
<figure id="scheduling">${scheduling}</figure>
<figure id="timeline">${timeline}</figure>
</body>
</html>
`;
}

function row(name: string, cells: ReadonlyArray<string | number | null>): string {
  return `<tr><td>${esc(name)}</td>${cells.map((c) => `<td>${c === null ? '-' : esc(String(c))}</td>`).join('')}</tr>`;
}

/**
 * Up to CDF_POINTS points (value, fraction at or below it) of the empirical
 * CDF, after a first point at (smallest value, 0) so that even one value
 * draws a line.
 */
export function cdfPoints(values: readonly number[]): Array<[number, number]> {
  const s = sortedCopy(values);
  const n = s.length;
  if (n === 0) return [];
  const k = Math.min(n, CDF_POINTS);
  const out: Array<[number, number]> = [[s[0]!, 0]];
  for (let j = 0; j < k; j++) {
    const idx = k === 1 ? n - 1 : Math.round((j * (n - 1)) / (k - 1));
    out.push([s[idx]!, (idx + 1) / n]);
  }
  return out;
}

function cdfPlot(title: string, xLabel: string, series: Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter((x) => x > 0);
  if (xs.length === 0) return emptyPlot(title);
  const lo = Math.floor(Math.log10(Math.min(...xs)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...xs))));
  const x = (v: number) =>
    M.left + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * plotW();
  const y = (f: number) => M.top + (1 - f) * plotH();
  const grid: string[] = [];
  for (let d = lo; d <= hi; d++) {
    grid.push(vLine(x(10 ** d), decadeLabel(d)));
    if (d < hi)
      for (let m = 2; m < 10; m++) grid.push(`<line class="grid" ${vCoords(x(m * 10 ** d))}/>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 1]) grid.push(hLine(y(f), f.toFixed(2)));
  return svg(title, xLabel, 'CDF', grid, series, x, y);
}

/** An SVG line plot of the series (x and y from 0), for reports and benchmarks' pages. */
export function linePlot(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return emptyPlot(`${title}: the target did not report sandbox counts`);
  const xMax = Math.max(1, ...pts.map((p) => p[0]));
  const yMax = niceCeil(Math.max(5, ...pts.map((p) => p[1])));
  const x = (v: number) => M.left + (v / xMax) * plotW();
  const y = (v: number) => M.top + (1 - v / yMax) * plotH();
  const grid: string[] = [];
  for (let i = 0; i <= 5; i++) {
    grid.push(vLine(x((xMax * i) / 5), String(Math.round((xMax * i) / 5))));
    grid.push(hLine(y((yMax * i) / 5), String(Math.round((yMax * i) / 5))));
  }
  return svg(title, xLabel, yLabel, grid, series, x, y);
}

function svg(
  title: string,
  xLabel: string,
  yLabel: string,
  grid: string[],
  series: Series[],
  x: (v: number) => number,
  y: (v: number) => number,
): string {
  const lines = series.map(
    (s) =>
      `<polyline class="series" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''} points="${s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"><title>${esc(s.label)}</title></polyline>`,
  );
  const legend = series.map((s, i) => {
    const ly = M.top + 12 + i * 18;
    const lx = M.left + 12;
    return `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/><text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${esc(title)}">
<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>
${grid.join('\n')}
<rect x="${M.left}" y="${M.top}" width="${plotW()}" height="${plotH()}" fill="none" class="axis"/>
${lines.join('\n')}
<rect x="${M.left + 4}" y="${M.top + 2}" width="${Math.min(plotW() - 8, 40 + 7 * Math.max(...series.map((s) => s.label.length)))}" height="${series.length * 18 + 6}" fill="#fff" fill-opacity="0.85"/>
${legend.join('\n')}
<text x="${M.left + plotW() / 2}" y="${HEIGHT - 12}" text-anchor="middle">${esc(xLabel)}</text>
<text transform="translate(16 ${M.top + plotH() / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
</svg>`;
}

function emptyPlot(title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="60" viewBox="0 0 ${WIDTH} 60"><text x="${WIDTH / 2}" y="30" text-anchor="middle">${esc(title)}: no data</text></svg>`;
}

const plotW = () => WIDTH - M.left - M.right;
const plotH = () => HEIGHT - M.top - M.bottom;
const vCoords = (px: number) =>
  `x1="${px.toFixed(1)}" y1="${M.top}" x2="${px.toFixed(1)}" y2="${M.top + plotH()}"`;

function vLine(px: number, label: string): string {
  return `<line class="grid" ${vCoords(px)}/><text x="${px.toFixed(1)}" y="${M.top + plotH() + 16}" text-anchor="middle">${label}</text>`;
}

function hLine(py: number, label: string): string {
  return `<line class="grid" x1="${M.left}" y1="${py.toFixed(1)}" x2="${M.left + plotW()}" y2="${py.toFixed(1)}"/><text x="${M.left - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${label}</text>`;
}

function decadeLabel(d: number): string {
  const v = 10 ** d;
  if (d >= 6) return `${v / 1e6}M`;
  if (d >= 3) return `${v / 1e3}k`;
  return d < 0 ? v.toFixed(-d) : String(v);
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
