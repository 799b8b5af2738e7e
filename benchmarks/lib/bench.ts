/**
 * Shared machinery of the benchmark scripts: flags, starting `baton up`
 * (built code, ephemeral ports, a temporary data dir), each daemon's CPU
 * time per unit of work (/proc), printing a table and writing JSON. Registration and run summaries live in src/loadgen, shared
 * with `baton loadgen`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isolatedUpArgs, spawnBaton } from '../../src/cli/spawn-baton.js';
import { parseFlags, formatHelp, type FlagSpecs } from '../../src/shared/options.js';
import { round } from '../../src/loadgen/stats.js';

export const BATON_BIN = fileURLToPath(new URL('../../dist/cli/baton.js', import.meta.url));

/** The flag that runs another checkout's build: `--baton DIR`. */
export const BATON_FLAG: FlagSpecs = {
  baton: {
    type: 'string',
    description:
      'a checkout of Baton to run instead of this one, built (DIR/dist/cli/baton.js): another commit measured with the same client and harness',
    defaultText: 'this checkout',
    valueName: 'DIR',
  },
};

/**
 * The `baton` entry point `--baton DIR` names (this checkout's without it),
 * and its commit, read now: a tree edited while the run goes on is not what
 * ran. Exits when that checkout is not built.
 */
export function batonEntry(value: FlagValue): { entry: string; revision: string } {
  const dir = flagText(value, 'baton');
  const entry = dir === undefined ? BATON_BIN : join(resolve(dir), 'dist', 'cli', 'baton.js');
  if (!existsSync(entry))
    badFlag(`--baton: ${entry} does not exist (build that checkout first: npm run build)`);
  return { entry, revision: revision(dirname(entry), true) };
}

export function benchFlags(
  argv: string[],
  usage: string,
  summary: string,
  specs: FlagSpecs,
): Record<string, string | boolean | string[] | undefined> {
  const all: FlagSpecs = {
    ...specs,
    out: { type: 'string', description: 'write the JSON result here', valueName: 'FILE' },
    help: { type: 'boolean', short: 'h', description: 'show this help' },
  };
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    values = parseFlags(argv, all).values;
  } catch (err) {
    badFlag(err instanceof Error ? err.message : String(err));
  }
  if (values.help === true) {
    process.stdout.write(formatHelp(usage, summary, all));
    process.exit(0);
  }
  return values;
}

export type FlagValue = string | boolean | string[] | undefined;

/** A bad flag ends the benchmark with one line naming it, before anything starts. */
export function badFlag(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** The text of a string flag (the last one when repeated). */
export function flagText(value: FlagValue, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') badFlag(`--${name} needs a value`);
  return typeof value === 'string' ? value : value.at(-1);
}

export function intList(value: FlagValue, name: string, def: number[]): number[] {
  const text = flagText(value, name);
  if (text === undefined) return def;
  if (text === 'none') return [];
  const list = text.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isFinite(n) || n <= 0))
    badFlag(`--${name}: "${text}" is not a list of positive numbers`);
  return list;
}

/** An integer flag of at least `min`; a smaller or non-integer value is an error, not clamped. */
export function intFlag(value: FlagValue, name: string, def: number, min = 1): number {
  const text = flagText(value, name);
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) badFlag(`--${name}: "${text}" is not an integer >= ${min}`);
  return n;
}

/** The `--rates` and `--duration-s` flags every open-loop benchmark takes. */
export function stepFlagSpecs(what: string, defaultRates: readonly number[]): FlagSpecs {
  return {
    rates: {
      type: 'string',
      description: `${what} per second, one step each`,
      defaultText: defaultRates.join(','),
      valueName: 'LIST',
    },
    'duration-s': {
      type: 'string',
      description: 'length of each step',
      defaultText: String(DEFAULT_STEP_S),
      valueName: 'S',
    },
  };
}

export function stepOptions(
  v: Record<string, FlagValue>,
  defaultRates: number[],
): { rates: number[]; durationS: number } {
  return {
    rates: intList(v.rates, 'rates', defaultRates),
    durationS: intFlag(v['duration-s'], 'duration-s', DEFAULT_STEP_S),
  };
}

const DEFAULT_STEP_S = 10;

export interface Cluster {
  registration: string;
  proxy: string;
  stop: () => Promise<void>;
}

/** `baton up` with the given extra flags, every port ephemeral. */
const cleanups = new Set<() => Promise<void>>();
let interrupted = false;

/**
 * Runs `cleanup` if the benchmark is interrupted (SIGINT, SIGTERM) before
 * the returned function is called: what a benchmark started must not outlive
 * it. Call the returned function once the cleanup has happened normally.
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  if (cleanups.size === 0 && process.listenerCount('SIGINT') === 0) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.on(signal, () => {
        if (interrupted) return;
        interrupted = true;
        process.stderr.write(`${signal}: stopping what the benchmark started\n`);
        // Newest first: what was started last may depend on what was started before it.
        void (async () => {
          for (const cleanup of [...cleanups].reverse()) await cleanup().catch(() => undefined);
          process.exit(signal === 'SIGINT' ? 130 : 143);
        })();
      });
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

export async function startCluster(extra: string[], entry = BATON_BIN): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const { child, ready } = spawnBaton(isolatedUpArgs(dir, extra), {
    entry,
    readyTimeoutMs: 180_000,
    onStderr: (c) => process.stderr.write(c),
  });
  let pids: number[] = [];
  const stop = async () => {
    forget();
    child.kill('SIGTERM');
    await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const forget = onInterrupt(stop);
  const m = await ready.catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  const a = m.addresses as { registration: string; proxy: string; pids: number[] };
  pids = a.pids;
  return { registration: a.registration, proxy: a.proxy, stop };
}

export function printTable(
  title: string,
  headers: string[],
  rows: Array<Array<string | number | null>>,
): void {
  const cells = rows.map((r) => r.map((c) => (c === null ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i]!)).join('  ');
  process.stdout.write(`\n${title}\n${line(headers)}\n${cells.map(line).join('\n')}\n`);
}

export function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: process.platform,
  };
}

export function writeResult(out: unknown, value: unknown): void {
  if (typeof out !== 'string') return;
  const path = resolve(out);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  process.stdout.write(`\nwrote ${path}\n`);
}

/** Waits (up to 60 s) until `count` sandboxes of `name` are ready; returns the first one's address. */
export async function waitForSandboxes(
  registration: string,
  name: string,
  count: number,
): Promise<string> {
  const end = Date.now() + 60_000;
  for (;;) {
    const f = (await (await fetch(`${registration}/v1/functions/${name}`)).json()) as {
      sandboxes: number;
      sandboxList: Array<{ address: string | null; state: string }>;
    };
    const ready = f.sandboxList.filter((s) => s.state === 'ready' && s.address !== null);
    if (f.sandboxes >= count && ready.length > 0) return ready[0]!.address!;
    if (Date.now() > end) throw new Error(`sandboxes not ready after 60 s: ${JSON.stringify(f)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `baton up`'s daemons by name (control-plane, data-plane, worker-1, ...) and their pids, from /v1/status. */
export async function daemonPids(registration: string): Promise<Map<string, number>> {
  const status = (await (await fetch(`${registration}/v1/status`)).json()) as {
    supervised?: Array<{ name: string; pid: number | null }>;
  };
  const out = new Map<string, number>();
  for (const d of status.supervised ?? []) if (d.pid !== null) out.set(d.name, d.pid);
  return out;
}

/** The unit of a rate step's CPU (cpuPerUnit): the invocations answered in its `durationS`. */
export function answeredIn(durationS: number) {
  return (s: { achieved: number; failures: number }): number => s.achieved * durationS - s.failures;
}

/** `daemonPids` grouped by role (control-plane, data-plane, workers), for cpuPerUnit. */
export async function pidsByRole(registration: string): Promise<Map<string, number[]>> {
  const pids = new Map<string, number[]>();
  for (const [name, pid] of await daemonPids(registration)) addPidByRole(pids, name, pid);
  return pids;
}

/**
 * Waits until the control plane knows `count` workers (`baton up` reports
 * ready before every simulated worker has registered); the seconds since
 * `since` (a performance.now()) when they all had. Throws after `timeoutMs`.
 */
export async function waitForWorkers(
  registration: string,
  count: number,
  since: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let known = 0;
  while (performance.now() < deadline) {
    const status = (await (await fetch(`${registration}/v1/status`)).json()) as {
      workers?: unknown[];
    };
    known = status.workers?.length ?? 0;
    if (known >= count) return round((performance.now() - since) / 1000, 1);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`only ${known} of ${count} workers registered within ${timeoutMs / 1000} s`);
}

/** Adds a daemon's pid under its role, for cpuPerUnit: every worker process counts as `workers`. */
export function addPidByRole(pids: Map<string, number[]>, name: string, pid: number): void {
  const role = name.startsWith('worker') ? 'workers' : name;
  pids.set(role, [...(pids.get(role) ?? []), pid]);
}

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, inside parentheses).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/**
 * Clock ticks the hypervisor ran other guests while this machine's CPUs
 * were ready to run (steal), summed over the CPUs: the eighth figure of
 * /proc/stat's `cpu` line (0 where the kernel does not count it).
 */
export function stolenTicks(procStat = readFileSync('/proc/stat', 'utf8')): number {
  const fields = procStat.slice(0, procStat.indexOf('\n')).trim().split(/\s+/);
  if (fields[0] !== 'cpu')
    throw new Error(`/proc/stat does not start with the cpu line: ${fields[0]}`);
  return Number(fields[8] ?? 0) || 0;
}

/**
 * The share of the machine's CPU time (every CPU's) that was stolen, in
 * percent, one decimal: `ticks` stolen over `seconds` of `cpus` CPUs.
 */
export function stealPercent(
  ticks: number,
  seconds: number,
  cpus: number,
  ticksPerS = CLOCK_TICKS_PER_S,
): number {
  if (seconds <= 0 || cpus <= 0) return 0;
  return round((ticks / (seconds * cpus * ticksPerS)) * 100, 1);
}

/**
 * Microseconds of CPU per unit of work each named process (or group of
 * processes, summed: the workers of a role) spent while `run` ran, and the
 * share of the machine's CPU time the hypervisor took meanwhile (steal): a
 * VM whose neighbours are busy loses CPU in spells of minutes, which shows
 * in latency but not in a process's CPU time.
 */
export async function cpuPerUnit<T>(
  pids: ReadonlyMap<string, number | readonly number[]>,
  run: () => Promise<T>,
  units: (result: T) => number,
): Promise<{ result: T; cpuUsPerUnit: Record<string, number>; stealPct: number }> {
  const cpuOf = (p: number | readonly number[]) =>
    typeof p === 'number' ? cpuSeconds(p) : p.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const before = new Map([...pids].map(([name, p]) => [name, cpuOf(p)]));
  const stolenBefore = stolenTicks();
  const t0 = performance.now();
  const result = await run();
  const stealPct = stealPercent(
    stolenTicks() - stolenBefore,
    (performance.now() - t0) / 1000,
    cpus().length,
  );
  const n = Math.max(1, units(result));
  const cpuUsPerUnit: Record<string, number> = {};
  for (const [name, p] of pids)
    cpuUsPerUnit[name] = round(((cpuOf(p) - before.get(name)!) * 1e6) / n, 1);
  return { result, cpuUsPerUnit, stealPct };
}

/** A checkout's commit, for the report; with `dirty`, marked `-dirty` when tracked files differ from it. */
export function revision(checkout: string, dirty = false): string {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', checkout, ...args], { encoding: 'utf8' }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    return dirty && git('status', '--porcelain', '--untracked-files=no') !== ''
      ? `${commit}-dirty`
      : commit;
  } catch {
    return 'checkout';
  }
}
