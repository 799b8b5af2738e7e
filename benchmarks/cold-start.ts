/**
 * The paper's cold-start sweep (Dirigent §5.2.1, Figure 7): every invocation
 * is a cold start. Functions use the sweep preset (upper bound 1, 6 s stable
 * window) and each is invoked once per step, so each invocation finds no
 * sandbox; between steps the cluster cools down to zero sandboxes. Runs on
 * the simulated runtime (40 ms per sandbox creation) with many workers.
 * The steps are `baton loadgen rps --mode cold` (src/loadgen/rps.ts).
 *
 *   npm run bench:cold -- --rates 250,500,1000 --duration-s 10 --workers 100 --out results/cold.json
 */
import { RpsRunner, type RpsStep } from '../src/loadgen/rps.js';
import {
  benchFlags,
  intFlag,
  machine,
  printTable,
  startCluster,
  stepFlagSpecs,
  stepOptions,
  writeResult,
} from './lib/bench.js';

const DEFAULT_RATES = [250, 500, 1000];
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

const cluster = await startCluster([
  '--runtime',
  'simulated',
  '--workers',
  String(workers),
  '--sandbox-delay-ms',
  String(delayMs),
]);
let runner: RpsRunner | undefined;
try {
  const needed = Math.max(...rates.map((r) => r * durationS));
  process.stdout.write(
    `registering ${needed} sweep-preset functions on ${workers} simulated workers...\n`,
  );
  runner = await RpsRunner.prepare(cluster, 'cold', needed);
  const steps: RpsStep[] = [];
  for (const rate of rates) {
    process.stdout.write(`step ${rate}/s for ${durationS} s...\n`);
    steps.push(await runner.step(rate, durationS));
  }
  printTable(
    `Cold-start sweep: simulated runtime, ${delayMs} ms creation, ${workers} workers, ${durationS} s per step (latency in ms)`,
    ['rate/s', 'achieved/s', 'p50', 'p99', 'failures', 'cold starts', 'late sends'],
    steps.map((s) => [
      s.rate,
      s.achieved,
      s.p50_ms,
      s.p99_ms,
      s.failures,
      s.cold_starts,
      s.late_sends,
    ]),
  );
  for (const s of steps)
    if (s.failure_kinds.length > 0)
      process.stdout.write(`failures at ${s.rate}/s: ${s.failure_kinds.join('; ')}\n`);
  writeResult(v.out, {
    benchmark: 'cold-start',
    machine: machine(),
    workers,
    sandbox_delay_ms: delayMs,
    duration_s: durationS,
    steps,
  });
} finally {
  await runner?.close();
  await cluster.stop();
}
