/**
 * The live dashboard at `/ui`: one self-contained page (no build step, no
 * external assets) that reads the JSON API every second (`/v1/status`,
 * `/v1/functions`) and shows functions with their request rate, mean
 * latency, cold-start share, errors and sandboxes; workers with capacity
 * and use; data planes; and the sandbox failures seen while it is open.
 * Rates are differences of the data planes' counts between two readings.
 * Names are written with textContent, never as HTML. When the API asks for
 * a token (beyond loopback), the page asks for it once and keeps it for
 * the tab's session.
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #667; --line: #d6dae0; --bg: #fff; --card: #f6f8fa; --ok: #1a7f37; --bad: #cf222e; --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8b949e; --line: #30363d; --bg: #0d1117; --card: #161b22; --ok: #3fb950; --bad: #f85149; --accent: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 1.5rem; padding: 0.9rem 1.5rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15rem; margin: 0; }
main { padding: 1rem 1.5rem 2rem; display: grid; gap: 1.5rem; }
section h2 { font-size: 0.95rem; margin: 0 0 0.4rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; background: var(--card); }
td.num, th.num { text-align: right; }
.stat { display: inline-flex; flex-direction: column; }
.stat b { font-size: 1.25rem; }
.stat span { color: var(--muted); font-size: 0.8rem; }
.ok { color: var(--ok); } .bad { color: var(--bad); }
.empty { color: var(--muted); font-style: italic; }
#error { color: var(--bad); }
#spark { stroke: var(--accent); fill: none; stroke-width: 1.5; }
form#login { display: none; gap: 0.5rem; padding: 1rem 1.5rem; }
`;

const SCRIPT = `
'use strict';
const POLL_MS = 1000;
const HISTORY = 120;
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('baton-token');
let previous;
const totalRate = [];
const failures = [];
const seenFailures = new Set();

async function api(path) {
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  const res = await fetch(path, { headers, cache: 'no-store' });
  if (res.status === 401) { $('login').style.display = 'flex'; throw new Error('this API needs its token'); }
  if (!res.ok) throw new Error(path + ': ' + res.status + ' ' + (await res.text()).slice(0, 200));
  return res.json();
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbodyId, rows, columns, emptyText) {
  const body = $(tbodyId);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(tr, emptyText, 'empty');
    td.colSpan = columns;
    body.appendChild(tr);
    return;
  }
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const [text, cls] of r) cell(tr, text, cls);
    body.appendChild(tr);
  }
}

const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const pct = (part, whole) => (whole > 0 ? ((100 * part) / whole).toFixed(0) + ' %' : '–');

function rates(fn, now) {
  const before = previous?.functions.get(fn.spec.name);
  const dt = previous === undefined ? 0 : (now - previous.at) / 1000;
  if (before === undefined || dt <= 0) return { rps: NaN, meanMs: NaN, cold: NaN, errs: NaN, n: 0 };
  const d = (k) => Math.max(0, fn.traffic[k] - before[k]);
  const n = d('invocations');
  return { rps: n / dt, meanMs: n > 0 ? d('durationMs') / n : NaN, cold: n > 0 ? d('coldStarts') / n : NaN, errs: d('failures') / dt, n };
}

function drawSpark() {
  const max = Math.max(1, ...totalRate);
  const pts = totalRate.map((v, i) => (i * 200) / (HISTORY - 1) + ',' + (28 - (26 * v) / max).toFixed(1));
  $('spark').setAttribute('points', pts.join(' '));
  $('spark-max').textContent = fmt(max, 0);
}

async function refresh() {
  const now = Date.now();
  const [status, list] = await Promise.all([api('/v1/status'), api('/v1/functions')]);
  const functions = list.functions.sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  let clusterRps = 0;
  const fnRows = functions.map((f) => {
    const r = rates(f, now);
    if (Number.isFinite(r.rps)) clusterRps += r.rps;
    if (f.lastFailure) {
      const key = f.spec.name + '|' + f.lastFailure.code + '|' + f.lastFailure.message;
      if (!seenFailures.has(key)) {
        seenFailures.add(key);
        failures.unshift({ at: new Date(), fn: f.spec.name, ...f.lastFailure });
        failures.splice(50);
      }
    }
    return [
      [f.spec.name], [f.spec.image],
      [fmt(r.rps), 'num rate'], [fmt(r.meanMs, 2), 'num'], [Number.isFinite(r.cold) ? fmt(100 * r.cold, 0) + ' %' : '–', 'num'],
      [fmt(r.errs), r.errs > 0 ? 'num bad' : 'num'],
      [String(f.traffic.invocations), 'num total'],
      [f.sandboxes + (f.creating > 0 ? ' (+' + f.creating + ')' : ''), 'num'],
      [String(f.inflight - f.queued), 'num'], [String(f.queued), 'num'],
    ];
  });
  fill('functions', fnRows, 10, 'no functions yet: baton deploy hello --image hello');
  fill('workers', status.workers.map((w) => [
    [w.id], [w.runtime], [String(w.sandboxes), 'num'],
    [w.allocated.cpuMilli + ' / ' + w.capacity.cpuMilli, 'num'], [pct(w.allocated.cpuMilli, w.capacity.cpuMilli), 'num'],
    [w.allocated.memoryMib + ' / ' + w.capacity.memoryMib, 'num'],
    [fmt(w.cpuPercent, 0) + ' %', 'num'], [fmt(w.memoryPercent, 0) + ' %', 'num'],
    [(w.lastHeartbeatMsAgo / 1000).toFixed(1) + ' s', 'num'], [w.isolation ?? ''],
  ]), 10, 'no workers registered');
  fill('dataplanes', status.dataPlanes.map((d) => [[d.id], [d.proxy], [(d.lastHeartbeatMsAgo / 1000).toFixed(1) + ' s', 'num']]), 3, 'no data planes registered');
  fill('failures', failures.map((e) => [[e.at.toLocaleTimeString()], [e.fn], [e.code], [e.message]]), 4, 'none seen since this page opened');
  $('uptime').textContent = status.uptimeS + ' s';
  $('nfunctions').textContent = String(status.functions);
  $('nsandboxes').textContent = status.sandboxes.ready + (status.sandboxes.creating > 0 ? ' (+' + status.sandboxes.creating + ')' : '');
  $('rps').textContent = previous === undefined ? '–' : fmt(clusterRps);
  const store = $('store');
  store.textContent = status.store.ok ? status.store.kind + ' ok' : status.store.kind + ' DOWN';
  store.className = status.store.ok ? 'ok' : 'bad';
  const leader = status.controlPlanes?.find((c) => c.role === 'leader');
  $('leader').textContent = leader ? leader.id : 'single';
  if (previous !== undefined) { totalRate.push(clusterRps); totalRate.splice(0, Math.max(0, totalRate.length - HISTORY)); drawSpark(); }
  previous = { at: now, functions: new Map(functions.map((f) => [f.spec.name, f.traffic])) };
  $('updated').textContent = new Date(now).toLocaleTimeString();
  $('error').textContent = '';
}

async function loop() {
  try { await refresh(); } catch (err) { $('error').textContent = String(err.message ?? err); }
  setTimeout(loop, POLL_MS);
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('baton-token', token);
  $('login').style.display = 'none';
});
loop();
`;

const BODY = `
<header>
  <h1>Baton</h1>
  <span class="stat"><b id="rps">–</b><span>requests / s</span></span>
  <svg width="200" height="30" aria-label="requests per second, last two minutes"><polyline id="spark" points=""/></svg>
  <span class="stat"><b id="spark-max">–</b><span>peak req/s, last 2 minutes</span></span>
  <span class="stat"><b id="nfunctions">–</b><span>functions</span></span>
  <span class="stat"><b id="nsandboxes">–</b><span>sandboxes ready</span></span>
  <span class="stat"><b id="store">–</b><span>store</span></span>
  <span class="stat"><b id="leader">–</b><span>leader</span></span>
  <span class="stat"><b id="uptime">–</b><span>control plane up</span></span>
  <span class="stat"><b id="updated">–</b><span>updated</span></span>
  <span id="error" role="alert"></span>
</header>
<form id="login"><label for="token">API token</label><input id="token" type="password" autocomplete="off"><button>Use</button></form>
<main>
  <section><h2>Functions</h2><table>
    <thead><tr><th>name</th><th>image</th><th class="num">req/s</th><th class="num">mean ms</th><th class="num">cold</th><th class="num">errors/s</th><th class="num">invocations</th><th class="num">sandboxes</th><th class="num">running</th><th class="num">queued</th></tr></thead>
    <tbody id="functions"></tbody></table></section>
  <section><h2>Workers</h2><table>
    <thead><tr><th>id</th><th>runtime</th><th class="num">sandboxes</th><th class="num">mCPU placed / capacity</th><th class="num">placed</th><th class="num">MiB placed / capacity</th><th class="num">host CPU</th><th class="num">host memory</th><th class="num">heartbeat</th><th>isolation</th></tr></thead>
    <tbody id="workers"></tbody></table></section>
  <section><h2>Data planes</h2><table>
    <thead><tr><th>id</th><th>proxy</th><th class="num">heartbeat</th></tr></thead>
    <tbody id="dataplanes"></tbody></table></section>
  <section><h2>Recent sandbox failures</h2><table>
    <thead><tr><th>seen</th><th>function</th><th>code</th><th>message</th></tr></thead>
    <tbody id="failures"></tbody></table></section>
</main>
`;

let page: string | undefined;

/** The dashboard's HTML (built once). */
export function dashboardPage(): string {
  page ??= `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baton dashboard</title><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>
`;
  return page;
}
