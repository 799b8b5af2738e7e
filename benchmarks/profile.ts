/**
 * CPU profiles of Baton's daemons on its three hot paths, drawn as flame
 * graphs: warm requests through the data plane (`empty` at minimum scale
 * 2, concurrency 64, over h2c), registrations one after another into the
 * control plane (Dirigent's form), and cold starts (the sweep preset, one
 * invocation per function: control plane, data plane and workers). Each
 * scenario runs a fresh `baton up` on the simulated runtime whose daemons
 * run under `--cpu-prof` (`--node-flags`); only the samples taken while the scenario's load
 * ran are drawn (a warm-up before it is left out). Prints each daemon's
 * busiest frames, writes an SVG per scenario and daemon, and the JSON.
 * Profiling costs the daemons some CPU of its own: the figures are for
 * finding where time goes, the other benchmarks for how much.
 *
 *   npm run bench:profile -- --scenarios warm,register,cold --duration-s 10 --out-dir docs/profiles --out results/profile.json
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ControlPlaneClient } from '../src/cli/cp-client.js';
import { H2cClient } from '../src/loadgen/h2c-client.js';
import { runOpenLoop } from '../src/loadgen/open-loop.js';
import { dirigentForm, registerMany } from '../src/loadgen/dirigent-client.js';
import { RpsRunner } from '../src/loadgen/rps.js';
import { round } from '../src/loadgen/stats.js';
import {
  badFlag,
  benchFlags,
  flagText,
  intFlag,
  machine,
  pidsByRole,
  printTable,
  startCluster,
  waitForSandboxes,
  waitForWorkers,
  writeResult,
  type Cluster,
  type FlagValue,
} from './lib/bench.js';
import {
  flameGraphSvg,
  foldProfile,
  selfTimes,
  type CpuProfile,
  type ProfileWindow,
} from './lib/flamegraph.js';

const SCENARIOS = ['warm', 'register', 'cold'] as const;
type Scenario = (typeof SCENARIOS)[number];
/** Frames per daemon in the printed table and the JSON. */
const TOP_FRAMES = 8;
const WARM_UP_MS = 3_000;

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:profile -- [options]',
  "CPU profiles (flame graphs) of Baton's daemons: warm requests, registrations, cold starts.",
  {
    scenarios: {
      type: 'string',
      description: 'which to profile, comma-separated',
      defaultText: SCENARIOS.join(','),
      valueName: 'LIST',
    },
    'duration-s': {
      type: 'string',
      description: 'length of the warm and cold loads',
      defaultText: '10',
      valueName: 'S',
    },
    'warm-rate': { type: 'string', description: 'warm requests/s', defaultText: '1000' },
    'cold-rate': { type: 'string', description: 'cold starts/s', defaultText: '250' },
    registrations: { type: 'string', description: 'one after another', defaultText: '500' },
    workers: { type: 'string', description: 'simulated workers (cold)', defaultText: '10' },
    'out-dir': {
      type: 'string',
      description: 'where the SVGs go',
      defaultText: 'results/profiles',
      valueName: 'DIR',
    },
  },
);
const scenarios = scenarioList(v.scenarios);
const durationS = intFlag(v['duration-s'], 'duration-s', 10);
const warmRate = intFlag(v['warm-rate'], 'warm-rate', 1000);
const coldRate = intFlag(v['cold-rate'], 'cold-rate', 250);
const registrations = intFlag(v.registrations, 'registrations', 500);
const workers = intFlag(v.workers, 'workers', 10);
const outDir = resolve(flagText(v['out-dir'], 'out-dir') ?? 'results/profiles');

/** What a scenario measured: the load's window, its unit of work, and how many were done. */
interface Load {
  window: ProfileWindow;
  unit: string;
  units: number;
  what: string;
}

interface Drawn {
  scenario: Scenario;
  daemon: string;
  what: string;
  unit: string;
  units: number;
  sampled_ms: number;
  sampled_us_per_unit: number;
  svg: string;
  top: Array<{ frame: string; ms: number; share: number }>;
}

const drawn: Drawn[] = [];
mkdirSync(outDir, { recursive: true });
for (const scenario of scenarios) {
  process.stdout.write(`${scenario}...\n`);
  const daemons =
    scenario === 'warm'
      ? ['data-plane']
      : scenario === 'register'
        ? ['control-plane', 'data-plane']
        : ['control-plane', 'data-plane', 'workers'];
  drawn.push(...(await profiled(scenario, daemons)));
}

for (const d of drawn)
  printTable(
    `${d.scenario}: ${d.daemon}, ${d.sampled_ms} ms sampled, ${d.sampled_us_per_unit} µs per ${d.unit} (${d.what})`,
    ['self ms', 'share %', 'frame'],
    d.top.map((t) => [t.ms, t.share, t.frame]),
  );
process.stdout.write(`\nflame graphs in ${outDir}\n`);
writeResult(v.out, {
  benchmark: 'profile',
  machine: machine(),
  duration_s: durationS,
  profiles: drawn,
});

/** Runs `scenario` on a fresh cluster whose daemons profile themselves; draws `daemons`' profiles. */
async function profiled(scenario: Scenario, daemons: string[]): Promise<Drawn[]> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-profile-'));
  try {
    const cluster = await startCluster([
      '--runtime',
      'simulated',
      '--workers',
      String(scenario === 'cold' ? workers : 1),
      `--node-flags=--cpu-prof --cpu-prof-dir=${dir}`,
    ]);
    let load: Load;
    let pids: Map<string, number[]>;
    try {
      pids = await pidsByRole(cluster.registration);
      load = await run(scenario, cluster);
    } finally {
      // The profiles are written as the daemons exit.
      await cluster.stop();
    }
    return daemons.map((daemon) =>
      draw(scenario, daemon, profilesOf(dir, pids.get(daemon) ?? []), load),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(scenario: Scenario, cluster: Cluster): Promise<Load> {
  switch (scenario) {
    case 'warm':
      return warm(cluster);
    case 'register':
      return register(cluster);
    case 'cold':
      return cold(cluster);
  }
}

async function warm(cluster: Cluster): Promise<Load> {
  const name = 'profile-warm';
  await new ControlPlaneClient(cluster.registration).putFunction(name, {
    image: 'empty',
    minScale: 2,
    concurrency: 64,
  });
  await waitForSandboxes(cluster.registration, name, 2);
  const client = new H2cClient(cluster.proxy, 4);
  try {
    const send = async () => {
      const r = await client.request(name, { workload: 'empty' });
      return { status: r.status, ok: r.status === 200 };
    };
    await runOpenLoop({ rate: warmRate, durationMs: WARM_UP_MS, send });
    const from = nowUs();
    const r = await runOpenLoop({ rate: warmRate, durationMs: durationS * 1000, send });
    return {
      window: { fromUs: from, toUs: nowUs() },
      unit: 'request',
      units: r.shots.filter((s) => s.ok).length,
      what: `warm ${warmRate}/s for ${durationS} s, 2 sandboxes`,
    };
  } finally {
    await client.close();
  }
}

async function register(cluster: Cluster): Promise<Load> {
  const forms = Array.from({ length: registrations }, (_, i) =>
    dirigentForm(`profile-${i}`, 'empty'),
  );
  const from = nowUs();
  await registerMany(cluster.registration, forms, 1);
  return {
    window: { fromUs: from, toUs: nowUs() },
    unit: 'registration',
    units: registrations,
    what: `${registrations} registrations one after another, on a fresh control plane`,
  };
}

async function cold(cluster: Cluster): Promise<Load> {
  await waitForWorkers(cluster.registration, workers, performance.now(), 120_000);
  const warmUpS = WARM_UP_MS / 1000;
  const runner = await RpsRunner.prepare(cluster, 'cold', coldRate * Math.max(durationS, warmUpS));
  try {
    // The same functions again once the cluster is back at zero: each invocation is cold again.
    await runner.settle(coldRate);
    await runner.measure(coldRate, warmUpS);
    await runner.settle(coldRate);
    const from = nowUs();
    const step = await runner.measure(coldRate, durationS);
    return {
      window: { fromUs: from, toUs: nowUs() },
      unit: 'cold start',
      units: step.achieved * durationS - step.failures,
      what: `${coldRate} cold starts/s for ${durationS} s, ${workers} workers, 40 ms creation`,
    };
  } finally {
    await runner.close();
  }
}

/** The clock V8's profiles are stamped with (monotonic, µs). */
function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The profiles in `dir` written by processes `pids` (Node names them CPU.date.time.PID.thread.seq). */
function profilesOf(dir: string, pids: number[]): CpuProfile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && pids.includes(Number(f.split('.')[3])))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile);
}

function draw(scenario: Scenario, daemon: string, profiles: CpuProfile[], load: Load): Drawn {
  if (profiles.length === 0) throw new Error(`no profile was written by the ${daemon}`);
  // Several processes of one role (workers) are drawn as one.
  const folded = new Map<string, number>();
  for (const p of profiles)
    for (const [stack, us] of foldProfile(p, load.window))
      folded.set(stack, (folded.get(stack) ?? 0) + us);
  let sampledUs = 0;
  for (const us of folded.values()) sampledUs += us;
  const perUnit = round(sampledUs / Math.max(1, load.units), 1);
  const svg = join(outDir, `${scenario}-${daemon}.svg`);
  writeFileSync(
    svg,
    flameGraphSvg(folded, {
      title: `Baton ${daemon}: ${load.what}`,
      subtitle: `${round(sampledUs / 1000, 0)} ms of CPU sampled on its main thread, ${perUnit} µs per ${load.unit}; ${new Date().toISOString().slice(0, 10)}`,
    }),
  );
  return {
    scenario,
    daemon,
    what: load.what,
    unit: load.unit,
    units: load.units,
    sampled_ms: round(sampledUs / 1000, 1),
    sampled_us_per_unit: perUnit,
    svg,
    top: selfTimes(folded)
      .slice(0, TOP_FRAMES)
      .map(([frame, us]) => ({
        frame,
        ms: round(us / 1000, 1),
        share: round((100 * us) / Math.max(1, sampledUs), 1),
      })),
  };
}

function scenarioList(value: FlagValue): Scenario[] {
  const text = flagText(value, 'scenarios');
  if (text === undefined) return [...SCENARIOS];
  const list = text.split(',').map((s) => s.trim());
  if (list.some((s) => !(SCENARIOS as readonly string[]).includes(s)))
    badFlag(`--scenarios: "${text}" is not a list of ${SCENARIOS.join(', ')}`);
  return list as Scenario[];
}
