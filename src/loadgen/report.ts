/**
 * What a trace replay measured: reads a result directory written by
 * `baton loadgen trace` and summarises it as the paper does (§5.3):
 * per-invocation scheduling latency (end-to-end latency minus the execution
 * time the function reported), its mean per function, and per-function
 * slowdown (the geometric mean over a function's invocations of latency /
 * execution time). Invocations of the warm-up minutes are left out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { InvalidArgumentError, errorMessage } from '../shared/errors.js';
import { mean, percentile, round, sortedCopy } from './stats.js';
import { INVOCATION_COLUMNS, TIMELINE_COLUMNS, type RunMeta } from './trace-replay.js';

export interface InvocationRecord {
  function: string;
  sentMs: number;
  ok: boolean;
  latencyMs: number;
  /** As reported by the function; undefined for a failure or a body without it. */
  executionMs: number | undefined;
  /** `cold`, `queued`, `warm` (the data plane's x-baton-start), or '' when the target does not say. */
  start: string;
  warmup: boolean;
  failure: string;
}

export interface TimelinePoint {
  tMs: number;
  sandboxes: number;
  sandboxesCreated: number;
}

export interface LoadedRun {
  dir: string;
  meta: RunMeta;
  invocations: InvocationRecord[];
  timeline: TimelinePoint[];
}

export interface RunSummary {
  invocations: number;
  failures: number;
  /** Invocations that found their function without a sandbox (null: the target does not say). */
  cold_starts: number | null;
  /** Invocations that found every sandbox busy and waited. */
  queued: number | null;
  sched_p50_ms: number;
  sched_p99_ms: number;
  fn_sched_mean_p50_ms: number;
  fn_sched_mean_p99_ms: number;
  slowdown_p50: number;
  slowdown_p99: number;
  /** Sandboxes created after the warm-up (null: the target does not say). */
  sandboxes_created: number | null;
  functions_invoked: number;
}

/** Per-function aggregates behind the summary (and the plots). */
export interface RunDistributions {
  /** Per-invocation scheduling latency in ms, successful measured invocations. */
  schedulingMs: number[];
  /** Mean scheduling latency per function, ms. */
  functionMeanSchedulingMs: number[];
  /** Geometric-mean slowdown per function. */
  functionSlowdown: number[];
}

export function distributions(invocations: readonly InvocationRecord[]): RunDistributions {
  const schedulingMs: number[] = [];
  const byFunction = new Map<string, { sched: number[]; logSlowdown: number[] }>();
  for (const r of invocations) {
    if (r.warmup || !r.ok || r.executionMs === undefined) continue;
    const sched = r.latencyMs - r.executionMs;
    schedulingMs.push(sched);
    let f = byFunction.get(r.function);
    if (f === undefined) byFunction.set(r.function, (f = { sched: [], logSlowdown: [] }));
    f.sched.push(sched);
    // A function that reports 0 µs (the empty function) has no meaningful slowdown.
    if (r.executionMs > 0) f.logSlowdown.push(Math.log(r.latencyMs / r.executionMs));
  }
  const fns = [...byFunction.values()];
  return {
    schedulingMs,
    functionMeanSchedulingMs: fns.map((f) => mean(f.sched)),
    functionSlowdown: fns
      .filter((f) => f.logSlowdown.length > 0)
      .map((f) => Math.exp(mean(f.logSlowdown))),
  };
}

export function summarizeRun(
  invocations: readonly InvocationRecord[],
  timeline: readonly TimelinePoint[] = [],
  warmupEndMs = 0,
): RunSummary {
  const measured = invocations.filter((r) => !r.warmup);
  const d = distributions(measured);
  const sched = sortedCopy(d.schedulingMs);
  const fnSched = sortedCopy(d.functionMeanSchedulingMs);
  const slowdown = sortedCopy(d.functionSlowdown);
  const known = measured.some((r) => r.start !== '');
  return {
    invocations: measured.length,
    failures: measured.filter((r) => !r.ok).length,
    cold_starts: known ? measured.filter((r) => r.start === 'cold').length : null,
    queued: known ? measured.filter((r) => r.start === 'queued').length : null,
    sched_p50_ms: round(percentile(sched, 50), 3),
    sched_p99_ms: round(percentile(sched, 99), 3),
    fn_sched_mean_p50_ms: round(percentile(fnSched, 50), 3),
    fn_sched_mean_p99_ms: round(percentile(fnSched, 99), 3),
    slowdown_p50: round(percentile(slowdown, 50), 3),
    slowdown_p99: round(percentile(slowdown, 99), 3),
    sandboxes_created: sandboxesCreatedAfter(timeline, warmupEndMs),
    functions_invoked: new Set(measured.map((r) => r.function)).size,
  };
}

function sandboxesCreatedAfter(timeline: readonly TimelinePoint[], fromMs: number): number | null {
  if (timeline.length === 0) return null;
  let base = timeline[0]!;
  for (const p of timeline) if (p.tMs <= fromMs) base = p;
  return timeline.at(-1)!.sandboxesCreated - base.sandboxesCreated;
}

/** Reads a result directory; every problem names the file (and line). */
export function loadRun(dirArg: string): LoadedRun {
  const dir = resolve(dirArg);
  const metaPath = join(dir, 'run.json');
  if (!existsSync(metaPath))
    throw new InvalidArgumentError(
      `${dirArg}: not a replay result directory (no run.json; write one with 'baton loadgen trace --out DIR')`,
    );
  let meta: RunMeta;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8')) as RunMeta;
  } catch (err) {
    throw new InvalidArgumentError(`${metaPath}: ${errorMessage(err)}`);
  }
  const invocations = readCsv(join(dir, 'invocations.csv'), INVOCATION_COLUMNS).map(
    (c, i): InvocationRecord => {
      const line = i + 2;
      return {
        function: c.function,
        sentMs: numberCell(c.sent_ms, 'sent_ms', line, dir),
        ok: c.failure === '' && c.status === '200',
        latencyMs: numberCell(c.latency_ms, 'latency_ms', line, dir),
        executionMs:
          c.execution_ms === '' ? undefined : numberCell(c.execution_ms, 'execution_ms', line, dir),
        start: c.start,
        warmup: c.warmup === '1',
        failure: c.failure,
      };
    },
  );
  const timelinePath = join(dir, 'sandboxes.csv');
  const timeline = existsSync(timelinePath)
    ? readCsv(timelinePath, TIMELINE_COLUMNS).map((c, i) => ({
        tMs: numberCell(c.t_ms, 't_ms', i + 2, dir, 'sandboxes.csv'),
        sandboxes: numberCell(c.sandboxes, 'sandboxes', i + 2, dir, 'sandboxes.csv'),
        sandboxesCreated: numberCell(
          c.sandboxes_created,
          'sandboxes_created',
          i + 2,
          dir,
          'sandboxes.csv',
        ),
      }))
    : [];
  return { dir, meta: { ...meta, label: meta.label || basename(dir) }, invocations, timeline };
}

export function summarizeLoaded(run: LoadedRun): RunSummary {
  return summarizeRun(run.invocations, run.timeline, run.meta.warmupMinutes * 60_000);
}

function readCsv<C extends string>(path: string, columns: readonly C[]): Array<Record<C, string>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`${path}: ${errorMessage(err)}`);
  }
  let rows: Array<Record<string, string>>;
  try {
    rows = parse(text, { columns: true, skip_empty_lines: true });
  } catch (err) {
    throw new InvalidArgumentError(`${path}: ${errorMessage(err)}`);
  }
  const first = rows[0];
  if (first !== undefined)
    for (const c of columns)
      if (!(c in first)) throw new InvalidArgumentError(`${path}: missing column "${c}"`);
  return rows;
}

function numberCell(
  v: string,
  column: string,
  line: number,
  dir: string,
  file = 'invocations.csv',
): number {
  const n = Number(v);
  if (v === '' || !Number.isFinite(n))
    throw new InvalidArgumentError(`${join(dir, file)}:${line}: ${column} "${v}" is not a number`);
  return n;
}
