/**
 * `baton loadgen trace|rps`: InVitro's experiments, built in. Both load
 * generators talk only the Dirigent-compatible surface, so they drive any
 * Dirigent-compatible platform, not just Baton.
 */
import { resolve, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { z } from 'zod';
import { InvalidConfigError } from '../shared/errors.js';
import { readCommand } from '../shared/options.js';
import {
  HELP_OPTION,
  booleanOption,
  enumOption,
  intOption,
  num,
  option,
  stringOption,
} from '../shared/option-specs.js';
import { readTrace } from '../loadgen/trace-reader.js';
import { IAT_DISTRIBUTIONS } from '../loadgen/trace-schedule.js';
import { replayTrace, type ReplayProgress } from '../loadgen/trace-replay.js';
import { loadRun } from '../loadgen/report.js';
import { renderReport } from '../loadgen/report-html.js';
import { RPS_MODES, RpsRunner } from '../loadgen/rps.js';
import { printRuns, writeFileMaking } from './report-command.js';
import { formatTable } from './table.js';
import { DEFAULT_CP_URL, DEFAULT_DP_URL } from './cp-client.js';

/** http(s)://host:port, or host:port (as Dirigent's registration answers), without a trailing slash. */
const targetUrl = (def: string, description: string) =>
  option(
    z
      .string()
      .default(def)
      .transform((v) => (/^[a-z]+:\/\//i.test(v) ? v : `http://${v}`).replace(/\/+$/, ''))
      .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
        message: 'must be an http:// URL or HOST:PORT',
      }),
    description,
    { valueName: 'URL', defaultText: def },
  );

const TARGET_OPTIONS = {
  'target-cp': targetUrl(
    process.env.BATON_CP ?? DEFAULT_CP_URL,
    "control plane's registration address (Dirigent form API; default $BATON_CP)",
  ),
  'target-dp': targetUrl(
    process.env.BATON_DP ?? DEFAULT_DP_URL,
    "data plane's invocation address (h2c; default $BATON_DP)",
  ),
};

const TRACE_OPTIONS = {
  trace: stringOption(undefined, 'trace directory in the InVitro format', 'DIR'),
  ...TARGET_OPTIONS,
  minutes: intOption(
    undefined,
    'minutes to replay after the warm-up',
    'M',
    1,
    undefined,
    'to the end of the trace',
  ),
  'start-minute': intOption(0, "offset of the first replayed minute from the trace's first", 'S'),
  functions: intOption(
    undefined,
    'replay a seeded sample of this many functions',
    'N',
    1,
    undefined,
    'all',
  ),
  iat: enumOption(
    IAT_DISTRIBUTIONS,
    'exponential',
    `inter-arrival times within a minute: ${IAT_DISTRIBUTIONS.join(', ')}`,
    'DIST',
    'distribution',
  ),
  seed: intOption(42, 'seed of the function sample, arrival times and sampled sizes', 'S'),
  'warmup-minutes': intOption(0, 'minutes replayed first and left out of the results', 'W'),
  simulated: booleanOption('register image simulated-trace: functions wait instead of burning CPU'),
  image: stringOption(
    undefined,
    "register every function with this image instead of dirigent.csv's",
    'IMAGE',
  ),
  label: {
    ...stringOption(undefined, "this run's name in reports", 'TEXT'),
    defaultText: 'execution mode and function count',
  },
  out: {
    ...stringOption(undefined, 'result directory', 'DIR'),
    defaultText: 'results/trace-<time>',
  },
  json: booleanOption('print the summary as JSON'),
  ...HELP_OPTION,
};

const LOADGEN_USAGE =
  "Usage: baton loadgen trace|rps [options]\n\nLoad generators for Dirigent-compatible clusters.\n\n  trace  replay a production trace (InVitro's Dirigent mode)\n  rps    a constant rate of cold or warm invocations (InVitro's Dirigent-RPS mode)\n\nRun 'baton loadgen trace --help' or 'baton loadgen rps --help' for options.\n";

export async function runLoadgen(argv: string[]): Promise<void> {
  const [mode, ...rest] = argv;
  if (mode === 'trace') return runTrace(rest);
  if (mode === 'rps') return runRps(rest);
  if (mode === undefined || mode === '--help' || mode === '-h') {
    process.stdout.write(LOADGEN_USAGE);
    return;
  }
  throw new InvalidConfigError(`unknown load generator "${mode}" (expected trace or rps)`);
}

async function runTrace(argv: string[]): Promise<void> {
  const command = readCommand(
    argv,
    TRACE_OPTIONS,
    'baton loadgen trace --trace DIR [options]',
    'Replays a trace in the InVitro format: registers its functions, sends every invocation at its time over h2c, writes per-invocation results and a report.',
    0,
  );
  if (command === undefined) return;
  const o = command.options;
  if (o.trace === undefined)
    throw new InvalidConfigError('--trace: is required (a trace directory)');
  const traceDir = o.trace;
  if (o.simulated && o.image !== undefined && o.image !== 'simulated-trace')
    throw new InvalidConfigError(`--simulated: conflicts with --image ${o.image}`);
  const warmup = o['warmup-minutes'];
  const trace = readTrace(traceDir, {
    startMinute: o['start-minute'],
    ...(o.minutes === undefined ? {} : { minutes: warmup + o.minutes }),
    ...(o.functions === undefined ? {} : { functions: o.functions }),
    seed: o.seed,
  });
  if (warmup >= trace.minutes)
    throw new InvalidConfigError(
      `--warmup-minutes: ${warmup} leaves nothing to measure in a ${trace.minutes}-minute window`,
    );
  const outDir = resolve(o.out ?? join('results', `trace-${timestamp()}`));
  const image = o.simulated ? 'simulated-trace' : o.image;
  const stop = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nstopping: no new invocations; waiting for those in flight\n');
    stop.abort();
  };
  process.once('SIGINT', onSigint);
  const bar = progressBar();
  let started = false;
  try {
    await replayTrace({
      trace,
      warmupMinutes: warmup,
      iat: o.iat,
      seed: o.seed,
      target: { registration: o['target-cp'], proxy: o['target-dp'] },
      ...(image === undefined ? {} : { image }),
      ...(o.label === undefined ? {} : { label: o.label }),
      outDir,
      signal: stop.signal,
      onStart: () =>
        process.stderr.write(
          `replaying ${trace.functions.length} functions, ${trace.minutes} minutes (${warmup} warm-up) of ${trace.dir} into ${outDir}\n`,
        ),
      onProgress: (p: ReplayProgress) => {
        const payload = { answered: p.answered, failed: p.failed, late: p.late };
        if (!started) {
          started = true;
          bar.start(p.total, p.sent, payload);
        } else bar.update(p.sent, payload);
      },
    });
  } finally {
    bar.stop();
    process.removeListener('SIGINT', onSigint);
  }
  const run = loadRun(outDir);
  const reportPath = join(outDir, 'report.html');
  writeFileSync(reportPath, renderReport([run]));
  printRuns([run], o.json);
  process.stderr.write(`wrote ${join(outDir, 'invocations.csv')} and ${reportPath}\n`);
}

function progressBar(): SingleBar {
  return new SingleBar({
    format:
      'replay [{bar}] {percentage}% | {value}/{total} sent | {answered} answered | {failed} failed | {late} late',
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 10_000,
    hideCursor: true,
  });
}

function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d+Z$/, 'Z');
}

const RPS_OPTIONS = {
  ...TARGET_OPTIONS,
  mode: enumOption(
    RPS_MODES,
    'cold',
    'cold: every invocation a cold start; warm: one function kept warm',
    'MODE',
    'mode',
  ),
  rate: option(
    num(z.number().positive('must be more than 0')).default(100),
    'invocations per second',
    {
      valueName: 'R',
      defaultText: '100',
    },
  ),
  'duration-s': intOption(10, 'how long to send', 'S', 1),
  image: stringOption('empty', 'image of the invoked functions', 'IMAGE'),
  out: stringOption(undefined, 'also write the result as JSON here', 'FILE'),
  json: booleanOption('print the result as JSON'),
  ...HELP_OPTION,
};

async function runRps(argv: string[]): Promise<void> {
  const command = readCommand(
    argv,
    RPS_OPTIONS,
    'baton loadgen rps [options]',
    "A constant rate of cold or warm invocations over h2c (InVitro's Dirigent-RPS mode).",
    0,
  );
  if (command === undefined) return;
  const o = command.options;
  const target = { registration: o['target-cp'], proxy: o['target-dp'] };
  const durationS = o['duration-s'];
  const invocations = Math.floor(o.rate * durationS);
  if (invocations < 1)
    throw new InvalidConfigError(`--rate: ${o.rate}/s for ${durationS} s sends nothing`);
  process.stderr.write(
    `${o.mode} invocations of ${o.image}: ${o.rate}/s for ${durationS} s against ${target.proxy}\n`,
  );
  const runner = await RpsRunner.prepare(target, o.mode, invocations, o.image);
  let step;
  try {
    step = await runner.step(o.rate, durationS);
  } finally {
    await runner.close();
  }
  const result = { mode: o.mode, image: o.image, duration_s: durationS, ...step };
  if (o.out !== undefined) {
    writeFileMaking(resolve(o.out), `${JSON.stringify(result, null, 2)}\n`);
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    formatTable(
      ['rate/s', 'achieved/s', 'p50 ms', 'p99 ms', 'failures', 'cold starts', 'late sends'],
      [
        [
          step.rate,
          step.achieved,
          step.p50_ms,
          step.p99_ms,
          step.failures,
          step.cold_starts ?? '-',
          step.late_sends,
        ],
      ],
    ),
  );
  for (const f of step.failure_kinds) process.stdout.write(`failures: ${f}\n`);
}
