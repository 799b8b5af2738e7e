/**
 * The replay report as one self-contained HTML page: the summary table and
 * inline SVG plots (no script, no external asset), drawn here so that the
 * page opens anywhere, offline, years later. Plots: per-function slowdown
 * CDF (paper Figure 9), scheduling latency CDFs per invocation and per
 * function (Figure 10), both on a log x-axis, and the cluster's sandbox
 * count over time. Several runs share each plot, one colour per run, the
 * legend under the plot; hovering a point of a line shows its values (SVG
 * titles, no script). With `reference`, the paper's published Dirigent
 * quantiles for the same experiment are marked (the paper gives points,
 * not whole curves). Runs that replay different windows are flagged.
 */
import { distributions, summarizeLoaded, type LoadedRun, type RunSummary } from './report.js';
import { sortedCopy } from './stats.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];
const WIDTH = 1000;
const HEIGHT = 420;
const M = { left: 64, right: 24, top: 36, bottom: 52 };
/** Height of one legend row under a plot. */
const LEGEND_ROW = 20;
/** Points per line that show their values on hover. */
const HOVER_POINTS = 24;
/** Points per CDF line: enough to look exact, few enough to keep the page small. */
const CDF_POINTS = 400;

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
  /** Drawn as marked points, not a line (a published quantile). */
  markers?: boolean;
  /** Units of x and y in hover text. */
  units?: [string, string];
}

/**
 * The paper's Dirigent results for the Azure 500-function trace (section
 * 5.3): median per-function slowdown 1.38 (Figure 9); per-invocation
 * scheduling latency p50 1.74 ms and p99 1.13 s (Figure 10).
 */
export const DIRIGENT_PAPER = {
  label: 'Dirigent (paper, Azure 500 functions)',
  slowdown: [[1.38, 0.5]] as Array<[number, number]>,
  schedulingMs: [
    [1.74, 0.5],
    [1130, 0.99],
  ] as Array<[number, number]>,
};
const REFERENCE_COLOR = '#555';

export interface ReportOptions {
  /** Mark the paper's Dirigent quantiles. */
  reference?: boolean;
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

export function renderReport(runs: readonly LoadedRun[], options: ReportOptions = {}): string {
  const summaries = runs.map(summarizeLoaded);
  const reference = (points: Array<[number, number]>, units: [string, string]): Series[] =>
    options.reference === true
      ? [{ label: DIRIGENT_PAPER.label, color: REFERENCE_COLOR, markers: true, points, units }]
      : [];
  const dists = runs.map((r) => distributions(r.invocations));
  const color = (i: number) => COLORS[i % COLORS.length]!;
  const slowdown = cdfPlot(
    'Per-function slowdown (geometric mean per function)',
    'slowdown (latency / execution time)',
    [
      ...runs.map((r, i) => ({
        label: r.meta.label,
        color: color(i),
        points: cdfPoints(dists[i]!.functionSlowdown),
        units: ['x', ''] as [string, string],
      })),
      ...reference(DIRIGENT_PAPER.slowdown, ['x', '']),
    ],
  );
  const scheduling = cdfPlot(
    'Scheduling latency (latency - execution time)',
    'scheduling latency (ms)',
    [
      ...runs.flatMap((r, i) => [
        {
          label: `${r.meta.label}: per invocation`,
          color: color(i),
          points: cdfPoints(dists[i]!.schedulingMs),
          units: [' ms', ''] as [string, string],
        },
        {
          label: `${r.meta.label}: per-function mean`,
          color: color(i),
          dashed: true,
          points: cdfPoints(dists[i]!.functionMeanSchedulingMs),
          units: [' ms', ''] as [string, string],
        },
      ]),
      ...reference(DIRIGENT_PAPER.schedulingMs, [' ms', '']),
    ],
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
        units: [' s', ' sandboxes'] as [string, string],
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
svg { width: 100%; height: auto; max-width: 1400px; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
svg circle.hover { fill-opacity: 0; }
svg circle.hover:hover { fill-opacity: 1; }
p.warning { background: #fff4e5; border-left: 4px solid #ff7f0e; padding: 8px 12px; }
svg .grid { stroke: #e5e5e5; }
svg .axis { stroke: #333; }
</style>
</head>
<body>
<h1>Trace replay report</h1>
<p>${runs.map((r) => `${esc(r.meta.label)}: ${esc(r.dir)}, started ${esc(r.meta.startedAt)}`).join('<br>')}</p>
${lengthWarning(runs)}
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
  const xTicks = niceTicks(Math.max(1, ...pts.map((p) => p[0])));
  const yTicks = niceTicks(Math.max(5, ...pts.map((p) => p[1])));
  const xMax = xTicks.at(-1)!;
  const yMax = yTicks.at(-1)!;
  const x = (v: number) => M.left + (v / xMax) * plotW();
  const y = (v: number) => M.top + (1 - v / yMax) * plotH();
  const grid: string[] = [];
  for (const t of xTicks) grid.push(vLine(x(t), tickLabel(t)));
  for (const t of yTicks) grid.push(hLine(y(t), tickLabel(t)));
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
  const dash = (s: Series) => (s.dashed === true ? ' stroke-dasharray="6 4"' : '');
  const lines = series.map((s) =>
    s.markers === true
      ? s.points
          .map(
            ([a, b]) =>
              `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="5" fill="${s.color}" stroke="#fff"><title>${esc(`${s.label}: ${hoverText(s, a, b)}`)}</title></circle>`,
          )
          .join('')
      : `<polyline class="series" fill="none" stroke="${s.color}" stroke-width="2"${dash(s)} points="${s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"><title>${esc(s.label)}</title></polyline>${hoverPoints(s, x, y)}`,
  );
  // The legend goes under the plot, two entries a row, never over the lines.
  const columns = 2;
  const legendTop = HEIGHT + 4;
  const legend = series.map((s, i) => {
    const ly = legendTop + Math.floor(i / columns) * LEGEND_ROW + 10;
    const lx = M.left + (i % columns) * ((WIDTH - M.left - M.right) / columns);
    const mark =
      s.markers === true
        ? `<circle cx="${lx + 12}" cy="${ly}" r="5" fill="${s.color}"/>`
        : `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash(s)}/>`;
    return `${mark}<text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`;
  });
  const height = HEIGHT + 8 + Math.ceil(series.length / columns) * LEGEND_ROW;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${esc(title)}">
<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>
${grid.join('\n')}
<rect x="${M.left}" y="${M.top}" width="${plotW()}" height="${plotH()}" fill="none" class="axis"/>
${lines.join('\n')}
<text x="${M.left + plotW() / 2}" y="${HEIGHT - 12}" text-anchor="middle">${esc(xLabel)}</text>
<text transform="translate(16 ${M.top + plotH() / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
${legend.join('\n')}
</svg>`;
}

/** Up to HOVER_POINTS points of a line that show their values on hover. */
function hoverPoints(s: Series, x: (v: number) => number, y: (v: number) => number): string {
  const n = s.points.length;
  if (n === 0) return '';
  const step = Math.max(1, Math.floor(n / HOVER_POINTS));
  let out = '';
  for (let i = 0; i < n; i += step) {
    const [a, b] = s.points[i]!;
    out += `<circle class="hover" cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="4" fill="${s.color}"><title>${esc(`${s.label}: ${hoverText(s, a, b)}`)}</title></circle>`;
  }
  return out;
}

function hoverText(s: Series, a: number, b: number): string {
  const [xu, yu] = s.units ?? ['', ''];
  const round = (v: number) =>
    Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString();
  // A CDF's y is a fraction: say it as a percentile.
  return yu === '' && b <= 1
    ? `p${round(b * 100)} = ${round(a)}${xu}`
    : `${round(a)}${xu}, ${round(b)}${yu}`;
}

/** Flags runs that replayed different windows (their CDFs describe different workloads). */
function lengthWarning(runs: readonly LoadedRun[]): string {
  if (runs.length < 2) return '';
  const window = (r: LoadedRun) =>
    `${r.meta.trace.minutes} min of ${r.meta.trace.functions} functions`;
  if (new Set(runs.map(window)).size === 1) return '';
  return `<p class="warning" id="length-warning">These runs replayed different windows (${runs.map((r) => `${esc(r.meta.label)}: ${esc(window(r))}`).join('; ')}): their curves describe different workloads.</p>`;
}

/** Ticks from 0 at a round step (1, 2 or 5 x 10^k), the last at or above `max`, about five of them. */
export function niceTicks(max: number): number[] {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const ticks: number[] = [];
  for (let t = 0; t < max + step - 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function tickLabel(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)));
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

function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
