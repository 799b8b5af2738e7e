/**
 * Registration throughput (Dirigent §5.2.3): N functions registered through
 * the Dirigent form API, one after another as the InVitro load generator
 * does (or `--parallel P` at a time). Every registration is acknowledged
 * once it is durable in the store (data planes get new functions in batches
 * shortly after, or ask). Reports each daemon's (and this client's) CPU per
 * registration.
 *
 *   npm run bench:register -- --count 500 --out results/register.json
 */
import {
  benchFlags,
  cpuPerUnit,
  daemonPids,
  intFlag,
  machine,
  printTable,
  startCluster,
  writeResult,
} from './lib/bench.js';
import { dirigentForm, registerMany } from '../src/loadgen/dirigent-client.js';
import { latencyPercentiles, round } from '../src/loadgen/stats.js';

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:register -- [options]',
  'Registers many functions through POST /registerService and times it.',
  {
    count: {
      type: 'string',
      description: 'functions to register',
      defaultText: '500',
      valueName: 'N',
    },
    parallel: {
      type: 'string',
      description: 'registrations in flight at once',
      defaultText: '1',
      valueName: 'P',
    },
  },
);
const count = intFlag(v.count, 'count', 500);
const parallel = intFlag(v.parallel, 'parallel', 1);

const cluster = await startCluster(['--runtime', 'simulated', '--workers', '1']);
try {
  const forms = Array.from({ length: count }, (_, i) => dirigentForm(`reg-${i}`, 'empty'));
  const pids = new Map([...(await daemonPids(cluster.registration)), ['client', process.pid]]);
  const t0 = performance.now();
  const {
    result: latencies,
    cpuUsPerUnit,
    stealPct,
  } = await cpuPerUnit(
    pids,
    () => registerMany(cluster.registration, forms, parallel),
    () => count,
  );
  const totalMs = performance.now() - t0;
  const result = {
    count,
    parallel,
    total_ms: round(totalMs, 1),
    ...latencyPercentiles(latencies),
    cpu_us_per_registration: cpuUsPerUnit,
    steal_pct: stealPct,
  };
  const cpu = (name: string) => cpuUsPerUnit[name] ?? '-';
  printTable(
    `Registration of ${count} functions via POST /registerService, ${parallel} at a time (ms; CPU µs per registration)`,
    [
      'count',
      'total',
      'p50',
      'p99',
      'CPU control plane',
      'CPU data plane',
      'CPU client',
      'steal %',
    ],
    [
      [
        result.count,
        result.total_ms,
        result.p50_ms,
        result.p99_ms,
        cpu('control-plane'),
        cpu('data-plane'),
        cpu('client'),
        result.steal_pct,
      ],
    ],
  );
  writeResult(v.out, { benchmark: 'register', machine: machine(), ...result });
} finally {
  await cluster.stop();
}
