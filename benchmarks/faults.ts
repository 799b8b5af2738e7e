/**
 * Faults under load: `baton up` with two process-runtime workers and the
 * Redis store, a steady stream of warm invocations of two functions and a
 * cold start every few hundred ms (each probe invokes a function that has no
 * sandbox), while the benchmark, one after the other, kills a sandbox, a
 * worker, the data plane, the control plane and Redis, and sends clients
 * that give up. Per fault: requests sent and failed in its window, failures
 * after it had recovered (there should be none), the time until a cold start
 * sent after the fault is served again, and the daemons that died without
 * being killed.
 *
 * With --replicas, the paper's §5.4 set-up on one machine: three
 * control-plane replicas (etcd store), two data planes behind HAProxy and
 * four workers; the faults are a sandbox, half the workers, a data plane
 * and the leading control plane, whose replacement is also measured by
 * registering and cold-starting a new function.
 *
 *   npm run build && npm run bench:faults -- --out results/faults.json
 *   npm run bench:faults -- --replicas --out results/failover.json --html results/failover.html
 */
import { writeFileSync } from 'node:fs';
import { connect as h2connect, constants as h2constants } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { runSchedule } from '../src/loadgen/open-loop.js';
import { round } from '../src/loadgen/stats.js';
import { linePlot, type Series } from '../src/loadgen/report-html.js';
import type { SupervisedDaemon } from '../src/shared/supervision.js';
import { pidsListeningOn, startRedis, waitForExit } from '../test/helpers/processes.js';
import {
  benchFlags,
  intFlag,
  machine,
  onInterrupt,
  printTable,
  startCluster,
  writeResult,
} from './lib/bench.js';

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:faults -- [options]',
  'Kill a sandbox, a worker, the data plane, the control plane and the store under load, and send clients that give up.',
  {
    rate: {
      type: 'string',
      description: 'warm invocations per second (spread over two functions)',
      defaultText: '60',
      valueName: 'N',
    },
    'probe-ms': {
      type: 'string',
      description: 'one cold start every this many ms',
      defaultText: '300',
      valueName: 'MS',
    },
    'settle-s': {
      type: 'string',
      description: 'steady load before each fault',
      defaultText: '5',
      valueName: 'S',
    },
    html: {
      type: 'string',
      description: 'write a page with the success rate over time, faults marked',
      valueName: 'FILE',
    },
    replicas: {
      type: 'boolean',
      description: 'three control-plane replicas, two data planes behind HAProxy, four workers',
    },
    only: {
      type: 'string',
      description: 'faults to inject, by the start of their names (e.g. sandbox,worker)',
      defaultText: 'all',
      valueName: 'LIST',
    },
  },
);
const only = typeof v.only === 'string' ? v.only.split(',').map((x) => x.trim()) : undefined;
const rate = intFlag(v.rate, 'rate', 60);
const probeMs = intFlag(v['probe-ms'], 'probe-ms', 300);
const settleS = intFlag(v['settle-s'], 'settle-s', 5);
/** A fault not recovered from in this long is reported as such. */
const RECOVERY_LIMIT_MS = 60_000;
const STORE_OUTAGE_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;
const COLD_FUNCTIONS = 600;
const ABANDONING_CLIENTS = 200;

interface Outcome {
  kind: 'warm' | 'cold';
  sentAt: number;
  doneAt: number;
  ok: boolean;
  what: string;
}

interface Fault {
  name: string;
  /** Daemons this fault kills (each is expected to restart once). */
  kills: string[];
  inject: () => Promise<void>;
}

const replicated = v.replicas === true;
const redis = replicated ? undefined : await startRedis();
const forgetRedis = onInterrupt(() => redis?.stop() ?? Promise.resolve());
const cluster = await startCluster(
  redis === undefined
    ? ['--workers', '4', '--control-planes', '3', '--data-planes', '2']
    : ['--workers', '2', '--store', 'redis', '--redis-url', redis.url],
);
/** Every control plane's HTTP API (replicas forward to the leader); asked in turn. */
const controlPlanes = await replicaUrls();
const agent = new Agent({ connections: 64 });
const outcomes: Outcome[] = [];
const stopLoad = new AbortController();
const t0 = performance.now();
const now = () => performance.now() - t0;

try {
  // ---- functions ---------------------------------------------------------
  const put = async (name: string, spec: object) => {
    const res = await request(`${controlPlanes[0]!}/v1/functions/${name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(spec),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`registering ${name}: ${res.statusCode} ${text}`);
  };
  await put('steady-hello', { image: 'hello', minScale: 2 });
  await put('steady-empty', { image: 'empty', minScale: 1, concurrency: 4 });
  await put('slow', { image: 'simulated-trace', concurrency: 50 });
  for (let i = 0; i < COLD_FUNCTIONS; i++)
    await put(`cold-${i}`, { image: 'empty', coldStartSweep: true });
  await waitFor('the steady functions to be ready', async () => {
    const fns = await Promise.all(['steady-hello', 'steady-empty'].map(functionInfo));
    return fns.every((f) => f.sandboxes >= f.spec.minScale);
  });

  // ---- load ----------------------------------------------------------------
  const invoke = async (kind: Outcome['kind'], host: string): Promise<void> => {
    const sentAt = now();
    let ok = false;
    let what: string;
    try {
      const res = await request(`${cluster.proxy}/`, {
        headers: { host },
        dispatcher: agent,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = await res.body.text();
      ok = res.statusCode === 200 && body.length > 0;
      what = ok ? '200' : `${res.statusCode} ${String(res.headers['x-baton-error'] ?? '')}`;
    } catch (err) {
      what = (err as { code?: string }).code ?? (err as Error).name;
    }
    outcomes.push({ kind, sentAt, doneAt: now(), ok, what });
  };
  const warm = runSchedule({
    count: rate * 900, // more than the run lasts; stopped by stopLoad
    atMs: (i) => (i * 1000) / rate,
    send: (i) =>
      invoke('warm', i % 2 === 0 ? 'steady-hello' : 'steady-empty').then(() => ({
        status: 0,
        ok: true,
      })),
    signal: stopLoad.signal,
  });
  let nextCold = 0;
  const cold = runSchedule({
    count: COLD_FUNCTIONS,
    atMs: (i) => i * probeMs,
    send: () => invoke('cold', `cold-${nextCold++}`).then(() => ({ status: 0, ok: true })),
    signal: stopLoad.signal,
  });

  // ---- faults ------------------------------------------------------------
  const killSandbox: Fault = {
    name: 'sandbox killed',
    kills: [],
    inject: async () => {
      const f = await functionInfo('steady-hello');
      const address = f.sandboxList.find((s) => s.state === 'ready')?.address ?? undefined;
      const [pid] = address === undefined ? [] : pidsListeningOn(portOf(address));
      if (pid === undefined) throw new Error('no sandbox process of steady-hello found');
      process.kill(pid, 'SIGKILL');
    },
  };
  const giveUp: Fault = {
    name: 'clients give up',
    kills: [],
    inject: () => abandonRequests(ABANDONING_CLIENTS),
  };
  const leaderKilled = { registerMs: [] as number[], registerAndColdMs: [] as number[] };
  const faults: Fault[] = replicated
    ? [
        killSandbox,
        {
          name: 'half the workers killed',
          kills: ['worker-1', 'worker-2'],
          inject: async () => {
            await Promise.all(['worker-1', 'worker-2'].map(killDaemon));
          },
        },
        {
          name: 'a data plane killed',
          kills: ['data-plane-1'],
          inject: () => killDaemon('data-plane-1'),
        },
        {
          name: 'the leader killed',
          kills: [],
          inject: async function (this: Fault) {
            const leader = await leaderName();
            this.kills.push(leader);
            const at = now();
            await killDaemon(leader);
            const { registered, served } = await registerAndColdStart(at);
            leaderKilled.registerMs.push(registered);
            leaderKilled.registerAndColdMs.push(served);
          },
        },
        giveUp,
      ]
    : [
        killSandbox,
        { name: 'worker killed', kills: ['worker-1'], inject: () => killDaemon('worker-1') },
        {
          name: 'data plane killed',
          kills: ['data-plane'],
          inject: () => killDaemon('data-plane'),
        },
        {
          name: 'control plane killed',
          kills: ['control-plane'],
          inject: () => killDaemon('control-plane'),
        },
        {
          name: `store killed (${STORE_OUTAGE_MS / 1000} s)`,
          kills: [],
          inject: async () => {
            await redis!.kill();
            await sleep(STORE_OUTAGE_MS);
            await redis!.restart();
          },
        },
        giveUp,
      ];

  const expected = new Map<string, number>();
  const rows: Array<Record<string, unknown>> = [];
  const chosen = faults.filter((f) => only === undefined || only.some((o) => f.name.startsWith(o)));
  for (const fault of chosen) {
    await sleep(settleS * 1000);
    process.stdout.write(`${fault.name}...\n`);
    const at = now();
    const coldServed = waitForColdStart(at);
    await fault.inject.call(fault);
    for (const d of fault.kills) expected.set(d, (expected.get(d) ?? 0) + 1);
    const coldAt = await coldServed;
    // The control plane hears of a lost sandbox or worker within milliseconds; a
    // check made before that would find the cluster whole.
    await sleep(Math.max(0, at + 1000 - now()));
    const wholeAt = await waitForWhole();
    // Recovered: cold starts are served, and every daemon, the store and the
    // steady functions' sandboxes are back. Failures after that count against it.
    const recovered = coldAt === undefined ? undefined : Math.max(coldAt, wholeAt);
    const unexpected = (await supervised())
      .filter((d) => d.restarts > (expected.get(d.name) ?? 0))
      .map((d) => `${d.name} (${d.restarts - (expected.get(d.name) ?? 0)})`);
    rows.push({
      fault: fault.name,
      at_s: round(at / 1000, 1),
      cold_after_ms: coldAt === undefined ? null : round(coldAt - at, 0),
      recovered_after_ms: recovered === undefined ? null : round(recovered - at, 0),
      unexpected_deaths: unexpected,
      start: at,
      recovered_at: recovered,
    });
  }
  await sleep(settleS * 1000);
  stopLoad.abort();
  await Promise.all([warm, cold]);

  // ---- report ------------------------------------------------------------
  const results = rows.map((r, i) => {
    const start = r.start as number;
    const end = i + 1 < rows.length ? (rows[i + 1]!.start as number) : now();
    const inWindow = outcomes.filter((o) => o.sentAt >= start && o.sentAt < end);
    const recoveredAt = r.recovered_at as number | undefined;
    const failed = inWindow.filter((o) => !o.ok);
    const failedAfter = failed.filter((o) => recoveredAt === undefined || o.sentAt > recoveredAt);
    return {
      fault: r.fault as string,
      at_s: r.at_s as number,
      requests: inWindow.length,
      failed: failed.length,
      failed_after_recovery: failedAfter.length,
      cold_starts_again_after_ms: r.cold_after_ms as number | null,
      recovered_after_ms: r.recovered_after_ms as number | null,
      unexpected_deaths: r.unexpected_deaths as string[],
      failure_kinds: [...new Set(failed.map((o) => o.what))].slice(0, 5),
      /** When each failed request was sent, ms after the fault. */
      failures: failed.map((o) => ({ sent_ms: round(o.sentAt - start, 0), what: o.what })),
    };
  });
  printTable(
    `Faults under load: ${rate} warm invocations/s and a cold start every ${probeMs} ms (${
      replicated
        ? 'three control-plane replicas, two data planes behind HAProxy, four process workers, etcd'
        : 'two process workers, Redis store'
    })`,
    [
      'fault',
      'at s',
      'requests',
      'failed',
      'failed after recovery',
      'cold starts again after ms',
      'recovered after ms',
      'daemons died unkilled',
    ],
    results.map((r) => [
      r.fault,
      r.at_s,
      r.requests,
      r.failed,
      r.failed_after_recovery,
      r.cold_starts_again_after_ms,
      r.recovered_after_ms,
      r.unexpected_deaths.length === 0 ? 'none' : r.unexpected_deaths.join(', '),
    ]),
  );
  for (const r of results)
    if (r.failure_kinds.length > 0)
      process.stdout.write(`${r.fault}: failures were ${r.failure_kinds.join('; ')}\n`);
  leaderKilled.registerAndColdMs.forEach((ms, i) =>
    process.stdout.write(
      `the leader killed: a new function registered ${round(leaderKilled.registerMs[i]!, 0)} ms after, and cold-started ${round(ms, 0)} ms after\n`,
    ),
  );
  if (typeof v.html === 'string') {
    writeFileSync(v.html, successPage(outcomes, results));
    process.stdout.write(`wrote ${v.html}\n`);
  }
  writeResult(v.out, {
    benchmark: 'faults',
    machine: machine(),
    date: new Date().toISOString(),
    rate,
    probe_ms: probeMs,
    replicas: replicated,
    faults: results,
    leader_killed_register_ms: leaderKilled.registerMs,
    leader_killed_register_and_cold_ms: leaderKilled.registerAndColdMs,
    timeline: timeline(outcomes),
  });
} finally {
  stopLoad.abort();
  await agent.close();
  await cluster.stop();
  forgetRedis();
  await redis?.stop();
}

// ---- helpers -------------------------------------------------------------

interface FunctionInfo {
  spec: { minScale: number };
  sandboxes: number;
  sandboxList: Array<{ address: string | null; state: string }>;
}

/** GET from the first control plane that answers (a replica may be down: it was killed). */
async function fromControlPlane(path: string): Promise<unknown> {
  let last: unknown;
  for (const cp of controlPlanes) {
    try {
      const res = await request(`${cp}${path}`, { signal: AbortSignal.timeout(2000) });
      if (res.statusCode === 200) return await res.body.json();
      last = new Error(`${cp}${path}: ${res.statusCode} ${await res.body.text()}`);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function functionInfo(name: string): Promise<FunctionInfo> {
  return (await fromControlPlane(`/v1/functions/${name}`)) as FunctionInfo;
}

async function supervised(): Promise<SupervisedDaemon[]> {
  const s = (await fromControlPlane('/v1/status')) as { supervised?: SupervisedDaemon[] };
  return s.supervised ?? [];
}

interface ReplicaInfo {
  id: string;
  registration: string;
  role: string;
}

async function replicaUrls(): Promise<string[]> {
  const res = await request(`${cluster.registration}/v1/status`);
  const s = (await res.body.json()) as { controlPlanes?: ReplicaInfo[] };
  return s.controlPlanes?.map((r) => r.registration) ?? [cluster.registration];
}

async function leaderName(): Promise<string> {
  const s = (await fromControlPlane('/v1/status')) as { controlPlanes?: ReplicaInfo[] };
  const leader = s.controlPlanes?.find((r) => r.role === 'leader');
  if (leader === undefined) throw new Error('no control plane leads');
  return leader.id;
}

/** ms from `at` until a new function was registered through any replica, and until it answered its first invocation. */
async function registerAndColdStart(at: number): Promise<{ registered: number; served: number }> {
  const name = `after-failover-${Math.round(at)}`;
  const end = at + RECOVERY_LIMIT_MS;
  let registered = false;
  let registeredMs = Number.NaN;
  while (now() < end) {
    for (const cp of controlPlanes) {
      try {
        if (!registered) {
          const res = await request(`${cp}/v1/functions/${name}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: 'empty', coldStartSweep: true }),
            signal: AbortSignal.timeout(2000),
          });
          await res.body.text();
          registered = res.statusCode < 300;
          if (!registered) continue;
          registeredMs = now() - at;
        }
        const res = await request(`${cluster.proxy}/`, {
          headers: { host: name },
          dispatcher: agent,
          signal: AbortSignal.timeout(2000),
        });
        await res.body.text();
        if (res.statusCode === 200) return { registered: registeredMs, served: now() - at };
      } catch {
        // the next replica, or the next round
      }
    }
    await sleep(5);
  }
  return { registered: registeredMs, served: Number.NaN };
}

async function killDaemon(name: string): Promise<void> {
  const d = (await supervised()).find((x) => x.name === name);
  if (d?.pid === null || d === undefined) throw new Error(`${name} is not running`);
  process.kill(d.pid, 'SIGKILL');
  await waitForExit(d.pid, 5000);
}

/** Clients that send a request to a slow function and leave before, during or after its answer. */
async function abandonRequests(n: number): Promise<void> {
  const session = h2connect(cluster.proxy);
  session.on('error', () => undefined);
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const after = 10 + ((i * 37) % 300);
      const headers = { host: 'slow', requested_cpu: String(50 + ((i * 53) % 250)) };
      if (i % 2 === 0) {
        await request(`${cluster.proxy}/`, {
          headers,
          dispatcher: agent,
          signal: AbortSignal.timeout(after),
        }).then(
          (res) => res.body.text(),
          () => undefined,
        );
        return;
      }
      const stream = session.request({ ':path': '/', ':authority': 'slow', ...headers });
      stream.on('error', () => undefined);
      stream.on('data', () => undefined);
      stream.end();
      await sleep(after);
      stream.close(h2constants.NGHTTP2_CANCEL);
    }),
  );
  session.destroy();
}

/**
 * When (ms since t0) every daemon runs again, the control plane's store
 * answers, and the steady functions have their minimum of sandboxes.
 */
async function waitForWhole(): Promise<number> {
  await waitFor('the cluster to be whole again', async () => {
    const daemons = await supervised();
    if (daemons.length === 0 || daemons.some((d) => d.state !== 'running')) return false;
    for (const cp of controlPlanes) {
      const health = await request(`${cp}/health`);
      await health.body.text();
      if (health.statusCode !== 200) return false;
    }
    const fns = await Promise.all(['steady-hello', 'steady-empty'].map(functionInfo));
    return fns.every((f) => f.sandboxes >= f.spec.minScale);
  });
  return now();
}

/** When the first cold start sent after `since` was served (ms since t0), or undefined. */
async function waitForColdStart(since: number): Promise<number | undefined> {
  const end = since + RECOVERY_LIMIT_MS;
  while (now() < end) {
    const served = outcomes.find((o) => o.kind === 'cold' && o.sentAt >= since && o.ok);
    if (served !== undefined) return served.doneAt;
    await sleep(50);
  }
  return undefined;
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + RECOVERY_LIMIT_MS;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function portOf(address: string): number {
  return Number(address.split(':').at(-1));
}

/** Requests sent and served per second of the run, for a plot of success over time. */
function timeline(all: Outcome[]): Array<{ s: number; sent: number; ok: number }> {
  const buckets = new Map<number, { sent: number; ok: number }>();
  for (const o of all) {
    const s = Math.floor(o.sentAt / 1000);
    const b = buckets.get(s) ?? { sent: 0, ok: 0 };
    b.sent++;
    if (o.ok) b.ok++;
    buckets.set(s, b);
  }
  return [...buckets].sort(([a], [b]) => a - b).map(([s, b]) => ({ s, ...b }));
}

/**
 * A page like the paper's failure plots: the share of requests sent in
 * each quarter second that succeeded, with each fault as a dashed line.
 */
function successPage(all: Outcome[], faults: Array<{ fault: string; at_s: number }>): string {
  const bucketMs = 250;
  const buckets = new Map<number, { sent: number; ok: number }>();
  for (const o of all) {
    const b = Math.floor(o.sentAt / bucketMs);
    const c = buckets.get(b) ?? { sent: 0, ok: 0 };
    c.sent++;
    if (o.ok) c.ok++;
    buckets.set(b, c);
  }
  const points = [...buckets]
    .sort(([a], [b]) => a - b)
    .map(([b, c]): [number, number] => [(b * bucketMs) / 1000, (100 * c.ok) / c.sent]);
  const colors = ['#d62728', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
  const series: Series[] = [
    { label: 'requests that succeeded, %', color: '#1f77b4', points },
    ...faults.map((f, i) => ({
      label: f.fault,
      color: colors[i % colors.length]!,
      dashed: true,
      points: [
        [f.at_s, 0],
        [f.at_s, 100],
      ] as Array<[number, number]>,
    })),
  ];
  const title = `Faults under load (${replicated ? 'replicas' : 'one control plane and data plane'})`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:sans-serif} .grid{stroke:#ddd} .axis{stroke:#333}</style></head>
<body><h1>${title}</h1><p>Each point: the requests sent in a quarter second, and how many of them succeeded.</p>
${linePlot(title, 'seconds since the start', 'succeeded, %', series)}
</body></html>
`;
}
