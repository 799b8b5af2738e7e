/**
 * The paper's cold-start sweep (Dirigent §5.2.1, Figure 7): every invocation
 * is a cold start. Functions use the sweep preset (upper bound 1, 6 s stable
 * window) and each is invoked once per step, so each invocation finds no
 * sandbox; between steps the cluster cools down to zero sandboxes. Runs on
 * the simulated runtime (40 ms per sandbox creation) with many workers.
 * The steps are `baton loadgen rps --mode cold` (src/loadgen/rps.ts). The
 * sweep starts once every worker has registered (the time that took is
 * reported: the paper's scalability experiment registers 5000), and each
 * step reports each daemon's CPU per cold start (the wait for zero
 * sandboxes before it left out) and the control plane's CPU at rest, with
 * its workers' heartbeats and nothing else to do.
 *
 *   npm run bench:cold -- --rates 250,500,1000 --duration-s 10 --workers 100 --out results/cold.json
 */
import { RpsRunner, type RpsStep } from '../src/loadgen/rps.js';
import { round } from '../src/loadgen/stats.js';
import { freePortBlock } from '../src/shared/port-probe.js';
import { DEFAULT_PORT_RANGE, parsePortRange } from '../src/worker/ports.js';
import { UP_OPTIONS } from '../src/cli/up-options.js';
import {
  answeredIn,
  benchFlags,
  cpuPerUnit,
  cpuSeconds,
  intFlag,
  machine,
  pidsByRole,
  printTable,
  startCluster,
  stepFlagSpecs,
  stepOptions,
  waitForWorkers,
  writeResult,
} from './lib/bench.js';

const DEFAULT_RATES = [250, 500, 1000];
/** How long every worker may take to register (5000 simulated ones took 6-9 s on 2 cores). */
const REGISTER_TIMEOUT_MS = 180_000;
/** How long the control plane's CPU is watched with nothing but heartbeats to serve. */
const AT_REST_MS = 5_000;
/** Where the workers' RPC ports are looked for: from `baton up`'s default first one up to its sandbox ports. */
const WORKER_RPC_FROM = Number(UP_OPTIONS['worker-rpc-port'].defaultText);
const WORKER_RPC_BELOW = parsePortRange(DEFAULT_PORT_RANGE).first;
const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:cold -- [options]',
  'Cold-start sweep on the simulated runtime.',
  {
    ...stepFlagSpecs('cold starts', DEFAULT_RATES),
    workers: {
      type: 'string',
      description: 'simulated workers',
      defaultText: '100',
      valueName: 'N',
    },
    'sandbox-delay-ms': {
      type: 'string',
      description: 'simulated creation time',
      defaultText: '40',
      valueName: 'MS',
    },
  },
);
const { rates, durationS } = stepOptions(v, DEFAULT_RATES);
const workers = intFlag(v.workers, 'workers', 100);
const delayMs = intFlag(v['sandbox-delay-ms'], 'sandbox-delay-ms', 40, 0);

// The workers' RPC ports: a free block below the sandbox ports (where
// `baton up` puts them by default) rather than the kernel's choice. 5000
// workers listening on port 0 took 15-22 s to register against 8.5-12 s
// with the block, and their listeners fill the ephemeral range, which two
// runs a minute apart could exhaust (docs/benchmarks.md).
const rpcBase = await freePortBlock('127.0.0.1', workers, WORKER_RPC_FROM, WORKER_RPC_BELOW);
if (rpcBase === undefined)
  process.stdout.write(
    `no ${workers} free ports in ${WORKER_RPC_FROM}-${WORKER_RPC_BELOW - 1}: workers listen on ports the kernel picks\n`,
  );
const startedAt = performance.now();
const cluster = await startCluster([
  '--runtime',
  'simulated',
  '--workers',
  String(workers),
  '--sandbox-delay-ms',
  String(delayMs),
  ...(rpcBase === undefined ? [] : ['--worker-rpc-port', String(rpcBase)]),
]);
let runner: RpsRunner | undefined;
try {
  const registeredS = await waitForWorkers(
    cluster.registration,
    workers,
    startedAt,
    REGISTER_TIMEOUT_MS,
  );
  process.stdout.write(`${workers} workers registered ${registeredS} s after start\n`);
  const pids = await pidsByRole(cluster.registration);
  const cp = pids.get('control-plane')!;
  const cpBefore = cpuSeconds(cp[0]!);
  await new Promise((r) => setTimeout(r, AT_REST_MS));
  const cpAtRest = round(((cpuSeconds(cp[0]!) - cpBefore) * 100_000) / AT_REST_MS, 1);
  process.stdout.write(`control plane at rest: ${cpAtRest} % of a core\n`);

  const needed = Math.max(...rates.map((r) => r * durationS));
  process.stdout.write(
    `registering ${needed} sweep-preset functions on ${workers} simulated workers...\n`,
  );
  runner = await RpsRunner.prepare(cluster, 'cold', needed);
  const steps: Array<
    RpsStep & { cpu_us_per_cold_start: Record<string, number>; steal_pct: number }
  > = [];
  for (const rate of rates) {
    process.stdout.write(`step ${rate}/s for ${durationS} s...\n`);
    await runner.settle(rate);
    const r = runner;
    const { result, cpuUsPerUnit, stealPct } = await cpuPerUnit(
      pids,
      () => r.measure(rate, durationS),
      answeredIn(durationS),
    );
    steps.push({ ...result, cpu_us_per_cold_start: cpuUsPerUnit, steal_pct: stealPct });
  }
  printTable(
    `Cold-start sweep: simulated runtime, ${delayMs} ms creation, ${workers} workers, ${durationS} s per step (latency in ms; CPU in µs per cold start)`,
    [
      'rate/s',
      'achieved/s',
      'p50',
      'p99',
      'failures',
      'cold starts',
      'late sends',
      'CPU cp',
      'CPU dp',
      'CPU workers',
      'steal %',
    ],
    steps.map((s) => [
      s.rate,
      s.achieved,
      s.p50_ms,
      s.p99_ms,
      s.failures,
      s.cold_starts,
      s.late_sends,
      s.cpu_us_per_cold_start['control-plane'] ?? null,
      s.cpu_us_per_cold_start['data-plane'] ?? null,
      s.cpu_us_per_cold_start.workers ?? null,
      s.steal_pct,
    ]),
  );
  for (const s of steps)
    if (s.failure_kinds.length > 0)
      process.stdout.write(`failures at ${s.rate}/s: ${s.failure_kinds.join('; ')}\n`);
  writeResult(v.out, {
    benchmark: 'cold-start',
    machine: machine(),
    workers,
    workers_registered_s: registeredS,
    control_plane_at_rest_percent: cpAtRest,
    sandbox_delay_ms: delayMs,
    duration_s: durationS,
    steps,
  });
} finally {
  await runner?.close();
  await cluster.stop();
}
