/**
 * Warm invocations (Dirigent §5.2.2): the `empty` function with sandboxes
 * already running (minimum scale), invoked over h2c at a fixed rate per step,
 * through the data plane. A baseline step sends the same load straight to
 * one sandbox (HTTP/1.1 keep-alive, the data plane's own upstream protocol),
 * so the table shows what the data plane adds.
 *
 *   npm run bench:warm -- --rates 1000,2000,3000 --duration-s 10 --out results/warm.json
 */
import { Pool } from 'undici';
import { ControlPlaneClient } from '../src/cli/cp-client.js';
import { H2cClient } from '../src/loadgen/h2c-client.js';
import { runOpenLoop, type ShotResult } from '../src/loadgen/open-loop.js';
import { failureSample, summarizeStep, type RateStep } from '../src/loadgen/stats.js';
import {
  benchFlags,
  cpuPerUnit,
  daemonPids,
  intFlag,
  machine,
  printTable,
  startCluster,
  stepFlagSpecs,
  stepOptions,
  waitForSandboxes,
  writeResult,
} from './lib/bench.js';

const DEFAULT_RATES = [1000, 2000, 3000];
const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:warm -- [options]',
  'Warm invocations of the empty function through the data plane, with a direct-to-sandbox baseline.',
  {
    ...stepFlagSpecs('requests', DEFAULT_RATES),
    sandboxes: {
      type: 'string',
      description: 'warm sandboxes (minimum scale)',
      defaultText: '2',
      valueName: 'N',
    },
    concurrency: {
      type: 'string',
      description: 'requests one sandbox serves at once',
      defaultText: '64',
      valueName: 'N',
    },
  },
);
const { rates, durationS } = stepOptions(v, DEFAULT_RATES);
const sandboxes = intFlag(v.sandboxes, 'sandboxes', 2);
const concurrency = intFlag(v.concurrency, 'concurrency', 64);
const NAME = 'warm-empty';

const cluster = await startCluster(['--runtime', 'process', '--workers', '1']);
const client = new H2cClient(cluster.proxy, 2);
let direct: Pool | undefined;
try {
  await new ControlPlaneClient(cluster.registration).putFunction(NAME, {
    image: 'empty',
    minScale: sandboxes,
    concurrency,
  });
  const address = await waitForSandboxes(cluster.registration, NAME, sandboxes);

  const viaProxy = async (): Promise<ShotResult> => {
    const r = await client.request(NAME, { workload: 'empty' });
    return {
      status: r.status,
      ok: r.status === 200,
      ...(r.error === undefined ? {} : { error: r.error }),
    };
  };
  direct = new Pool(`http://${address}`, { connections: 16, pipelining: 1 });
  const pool = direct;
  const viaSandbox = async (): Promise<ShotResult> => {
    try {
      const res = await pool.request({
        path: '/',
        method: 'GET',
        headers: { host: NAME, workload: 'empty' },
      });
      await res.body.text();
      return { status: res.statusCode, ok: res.statusCode === 200 };
    } catch (err) {
      return { status: 0, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  };
  // CPU per answered request of each daemon, and of this client.
  const pids = new Map([...(await daemonPids(cluster.registration)), ['client', process.pid]]);
  const step = async (rate: number, send: () => Promise<ShotResult>) => {
    await runOpenLoop({ rate, durationMs: 1000, send }); // warm up connections and JIT
    const {
      result: run,
      cpuUsPerUnit,
      stealPct,
    } = await cpuPerUnit(
      pids,
      () => runOpenLoop({ rate, durationMs: durationS * 1000, send }),
      (r) => r.shots.filter((s) => s.ok).length,
    );
    return {
      ...summarizeStep(rate, run.shots, durationS * 1000),
      failure_kinds: failureSample(run.shots),
      cpu_us_per_request: cpuUsPerUnit,
      steal_pct: stealPct,
    };
  };

  const top = Math.max(...rates);
  process.stdout.write(`baseline: ${top}/s straight to the sandbox at ${address}...\n`);
  const baseline = await step(top, viaSandbox);
  const steps: Array<
    RateStep & {
      failure_kinds: string[];
      cpu_us_per_request: Record<string, number>;
      steal_pct: number;
    }
  > = [];
  for (const rate of rates) {
    process.stdout.write(`step ${rate}/s through the data plane for ${durationS} s...\n`);
    steps.push(await step(rate, viaProxy));
  }
  printTable(
    `Warm invocations of 'empty': ${sandboxes} process sandboxes, ${durationS} s per step (latency in ms)`,
    [
      'path',
      'rate/s',
      'achieved/s',
      'p50',
      'p99',
      'failures',
      'late sends',
      'DP CPU µs/req',
      'steal %',
    ],
    [
      [
        'direct to sandbox',
        baseline.rate,
        baseline.achieved,
        baseline.p50_ms,
        baseline.p99_ms,
        baseline.failures,
        baseline.late_sends,
        null,
        baseline.steal_pct,
      ],
      ...steps.map((s) => [
        'via data plane',
        s.rate,
        s.achieved,
        s.p50_ms,
        s.p99_ms,
        s.failures,
        s.late_sends,
        s.cpu_us_per_request['data-plane'] ?? null,
        s.steal_pct,
      ]),
    ],
  );
  for (const s of [baseline, ...steps])
    if (s.failure_kinds.length > 0)
      process.stdout.write(`failures at ${s.rate}/s: ${s.failure_kinds.join('; ')}\n`);
  writeResult(v.out, {
    benchmark: 'warm',
    machine: machine(),
    sandboxes,
    concurrency,
    duration_s: durationS,
    steps,
    baseline,
  });
} finally {
  await direct?.close();
  await client.close();
  await cluster.stop();
}
