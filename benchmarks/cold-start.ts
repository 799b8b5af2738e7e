/**
 * The paper's cold-start sweep (Dirigent §5.2.1, Figure 7): every invocation
 * is a cold start. Functions use the sweep preset (upper bound 1, 6 s stable
 * window) and each is invoked once per step, so each invocation finds no
 * sandbox; between steps the cluster cools down to zero sandboxes. Runs on
 * the simulated runtime (40 ms per sandbox creation) with many workers.
 *
 *   npm run bench:cold -- --rates 250,500,1000 --duration-s 10 --workers 100 --out results/cold.json
 */
import { H2cClient } from '../src/loadgen/h2c-client.js';
import { runOpenLoop } from '../src/loadgen/open-loop.js';
import {
  benchFlags,
  dirigentForm,
  failureSample,
  getJson,
  intFlag,
  machine,
  printTable,
  registerMany,
  startCluster,
  stepFlagSpecs,
  stepOptions,
  summarize,
  writeResult,
  type Step,
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
const client = new H2cClient(cluster.proxy, 2);
try {
  const needed = Math.max(...rates.map((r) => r * durationS));
  process.stdout.write(
    `registering ${needed} sweep-preset functions on ${workers} simulated workers...\n`,
  );
  const names = Array.from({ length: needed }, (_, i) => `cold-${i}`);
  await registerMany(
    cluster.registration,
    names.map((n) => dirigentForm(n, 'empty', { cold_start_sweep: 'true' })),
    32,
  );

  const steps: Array<Step & { cold_starts: number; failure_kinds: string[] }> = [];
  for (const rate of rates) {
    await waitForZero(cluster.registration);
    const before = await getJson<{ sandboxesCreated: number }>(`${cluster.registration}/metrics`);
    process.stdout.write(`step ${rate}/s for ${durationS} s...\n`);
    const run = await runOpenLoop({
      rate,
      durationMs: durationS * 1000,
      send: async (i) => {
        const r = await client.request(names[i]!, { workload: 'empty' });
        return r.error === undefined
          ? { status: r.status, ok: r.status === 200 && r.body.length > 0 }
          : { status: r.status, ok: false, error: r.error };
      },
    });
    const after = await getJson<{ sandboxesCreated: number }>(`${cluster.registration}/metrics`);
    steps.push({
      ...summarize(rate, run.shots, durationS * 1000),
      cold_starts: after.sandboxesCreated - before.sandboxesCreated,
      failure_kinds: failureSample(run.shots),
    });
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
  await client.close();
  await cluster.stop();
}

async function waitForZero(registration: string): Promise<void> {
  const end = Date.now() + 120_000;
  for (;;) {
    const m = await getJson<{ sandboxes: number; inflight: number }>(`${registration}/metrics`);
    if (m.sandboxes === 0 && m.inflight === 0) return;
    if (Date.now() > end) throw new Error(`cluster did not cool down: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
