/**
 * `baton loadgen trace|rps` and `baton report`: InVitro's experiments, built
 * in. Both load generators talk only the Dirigent-compatible surface, so
 * they drive any Dirigent-compatible platform, not just Baton.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import { z } from 'zod';
import { InvalidConfigError } from '../shared/errors.js';
import { compileOptions, formatHelp, num, parseFlags, type FlagSpecs } from '../shared/options.js';
import { readTrace } from '../loadgen/trace-reader.js';
import { IAT_DISTRIBUTIONS } from '../loadgen/trace-schedule.js';
import { replayTrace, type ReplayProgress } from '../loadgen/trace-replay.js';
import { loadRun, summarizeLoaded, type LoadedRun } from '../loadgen/report.js';
import { renderReport, SUMMARY_ROWS } from '../loadgen/report-html.js';
import { RPS_MODES, RpsRunner } from '../loadgen/rps.js';
import { formatTable } from './table.js';

const TARGET_FLAGS: FlagSpecs = {
  'target-cp': {
    type: 'string',
    description: "control plane's registration address (Dirigent form API)",
    defaultText: 'http://127.0.0.1:9091',
    valueName: 'URL',
  },
  'target-dp': {
    type: 'string',
    description: "data plane's invocation address (h2c)",
    defaultText: 'http://127.0.0.1:8080',
    valueName: 'URL',
  },
};

const HELP_FLAG: FlagSpecs = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** http(s)://host:port, or host:port (as Dirigent's registration answers), without a trailing slash. */
const targetUrl = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v) => (/^[a-z]+:\/\//i.test(v) ? v : `http://${v}`).replace(/\/+$/, ''))
    .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
      message: 'must be an http:// URL or HOST:PORT',
    });

const TRACE_FLAGS: FlagSpecs = {
  trace: {
    type: 'string',
    description: 'trace directory in the InVitro format',
    valueName: 'DIR',
  },
  ...TARGET_FLAGS,
  minutes: {
    type: 'string',
    description: 'minutes to replay after the warm-up',
    defaultText: 'to the end of the trace',
    valueName: 'M',
  },
  'start-minute': {
    type: 'string',
    description: "offset of the first replayed minute from the trace's first",
    defaultText: '0',
    valueName: 'S',
  },
  functions: {
    type: 'string',
    description: 'replay a seeded sample of this many functions',
    defaultText: 'all',
    valueName: 'N',
  },
  iat: {
    type: 'string',
    description: `inter-arrival times within a minute: ${IAT_DISTRIBUTIONS.join(', ')}`,
    defaultText: 'exponential',
    valueName: 'DIST',
  },
  seed: {
    type: 'string',
    description: 'seed of the function sample, arrival times and sampled sizes',
    defaultText: '42',
    valueName: 'S',
  },
  'warmup-minutes': {
    type: 'string',
    description: 'minutes replayed first and left out of the results',
    defaultText: '0',
    valueName: 'W',
  },
  simulated: {
    type: 'boolean',
    description: 'register image simulated-trace: functions wait instead of burning CPU',
  },
  image: {
    type: 'string',
    description: "register every function with this image instead of dirigent.csv's",
    valueName: 'IMAGE',
  },
  label: {
    type: 'string',
    description: "this run's name in reports",
    defaultText: 'execution mode and function count',
    valueName: 'TEXT',
  },
  out: {
    type: 'string',
    description: 'result directory',
    defaultText: 'results/trace-<time>',
    valueName: 'DIR',
  },
  json: { type: 'boolean', description: 'print the summary as JSON' },
  ...HELP_FLAG,
};

const integer = (min: number) => num(z.number().int().min(min));

const traceSchema = z.object({
  trace: z.string({ error: 'is required (a trace directory)' }).min(1),
  'target-cp': targetUrl('http://127.0.0.1:9091'),
  'target-dp': targetUrl('http://127.0.0.1:8080'),
  minutes: integer(1).optional(),
  'start-minute': integer(0).default(0),
  functions: integer(1).optional(),
  iat: z.enum(IAT_DISTRIBUTIONS).default('exponential'),
  seed: integer(0).default(42),
  'warmup-minutes': integer(0).default(0),
  simulated: z.boolean().default(false),
  image: z.string().min(1).optional(),
  label: z.string().min(1).optional(),
  out: z.string().min(1).optional(),
  json: z.boolean().default(false),
});

export async function runLoadgen(argv: string[]): Promise<void> {
  const [mode, ...rest] = argv;
  if (mode === 'trace') return runTrace(rest);
  if (mode === 'rps') return runRps(rest);
  if (mode === undefined || mode === '--help' || mode === '-h') {
    process.stdout.write(
      "Usage: baton loadgen trace|rps [options]\n\nLoad generators for Dirigent-compatible clusters.\n\n  trace  replay a production trace (InVitro's Dirigent mode)\n  rps    a constant rate of cold or warm invocations (InVitro's Dirigent-RPS mode)\n\nRun 'baton loadgen trace --help' or 'baton loadgen rps --help' for options.\n",
    );
    return;
  }
  throw new InvalidConfigError(`unknown load generator "${mode}" (expected trace or rps)`);
}

async function runTrace(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, TRACE_FLAGS);
  if (flags.values.help === true) {
    process.stdout.write(
      formatHelp(
        'baton loadgen trace --trace DIR [options]',
        'Replays a trace in the InVitro format: registers its functions, sends every invocation at its time over h2c, writes per-invocation results and a report.',
        TRACE_FLAGS,
      ),
    );
    return;
  }
  const o = compileOptions(traceSchema, flags.values);
  if (o.simulated && o.image !== undefined && o.image !== 'simulated-trace')
    throw new InvalidConfigError(`--simulated: conflicts with --image ${o.image}`);
  const warmup = o['warmup-minutes'];
  const trace = readTrace(o.trace, {
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

function writeFileMaking(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d+Z$/, 'Z');
}

function printRuns(runs: LoadedRun[], json: boolean): void {
  const summaries = runs.map(summarizeLoaded);
  if (json) {
    const out = runs.map((r, i) => ({
      dir: r.dir,
      label: r.meta.label,
      execution: r.meta.execution,
      late_sends: r.meta.lateSends,
      ...summaries[i],
    }));
    process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    formatTable(
      ['', ...runs.map((r) => r.meta.label)],
      [
        ['execution', ...runs.map((r) => r.meta.execution)],
        ['late sends (> 10 ms)', ...runs.map((r) => r.meta.lateSends)],
        ...SUMMARY_ROWS.map(([k, name]) => [
          name,
          ...summaries.map((s) => (s[k] === null ? '-' : s[k])),
        ]),
      ],
    ),
  );
}

// ---- rps --------------------------------------------------------------------------

const RPS_FLAGS: FlagSpecs = {
  ...TARGET_FLAGS,
  mode: {
    type: 'string',
    description: 'cold: every invocation a cold start; warm: one function kept warm',
    defaultText: 'cold',
    valueName: 'MODE',
  },
  rate: {
    type: 'string',
    description: 'invocations per second',
    defaultText: '100',
    valueName: 'R',
  },
  'duration-s': {
    type: 'string',
    description: 'how long to send',
    defaultText: '10',
    valueName: 'S',
  },
  image: {
    type: 'string',
    description: 'image of the invoked functions',
    defaultText: 'empty',
    valueName: 'IMAGE',
  },
  out: { type: 'string', description: 'also write the result as JSON here', valueName: 'FILE' },
  json: { type: 'boolean', description: 'print the result as JSON' },
  ...HELP_FLAG,
};

const rpsSchema = z.object({
  'target-cp': targetUrl('http://127.0.0.1:9091'),
  'target-dp': targetUrl('http://127.0.0.1:8080'),
  mode: z.enum(RPS_MODES).default('cold'),
  rate: num(z.number().positive()).default(100),
  'duration-s': integer(1).default(10),
  image: z.string().min(1).default('empty'),
  out: z.string().min(1).optional(),
  json: z.boolean().default(false),
});

async function runRps(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, RPS_FLAGS);
  if (flags.values.help === true) {
    process.stdout.write(
      formatHelp(
        'baton loadgen rps [options]',
        "A constant rate of cold or warm invocations over h2c (InVitro's Dirigent-RPS mode).",
        RPS_FLAGS,
      ),
    );
    return;
  }
  const o = compileOptions(rpsSchema, flags.values);
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

// ---- report -----------------------------------------------------------------------

const REPORT_FLAGS: FlagSpecs = {
  out: {
    type: 'string',
    description: 'where to write the HTML page',
    defaultText: 'DIR/report.html for one directory, ./report.html for several',
    valueName: 'FILE',
  },
  json: { type: 'boolean', description: 'print the summaries as JSON' },
  ...HELP_FLAG,
};

export function runReport(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, REPORT_FLAGS, true);
  if (flags.values.help === true) {
    process.stdout.write(
      formatHelp(
        'baton report DIR [DIR...] [options]',
        "Summarises trace replays written by 'baton loadgen trace' and draws them on one HTML page (CDFs of slowdown and scheduling latency, sandbox timeline).",
        REPORT_FLAGS,
      ),
    );
    return Promise.resolve();
  }
  if (flags.positionals.length === 0)
    throw new InvalidConfigError(
      'expected one or more result directories; usage: baton report DIR [DIR...]',
    );
  const runs = flags.positionals.map(loadRun);
  const out = resolve(
    typeof flags.values.out === 'string'
      ? flags.values.out
      : runs.length === 1
        ? join(runs[0]!.dir, 'report.html')
        : 'report.html',
  );
  writeFileMaking(out, renderReport(runs));
  printRuns(runs, flags.values.json === true);
  process.stderr.write(`wrote ${out}\n`);
  return Promise.resolve();
}
