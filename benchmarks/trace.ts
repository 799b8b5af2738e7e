/**
 * The paper's trace experiment (Dirigent §5.3, Figures 9 and 10), scaled to
 * one small machine: a seeded sample of azure-100 replayed against
 * `baton up` with simulated execution (functions wait their sampled time
 * instead of burning CPU), by `baton loadgen trace`. Prints the report's
 * summary beside the paper's Dirigent figures, writes the HTML report and
 * the summary as JSON.
 *
 *   npm run bench:trace -- --out results/trace.json
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTrace } from '../src/loadgen/trace-reader.js';
import { replayTrace } from '../src/loadgen/trace-replay.js';
import { loadRun, summarizeLoaded } from '../src/loadgen/report.js';
import { renderReport } from '../src/loadgen/report-html.js';
import {
  benchFlags,
  intFlag,
  machine,
  printTable,
  startCluster,
  writeResult,
} from './lib/bench.js';

/** The copy under test/fixtures travels with the repository; ../shared may not. */
const DEFAULT_TRACE = fileURLToPath(new URL('../test/fixtures/azure-100', import.meta.url));

/** Dirigent on the Azure 500-function trace (paper §5.3). */
const PAPER_DIRIGENT = {
  sched_p50_ms: 1.74,
  sched_p99_ms: 1130,
  slowdown_p50: 1.38,
};

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:trace -- [options]',
  'Replays a seeded sample of azure-100 against baton up (simulated execution) and reports slowdown and scheduling latency.',
  {
    trace: { type: 'string', description: 'trace directory', valueName: 'DIR' },
    minutes: {
      type: 'string',
      description: 'minutes to replay',
      defaultText: '10',
      valueName: 'M',
    },
    functions: {
      type: 'string',
      description: 'functions sampled from the trace',
      defaultText: '50',
      valueName: 'N',
    },
    seed: {
      type: 'string',
      description: 'sample and schedule seed',
      defaultText: '42',
      valueName: 'S',
    },
    workers: {
      type: 'string',
      description: 'simulated workers',
      defaultText: '10',
      valueName: 'N',
    },
    'report-dir': {
      type: 'string',
      description: 'where the replay results and report.html go',
      defaultText: 'results/trace-bench',
      valueName: 'DIR',
    },
  },
);
const traceDir = typeof v.trace === 'string' ? v.trace : DEFAULT_TRACE;
if (!existsSync(traceDir)) {
  process.stderr.write(`--trace: ${traceDir} does not exist\n`);
  process.exit(2);
}
const minutes = intFlag(v.minutes, 'minutes', 10);
const functions = intFlag(v.functions, 'functions', 50);
const seed = intFlag(v.seed, 'seed', 42, 0);
const workers = intFlag(v.workers, 'workers', 10);
const reportDir = resolve(
  typeof v['report-dir'] === 'string' ? v['report-dir'] : 'results/trace-bench',
);

const trace = readTrace(traceDir, { minutes, functions, seed });
const cluster = await startCluster(['--runtime', 'simulated', '--workers', String(workers)]);
try {
  process.stdout.write(
    `replaying ${functions} functions x ${minutes} minutes of ${traceDir} (seed ${seed}) on ${workers} simulated workers...\n`,
  );
  let lastLine = 0;
  await replayTrace({
    trace,
    warmupMinutes: 0,
    iat: 'exponential',
    seed,
    target: cluster,
    image: 'simulated-trace',
    outDir: reportDir,
    label: `baton, simulated, ${functions} functions`,
    onProgress: (p) => {
      if (Date.now() - lastLine < 30_000) return;
      lastLine = Date.now();
      process.stdout.write(
        `  ${p.sent}/${p.total} sent, ${p.answered} answered, ${p.failed} failed, ${p.late} late\n`,
      );
    },
  });
} finally {
  await cluster.stop();
}

const run = loadRun(reportDir);
writeFileSync(join(reportDir, 'report.html'), renderReport([run]));
const s = summarizeLoaded(run);
printTable(
  `Trace replay: azure-100, ${functions} functions x ${minutes} min, simulated execution, ${workers} workers`,
  [
    'system',
    'invocations',
    'failures',
    'sched p50 ms',
    'sched p99 ms',
    'slowdown p50',
    'slowdown p99',
  ],
  [
    [
      'baton',
      s.invocations,
      s.failures,
      s.sched_p50_ms,
      s.sched_p99_ms,
      s.slowdown_p50,
      s.slowdown_p99,
    ],
    [
      'Dirigent (paper, Azure 500)',
      '-',
      '-',
      PAPER_DIRIGENT.sched_p50_ms,
      PAPER_DIRIGENT.sched_p99_ms,
      PAPER_DIRIGENT.slowdown_p50,
      '-',
    ],
  ],
);
process.stdout.write(`\nreport: ${join(reportDir, 'report.html')}\n`);
writeResult(v.out, {
  benchmark: 'trace',
  machine: machine(),
  trace: traceDir,
  minutes,
  functions,
  seed,
  workers,
  execution: run.meta.execution,
  late_sends: run.meta.lateSends,
  report: join(reportDir, 'report.html'),
  ...s,
  paper_dirigent: PAPER_DIRIGENT,
});
