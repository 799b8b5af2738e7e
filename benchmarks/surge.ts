/**
 * A surge (issue 16): the `empty` function at concurrency 1 is invoked once
 * a second until it has its sandbox, then at a fixed rate for the step, on a
 * fresh `baton up` with simulated workers (40 ms creations). Each second
 * the function's sandboxes (ready + being created) are read from the
 * control plane: the table shows how many the autoscaler made for the
 * surge beside its latency, so "created at the rate the backlog needs and
 * not more" is a number. Each step starts a fresh cluster.
 *
 *   npm run bench:surge -- --rates 2000 --duration-s 15 --out results/surge.json
 */
import { ControlPlaneClient } from '../src/cli/cp-client.js';
import { H2cClient } from '../src/loadgen/h2c-client.js';
import { runOpenLoop, type ShotResult } from '../src/loadgen/open-loop.js';
import { failureSample, summarizeStep } from '../src/loadgen/stats.js';
import { START_HEADER } from '../src/shared/http-headers.js';
import {
  BATON_FLAG,
  batonEntry,
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

const DEFAULT_RATES = [2000];
const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:surge -- [options]',
  'A jump from 1 to RATE requests/s at concurrency 1: the sandboxes made for it, each second, and its latency.',
  {
    ...stepFlagSpecs('requests', DEFAULT_RATES),
    ...BATON_FLAG,
    workers: {
      type: 'string',
      description: 'simulated workers',
      defaultText: '10',
      valueName: 'N',
    },
  },
);
const { rates, durationS } = stepOptions(v, DEFAULT_RATES);
const workers = intFlag(v.workers, 'workers', 10);
const { entry, revision: batonRevision } = batonEntry(v.baton);
const NAME = 'surge-empty';

async function surge(rate: number) {
  const cluster = await startCluster(
    ['--runtime', 'simulated', '--workers', String(workers)],
    entry,
  );
  const client = new H2cClient(cluster.proxy, 2);
  const cp = new ControlPlaneClient(cluster.registration);
  try {
    await cp.putFunction(NAME, { image: 'empty', concurrency: 1 });
    const send = async (): Promise<ShotResult & { waited: boolean }> => {
      const r = await client.request(NAME, { workload: 'empty' });
      return {
        status: r.status,
        ok: r.status === 200,
        waited: r.headers[START_HEADER] !== 'warm',
        ...(r.error === undefined ? {} : { error: r.error }),
      };
    };
    // Load of 1/s until the function has its one sandbox.
    const trickle = runOpenLoop({ rate: 1, durationMs: 3000, send });
    await waitForSandboxes(cluster.registration, NAME, 1);
    await trickle;
    const view = () => cp.getFunction(NAME);
    const createdBefore = (await view()).sandboxesCreated;
    const bySecond: number[] = [];
    const poll = setInterval(() => {
      void view().then(
        (f) => bySecond.push(f.sandboxes + f.creating),
        () => bySecond.push(-1),
      );
    }, 1000);
    const pids = await daemonPids(cluster.registration);
    let waited = 0;
    const { result, cpuUsPerUnit, stealPct } = await cpuPerUnit(
      pids,
      () =>
        runOpenLoop({
          rate,
          durationMs: durationS * 1000,
          send: async () => {
            const r = await send();
            if (r.waited) waited++;
            return r;
          },
        }),
      (r) => r.shots.filter((s) => s.ok).length,
    );
    clearInterval(poll);
    const end = await view();
    return {
      ...summarizeStep(rate, result.shots, durationS * 1000),
      failure_kinds: failureSample(result.shots),
      waited_for_sandbox: waited,
      sandboxes_by_second: bySecond,
      sandboxes_max: Math.max(end.sandboxes + end.creating, ...bySecond),
      sandboxes_at_end: end.sandboxes + end.creating,
      sandboxes_created: end.sandboxesCreated - createdBefore,
      cpu_us_per_request: cpuUsPerUnit,
      steal_pct: stealPct,
    };
  } finally {
    await client.close();
    await cluster.stop();
  }
}

const steps = [];
for (const rate of rates) {
  process.stdout.write(`step 1 -> ${rate}/s for ${durationS} s on a fresh cluster...\n`);
  steps.push(await surge(rate));
}
printTable(
  `A surge of 'empty' at concurrency 1: ${workers} simulated workers, ${durationS} s per step (latency in ms)`,
  [
    'rate/s',
    'achieved/s',
    'p50',
    'p99',
    'failures',
    'waited',
    'sandboxes max',
    'at end',
    'created',
    'DP CPU µs/req',
    'CP CPU µs/req',
    'steal %',
  ],
  steps.map((s) => [
    s.rate,
    s.achieved,
    s.p50_ms,
    s.p99_ms,
    s.failures,
    s.waited_for_sandbox,
    s.sandboxes_max,
    s.sandboxes_at_end,
    s.sandboxes_created,
    s.cpu_us_per_request['data-plane'] ?? null,
    s.cpu_us_per_request['control-plane'] ?? null,
    s.steal_pct,
  ]),
);
for (const s of steps) {
  process.stdout.write(
    `sandboxes each second at ${s.rate}/s: ${s.sandboxes_by_second.join(', ')}\n`,
  );
  if (s.failure_kinds.length > 0)
    process.stdout.write(`failures at ${s.rate}/s: ${s.failure_kinds.join('; ')}\n`);
}
writeResult(v.out, {
  benchmark: 'surge',
  machine: machine(),
  baton: batonRevision,
  workers,
  duration_s: durationS,
  steps,
});
