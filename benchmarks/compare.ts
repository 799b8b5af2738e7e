/**
 * Baton beside Dirigent on this machine, one after the other step by step
 * (each step on Dirigent, then on Baton), with the same client and
 * workload: 40 ms fake sandboxes (Dirigent's `scalability_test` workers,
 * Baton's simulated runtime), the `empty` function, a cold-start sweep, a
 * warm sweep and registrations one after another (a batch on a daemon just
 * started, then a second as large). Prints both with their
 * ratio and each daemon's CPU time per invocation (per registration).
 *
 *   npm run bench:compare -- --dirigent ~/src/dirigent --out results/compare.json
 *
 * The client is InVitro, the paper's load generator, when a checkout of it
 * is given (`--invitro DIR` or $INVITRO_DIR: vhive-serverless/loader, branch
 * rps_mode; built here, one run per step, steps of whole minutes), else
 * Baton's RPS load generator (src/loadgen/rps.ts, InVitro's Dirigent-RPS
 * mode over h2c, its registration form), run in this process. Registrations
 * are timed with Baton's client either way. With `--repeat N` every step
 * runs N times (Dirigent, Baton, Dirigent, Baton, ...): the table shows the
 * medians and each run's ratio (compare-report.ts). Every run records the
 * share of the machine's CPU its hypervisor took (steal) and, above
 * `--max-steal`, is made again (see leastStolen).
 * Needs root (Dirigent's fake sandboxes answer on port 80), Go (to build
 * Dirigent from the checkout given), redis-server and iproute2: everything
 * runs inside a network namespace made for the run and removed after it.
 * Each system is started afresh for each measurement. Not part of `npm test`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpsRunner, type RpsMode, type RpsStep } from '../src/loadgen/rps.js';
import {
  clusterMetrics,
  dirigentForm,
  registerMany,
  waitForZero,
} from '../src/loadgen/dirigent-client.js';
import { round } from '../src/loadgen/stats.js';
import {
  compareRows,
  mostStolen,
  SYSTEMS,
  type Row,
  type Summary,
  type System,
} from './lib/compare-report.js';
import { errorMessage } from '../src/shared/errors.js';
import {
  answeredIn,
  BATON_BIN,
  BATON_FLAG,
  batonEntry,
  benchFlags,
  cpuPerUnit,
  intFlag,
  intList,
  machine,
  pidsByRole,
  printTable,
  revision,
  startCluster,
  writeResult,
} from './lib/bench.js';
import { buildDirigent, mountDirigentHaproxyCfg, startDirigent } from './lib/dirigent.js';
import { buildInvitro, runInvitro } from './lib/invitro.js';

/** How many more times a run over --max-steal is made. */
const STEAL_RETRIES = 2;

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:compare -- --dirigent DIR [options]',
  'Baton and Dirigent side by side: cold sweep, warm sweep, registrations (root, Go, redis-server).',
  {
    dirigent: {
      type: 'string',
      description: 'checkout of eth-easl/dirigent to build and run',
      defaultText: '$DIRIGENT_DIR',
      valueName: 'DIR',
    },
    invitro: {
      type: 'string',
      description:
        "checkout of vhive-serverless/loader (rps_mode): build it and drive both with it, not Baton's RPS load generator",
      defaultText: '$INVITRO_DIR',
      valueName: 'DIR',
    },
    workers: {
      type: 'string',
      description: 'workers of each system',
      defaultText: '10',
      valueName: 'N',
    },
    'cold-rates': {
      type: 'string',
      description: 'cold starts per second, one step each (none: no cold sweep)',
      defaultText: '100,250,500',
      valueName: 'LIST',
    },
    'warm-rates': {
      type: 'string',
      description: 'warm requests per second, one step each (none: no warm sweep)',
      defaultText: '500,1000,2000',
      valueName: 'LIST',
    },
    registrations: {
      type: 'string',
      description:
        'functions registered one after another, on a fresh daemon and again as many more (0: none)',
      defaultText: '500',
      valueName: 'N',
    },
    'duration-s': {
      type: 'string',
      description: 'length of each step (InVitro: a multiple of 60)',
      defaultText: '15; InVitro: 60',
      valueName: 'S',
    },
    'warmup-s': {
      type: 'string',
      description:
        'the step rate on other functions before each step (cold: cold starts, then a wait for zero sandboxes; warm, with InVitro: one warm function) (0: none)',
      defaultText: '2',
      valueName: 'S',
    },
    repeat: {
      type: 'string',
      description:
        "runs of every step, the systems alternating; the table shows medians and each run's ratio",
      defaultText: '1',
      valueName: 'N',
    },
    only: { type: 'string', description: 'run one system: dirigent or baton', valueName: 'SYSTEM' },
    ...BATON_FLAG,
    'max-steal': {
      type: 'string',
      description: `a run during which the hypervisor took more than PCT % of the machine's CPU (steal) is run again, up to ${STEAL_RETRIES} more times, and the least disturbed one kept (100: never)`,
      defaultText: '5',
      valueName: 'PCT',
    },
    'keep-work': {
      type: 'boolean',
      description:
        "keep the run's folder (InVitro's per-invocation CSVs, its configs) and print where it is",
    },
  },
);
const workers = intFlag(v.workers, 'workers', 10);
const coldRates = intList(v['cold-rates'], 'cold-rates', [100, 250, 500]);
const warmRates = intList(v['warm-rates'], 'warm-rates', [500, 1000, 2000]);
const registrations = intFlag(v.registrations, 'registrations', 500, 0);
const maxSteal = intFlag(v['max-steal'], 'max-steal', 5, 0);
if (maxSteal > 100) {
  process.stderr.write(`--max-steal: ${maxSteal} is not a percentage (0-100)\n`);
  process.exit(2);
}
if (coldRates.length + warmRates.length === 0 && registrations === 0) {
  process.stderr.write(
    'nothing to measure: --cold-rates none, --warm-rates none and --registrations 0\n',
  );
  process.exit(2);
}
const invitroGiven = typeof v.invitro === 'string' ? v.invitro : process.env.INVITRO_DIR;
const invitroCheckout =
  invitroGiven === undefined || invitroGiven === '' ? undefined : resolve(invitroGiven);
const durationS = intFlag(v['duration-s'], 'duration-s', invitroCheckout === undefined ? 15 : 60);
if (invitroCheckout !== undefined && durationS % 60 !== 0) {
  process.stderr.write(
    `--duration-s: ${durationS} is not a multiple of 60 (InVitro's steps last whole minutes)\n`,
  );
  process.exit(2);
}
const warmupS = intFlag(v['warmup-s'], 'warmup-s', 2, 0);
const repeat = intFlag(v.repeat, 'repeat', 1);
/** After the warm-up, before the step: the warm-up's sandboxes are idle (Baton's step waits for zero). */
const COOL_DOWN_MS = 3000;
/** A sweep function's stable window (6 s), and its autoscaler's scale-down after it. */
const SWEEP_SCALE_DOWN_MS = 10_000;
const only = typeof v.only === 'string' ? v.only : undefined;
if (only !== undefined && !(SYSTEMS as readonly string[]).includes(only)) {
  process.stderr.write(`--only: "${only}" is neither dirigent nor baton\n`);
  process.exit(2);
}
const systems: System[] = only === undefined ? [...SYSTEMS] : [only as System];
const { entry: batonBin, revision: batonRevision } = batonEntry(v.baton);

const INSIDE = 'BATON_COMPARE_INSIDE';
if (process.env[INSIDE] === undefined) await outside();
else await inside(process.env.DIRIGENT_BIN ?? '');

/**
 * `build()`'s result; a build that fails ends the run with one line (the
 * compiler's own output is above it) and removes the run's folder `work`.
 */
function buildOrExit(what: string, work: string, build: () => string): string {
  try {
    return build();
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    process.stderr.write(`bench:compare: building ${what} failed: ${errorMessage(err)}\n`);
    process.exit(2);
  }
}

/** Checks, builds Dirigent, makes the namespace and runs this script again inside it. */
async function outside(): Promise<void> {
  const given = typeof v.dirigent === 'string' ? v.dirigent : process.env.DIRIGENT_DIR;
  const checkout = given === undefined ? undefined : resolve(given);
  const problems: string[] = [];
  if (process.getuid?.() !== 0)
    problems.push(
      'run as root (Dirigent serves its fake sandboxes on port 80; the run makes a network namespace)',
    );
  if (systems.includes('dirigent') && checkout === undefined)
    problems.push('--dirigent DIR (or $DIRIGENT_DIR): a checkout of eth-easl/dirigent');
  for (const program of ['redis-server', 'ip'])
    try {
      execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    } catch {
      problems.push(
        `${program} is not on the PATH (Debian: ${program === 'ip' ? 'iproute2' : 'redis-server'})`,
      );
    }
  if (problems.length > 0) {
    process.stderr.write(
      `bench:compare cannot run:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
    );
    process.exit(2);
  }
  const work = mkdtempSync(join(tmpdir(), 'baton-compare-'));
  let bin = '';
  if (systems.includes('dirigent')) {
    process.stdout.write(`building Dirigent from ${checkout!}...\n`);
    bin = buildOrExit('Dirigent', work, () => buildDirigent(checkout!, join(work, 'bin')));
  }
  let invitroBin = '';
  if (invitroCheckout !== undefined) {
    process.stdout.write(`building InVitro from ${invitroCheckout}...\n`);
    invitroBin = buildOrExit('InVitro', work, () =>
      buildInvitro(invitroCheckout, join(work, 'invitro')),
    );
  }
  const ns = `baton-compare-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const removeNs = () => {
    try {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        ...process.argv.slice(2),
      ],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          [INSIDE]: work,
          DIRIGENT_BIN: bin,
          DIRIGENT_DIR: checkout ?? '',
          INVITRO_BIN: invitroBin,
        },
      },
    );
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.on(signal, () => child.kill(signal));
    const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
    process.exitCode = code;
  } finally {
    removeNs();
    if (v['keep-work'] === true) process.stdout.write(`kept the run's folder: ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
}

interface Target {
  registration: string;
  proxy: string;
  /** Daemons by role; several processes of one role are summed. */
  pids: Map<string, number[]>;
  stop(): Promise<void>;
}

async function start(system: System, bin: string, dir: string): Promise<Target> {
  if (system === 'dirigent') return startDirigent(bin, workers, dir);
  const c = await startCluster(['--runtime', 'simulated', '--workers', String(workers)], batonBin);
  return { ...c, pids: await pidsByRole(c.registration) };
}

async function inside(bin: string): Promise<void> {
  const work = process.env[INSIDE]!;
  if (systems.includes('dirigent')) mountDirigentHaproxyCfg(process.env.DIRIGENT_DIR!, work);
  const rows: Row[] = [];
  let n = 0;
  /** Runs `body` on daemons started afresh; `index` numbers the run's folders in the work folder. */
  const fresh = async <T>(
    system: System,
    body: (t: Target, index: number) => Promise<T>,
  ): Promise<T> => {
    const i = n++;
    const t = await start(system, bin, join(work, `${system}-${i}`));
    try {
      return await body(t, i);
    } finally {
      await t.stop();
    }
  };
  const stepRow = (
    experiment: string,
    system: System,
    run: number,
    s: Pick<RpsStep, 'p50_ms' | 'p99_ms' | 'achieved' | 'failures'>,
    cpu: Record<string, number>,
    stealPct: number,
  ): Row => ({
    experiment,
    system,
    run,
    p50_ms: s.p50_ms,
    p99_ms: s.p99_ms,
    achieved: s.achieved,
    failures: s.failures,
    cpu_us: cpu,
    steal_pct: stealPct,
  });
  /**
   * Daemons just started: V8 has compiled little of their hot paths (a fresh
   * Baton's first second of cold starts had a p99 twice its next one's; under
   * InVitro its p99 was 70-84 ms without this, 53-55 with it; its warm 1000/s
   * p99 183-720 ms without, 20-22 with). Both systems get the same load as
   * the step on functions of their own. Cold: then the cluster scales back
   * to zero: Baton is waited for; Dirigent, which does not report its
   * sandboxes, is given 13 s (its sweep functions' stable window is 6 s).
   * Warm: one function, whose sandboxes stay (the step's function is another).
   */
  const warmUp = async (t: Target, mode: RpsMode, rate: number): Promise<void> => {
    if (warmupS === 0) return;
    const count = mode === 'cold' ? rate * warmupS : 1;
    const warm = await RpsRunner.prepare(t, mode, count, 'empty', 'warmup');
    try {
      await warm.step(rate, warmupS);
      await new Promise((r) => setTimeout(r, COOL_DOWN_MS));
      if (mode === 'warm') return;
      if ((await clusterMetrics(t.registration)) === undefined)
        await new Promise((r) => setTimeout(r, SWEEP_SCALE_DOWN_MS));
      else await waitForZero(t.registration);
    } finally {
      await warm.close();
    }
  };
  const invitroBin = process.env.INVITRO_BIN ?? '';
  const invitro = async (system: System, mode: RpsMode, rate: number, run: number) =>
    fresh(system, async (t, i) => {
      await warmUp(t, mode, rate);
      const folder = `invitro-${i}`;
      const invitroRun = runInvitro(
        invitroBin,
        new URL(t.registration).host,
        mode,
        rate,
        durationS / 60,
        join(work, folder),
      );
      // Its registrations are not the step's CPU: counted from its first invocation.
      await invitroRun.invoking;
      const { result, cpuUsPerUnit, stealPct } = await cpuPerUnit(
        t.pids,
        () => invitroRun.done,
        answeredIn(durationS),
      );
      return {
        ...stepRow(`${mode} ${rate}/s`, system, run, result, cpuUsPerUnit, stealPct),
        invitro_folder: folder,
      };
    });
  const rps = async (system: System, mode: RpsMode, rate: number, run: number) =>
    fresh(system, async (t) => {
      // The warm mode warms its function itself (settle).
      if (mode === 'cold') await warmUp(t, mode, rate);
      const runner = await RpsRunner.prepare(t, mode, mode === 'cold' ? rate * durationS : 1);
      try {
        // Waiting for zero sandboxes (Baton) or the warm-up second is not the step's CPU.
        await runner.settle(rate);
        const { result, cpuUsPerUnit, stealPct } = await cpuPerUnit(
          t.pids,
          () => runner.measure(rate, durationS),
          answeredIn(durationS),
        );
        return stepRow(`${mode} ${rate}/s`, system, run, result, cpuUsPerUnit, stealPct);
      } finally {
        await runner.close();
      }
    });

  // Step by step, the systems one right after the other: the machine has
  // slow spells of minutes, and one that fell on a whole system's run (each
  // system's steps used to run together, Baton's after Dirigent's) made
  // every ratio of that sitting read it. With --repeat, a step's runs
  // alternate the systems the same way.
  const runs = Array.from({ length: repeat }, (_, i) => i + 1);
  const ofRun = (run: number) => (repeat === 1 ? '' : ` (run ${run} of ${repeat})`);
  /**
   * `measure()`, made again while the hypervisor took more than --max-steal
   * of the machine's CPU during it (up to STEAL_RETRIES more times); the
   * least stolen is kept. A neighbour's busy spell on this VM took 10-45 %
   * for minutes and doubled a cold step's p99 (2026-12-03); a ratio whose
   * one side met such a spell and the other did not says nothing of either.
   */
  const leastStolen = async (system: System, measure: () => Promise<Row[]>): Promise<Row[]> => {
    let kept: Row[] = [];
    for (let attempt = 0; attempt <= STEAL_RETRIES; attempt++) {
      const measured = await measure();
      const stolen = mostStolen(measured);
      if (attempt === 0 || stolen < mostStolen(kept)) kept = measured;
      if (stolen <= maxSteal) break;
      const folders = measured.flatMap((r) => r.invitro_folder ?? []);
      process.stdout.write(
        `${system}: ${stolen} % of the machine's CPU was stolen${folders.length === 0 ? '' : ` in ${folders.join(', ')}`} (--max-steal ${maxSteal}): ${attempt < STEAL_RETRIES ? 'again' : 'the least stolen run is kept'}\n`,
      );
    }
    return kept;
  };
  if (registrations > 0)
    for (const run of runs)
      for (const system of systems) {
        process.stdout.write(
          `${system}: ${registrations} registrations one after another, then as many more${ofRun(run)}...\n`,
        );
        rows.push(
          ...(await leastStolen(system, () =>
            fresh(system, async (t) => {
              // The first batch meets a daemon just started (V8 has compiled little
              // of a Node daemon's registration path), the second one that has
              // registered as many: both are shown, neither hidden as a warm-up.
              const batch = async (experiment: string, first: number): Promise<Row> => {
                const forms = Array.from({ length: registrations }, (_, i) =>
                  dirigentForm(`reg-${first + i}`, 'empty'),
                );
                const t0 = performance.now();
                const { cpuUsPerUnit, stealPct } = await cpuPerUnit(
                  t.pids,
                  () => registerMany(t.registration, forms, 1),
                  () => registrations,
                );
                return {
                  experiment,
                  system,
                  run,
                  p50_ms: null,
                  p99_ms: null,
                  achieved: null,
                  failures: 0,
                  total_ms: round(performance.now() - t0, 1),
                  cpu_us: cpuUsPerUnit,
                  steal_pct: stealPct,
                };
              };
              return [
                await batch(`${registrations} registrations`, 0),
                await batch(`${registrations} more registrations`, registrations),
              ];
            }),
          )),
        );
      }
  const steps = [
    ...coldRates.map((rate) => ['cold', rate] as const),
    ...warmRates.map((rate) => ['warm', rate] as const),
  ];
  for (const [mode, rate] of steps)
    for (const run of runs)
      for (const system of systems) {
        const what = mode === 'cold' ? 'cold starts/s' : 'warm requests/s';
        process.stdout.write(`${system}: ${rate} ${what} for ${durationS} s${ofRun(run)}...\n`);
        rows.push(
          ...(await leastStolen(system, async () => [
            await (invitroBin === '' ? rps : invitro)(system, mode, rate, run),
          ])),
        );
      }
  report(
    rows,
    invitroBin === ''
      ? "Baton's RPS load generator (src/loadgen/rps.ts), h2c"
      : `InVitro (vhive-serverless/loader ${revision(invitroCheckout ?? '')}, Dirigent-RPS mode), h2c`,
  );
}

function report(rows: Row[], client: string): void {
  const comparisons = compareRows(rows);
  const cpu = (r: Summary | undefined, role: string) => r?.cpu_us[role] ?? '-';
  const lat = (r: Summary | undefined) =>
    r === undefined
      ? null
      : r.total_ms !== null
        ? `${r.total_ms} total`
        : `${r.p50_ms} / ${r.p99_ms}`;
  const perRun = (ratios: (number | null)[]) => ratios.map((x) => x ?? '-').join(', ');
  const medians = repeat === 1 ? '' : `, medians of ${repeat} runs`;
  const baton = `${batonRevision}${batonBin === BATON_BIN ? '' : ` (${batonBin})`}`;
  printTable(
    `Baton ${baton} beside Dirigent, ${workers} workers, 40 ms fake sandboxes, ${durationS} s per step${medians}; client: ${client} (ms; CPU in µs per invocation or registration; steal: the share of the machine's CPU its hypervisor took meanwhile)`,
    [
      'experiment',
      'Dirigent p50 / p99',
      'Baton p50 / p99',
      'Baton/Dirigent p50',
      'p99',
      ...(repeat === 1 ? [] : ['p50 by run', 'p99 by run']),
      'achieved/s D | B',
      'failures D | B',
      'DP CPU D | B',
      'CP CPU D | B',
      'steal % D | B',
    ],
    comparisons.map((c) => {
      const d = c.dirigent;
      const b = c.baton;
      return [
        c.experiment,
        lat(d),
        lat(b),
        c.ratio_main,
        c.ratio_p99,
        ...(repeat === 1 ? [] : [perRun(c.ratio_main_per_run), perRun(c.ratio_p99_per_run)]),
        `${d?.achieved ?? '-'} | ${b?.achieved ?? '-'}`,
        `${d?.failures ?? '-'} | ${b?.failures ?? '-'}`,
        `${cpu(d, 'data-plane')} | ${cpu(b, 'data-plane')}`,
        `${cpu(d, 'control-plane')} | ${cpu(b, 'control-plane')}`,
        `${d?.steal_pct ?? '-'} | ${b?.steal_pct ?? '-'}`,
      ];
    }),
  );
  writeResult(v.out, {
    benchmark: 'compare',
    date: new Date().toISOString(),
    machine: machine(),
    client,
    baton,
    workers,
    duration_s: durationS,
    repeat,
    max_steal_pct: maxSteal,
    comparisons,
    rows,
  });
}
