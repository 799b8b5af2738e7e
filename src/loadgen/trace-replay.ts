/**
 * Replays a trace against a Dirigent-compatible cluster, as InVitro does:
 * registers every function through the form API, then sends each scheduled
 * invocation at its time over h2c with the trace workload headers, and
 * records what came back. A result directory holds:
 *
 * - `run.json`: what was replayed, against what, in which execution mode;
 * - `invocations.csv`: one row per invocation (INVOCATION_COLUMNS);
 * - `sandboxes.csv`: the cluster's sandbox count once a second (Baton
 *   targets only: read from the control plane's `/v1/metrics`).
 *
 * `baton report` reads such directories.
 */
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { request } from 'undici';
import { UnavailableError } from '../shared/errors.js';
import { H2cClient, type H2Reply } from './h2c-client.js';
import { isLate, runSchedule, type Shot, type ShotResult } from './open-loop.js';
import { buildSchedule, type IatDistribution, type ScheduledInvocation } from './trace-schedule.js';
import type { Trace } from './trace-reader.js';
import { clusterMetrics, dirigentForm, registerMany } from './dirigent-client.js';
import type { RpsTarget } from './rps.js';

export const INVOCATION_COLUMNS = [
  'scheduled_ms',
  'sent_ms',
  'function',
  'status',
  'latency_ms',
  'execution_ms',
  'scheduling_ms',
  'start',
  'requested_ms',
  'requested_mib',
  'warmup',
  'failure',
] as const;

export const TIMELINE_COLUMNS = [
  't_ms',
  'sandboxes',
  'inflight',
  'queued',
  'sandboxes_created',
] as const;

/** How the functions executed: `simulated` waits the requested time, `busy-loop` burns CPU. */
export type ExecutionMode = 'simulated' | 'busy-loop' | 'unknown';

export interface RunMeta {
  tool: 'baton loadgen trace';
  label: string;
  startedAt: string;
  trace: { dir: string; firstMinute: string; minutes: number; functions: number };
  warmupMinutes: number;
  iat: IatDistribution;
  seed: number;
  execution: ExecutionMode;
  target: { registration: string; proxy: string };
  functions: Array<{ name: string; hash: string; image: string }>;
  scheduled: number;
  sent: number;
  lateSends: number;
  maxLateMs: number;
  durationMs: number;
}

export interface ReplayProgress {
  total: number;
  sent: number;
  answered: number;
  failed: number;
  late: number;
}

export interface ReplayOptions {
  /** The window to replay, warm-up minutes included at its start. */
  trace: Trace;
  warmupMinutes: number;
  iat: IatDistribution;
  seed: number;
  target: RpsTarget;
  /** Registers every function with this image instead of dirigent.csv's (e.g. `simulated-trace`). */
  image?: string;
  outDir: string;
  label?: string;
  onProgress?: (p: ReplayProgress) => void;
  /** Called once the target answered and the functions are registered, before the first invocation. */
  onStart?: () => void;
  signal?: AbortSignal;
}

interface InvocationResult extends ShotResult {
  body: string;
  start: string;
}

const REGISTRATION_CONCURRENCY = 8;
const TIMELINE_INTERVAL_MS = 1_000;
const PROGRESS_INTERVAL_MS = 500;
/** Beyond its execution time, how long an invocation may take before it counts as failed. */
const ANSWER_GRACE_MS = 120_000;

/** Function names from trace hashes: `trace-<index>-<first 12 hex digits>`. */
export function functionNames(trace: Trace): string[] {
  return trace.functions.map(
    (f, i) =>
      `trace-${i}-${f.hash
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 12)}`,
  );
}

export async function replayTrace(o: ReplayOptions): Promise<RunMeta> {
  const outDir = resolve(o.outDir);
  const client = new H2cClient(o.target.proxy, 4);
  try {
    return await replay(o, outDir, client);
  } finally {
    await client.close();
  }
}

async function replay(o: ReplayOptions, outDir: string, client: H2cClient): Promise<RunMeta> {
  // Any answer will do (a Dirigent data plane may not serve /health); no connection will not.
  const probe = await client.request(new URL(o.target.proxy).host, {}, '/health', 5_000);
  if (probe.status === 0)
    throw new UnavailableError(
      `cannot reach the data plane at ${o.target.proxy}: ${probe.error ?? 'no answer'}`,
    );
  const names = functionNames(o.trace);
  const images = o.trace.functions.map((f) => o.image ?? f.deployment.image);
  await registerMany(
    o.target.registration,
    o.trace.functions.map((f, i) =>
      dirigentForm(
        names[i]!,
        images[i]!,
        {
          scaling_upper_bound: String(f.deployment.scalingUpperBound),
          scaling_lower_bound: String(f.deployment.scalingLowerBound),
          iteration_multiplier: String(f.deployment.iterationMultiplier),
        },
        { number: f.deployment.port, protocol: f.deployment.protocol },
      ),
    ),
    REGISTRATION_CONCURRENCY,
  );
  const execution = await executionMode(o.target.registration, images);
  const schedule = buildSchedule(o.trace, o.iat, o.seed);
  const warmupEndMs = o.warmupMinutes * 60_000;

  mkdirSync(outDir, { recursive: true });
  o.onStart?.();
  const csv = createWriteStream(join(outDir, 'invocations.csv'));
  csv.write(stringify([INVOCATION_COLUMNS]));
  const timeline = createWriteStream(join(outDir, 'sandboxes.csv'));
  timeline.write(stringify([TIMELINE_COLUMNS]));

  const progress: ReplayProgress = {
    total: schedule.length,
    sent: 0,
    answered: 0,
    failed: 0,
    late: 0,
  };
  let maxLateMs = 0;
  const startedAt = new Date();
  const t0 = performance.now();
  const stopTimeline = pollTimeline(o.target.registration, timeline, t0);
  const progressTimer = setInterval(() => o.onProgress?.({ ...progress }), PROGRESS_INTERVAL_MS);
  let run;
  try {
    run = await runSchedule<InvocationResult>({
      count: schedule.length,
      atMs: (i) => schedule[i]!.atMs,
      send: (i) => {
        progress.sent++;
        return invoke(client, names, o.trace, schedule[i]!);
      },
      onShot: (shot) => {
        progress.answered++;
        if (!shot.ok) progress.failed++;
        if (isLate(shot)) progress.late++;
        maxLateMs = Math.max(maxLateMs, shot.sentMs - shot.scheduledMs);
        const inv = schedule[shot.index]!;
        csv.write(stringify([invocationRow(shot, inv, names[inv.fn]!, inv.atMs < warmupEndMs)]));
      },
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  } finally {
    clearInterval(progressTimer);
    await stopTimeline();
    await Promise.all([endStream(csv), endStream(timeline)]);
  }
  o.onProgress?.({ ...progress });
  const meta: RunMeta = {
    tool: 'baton loadgen trace',
    label: o.label ?? `${execution} ${o.trace.functions.length} functions`,
    startedAt: startedAt.toISOString(),
    trace: {
      dir: o.trace.dir,
      firstMinute: o.trace.firstMinuteLabel,
      minutes: o.trace.minutes,
      functions: o.trace.functions.length,
    },
    warmupMinutes: o.warmupMinutes,
    iat: o.iat,
    seed: o.seed,
    execution,
    target: { registration: o.target.registration, proxy: o.target.proxy },
    functions: o.trace.functions.map((f, i) => ({
      name: names[i]!,
      hash: f.hash,
      image: images[i]!,
    })),
    scheduled: schedule.length,
    sent: run.shots.length,
    lateSends: progress.late,
    maxLateMs: Math.round(maxLateMs * 100) / 100,
    durationMs: Math.round(run.elapsedMs),
  };
  writeFileSync(join(outDir, 'run.json'), `${JSON.stringify(meta, null, 2)}\n`);
  return meta;
}

async function invoke(
  client: H2cClient,
  names: string[],
  trace: Trace,
  inv: ScheduledInvocation,
): Promise<InvocationResult> {
  const name = names[inv.fn]!;
  const r: H2Reply = await client.request(
    name,
    {
      workload: 'trace',
      function: name,
      requested_cpu: String(inv.execMs),
      requested_memory: String(inv.memoryMib),
      multiplier: String(trace.functions[inv.fn]!.deployment.iterationMultiplier),
    },
    '/',
    inv.execMs + ANSWER_GRACE_MS,
  );
  const start = typeof r.headers['x-baton-start'] === 'string' ? r.headers['x-baton-start'] : '';
  const ok = r.error === undefined && r.status === 200 && r.body.length > 0;
  const failure = ok
    ? undefined
    : (r.error ?? (r.body.trim().split('\n')[0] || `status ${r.status} with an empty body`));
  return {
    status: r.status,
    ok,
    body: r.body,
    start,
    ...(failure === undefined ? {} : { error: failure }),
  };
}

function invocationRow(
  shot: Shot<InvocationResult>,
  inv: ScheduledInvocation,
  name: string,
  warmup: boolean,
): Array<string | number> {
  const execMs = shot.ok ? reportedExecutionMs(shot.body) : undefined;
  return [
    shot.scheduledMs.toFixed(3),
    shot.sentMs.toFixed(3),
    name,
    shot.status,
    shot.latencyMs.toFixed(3),
    execMs === undefined ? '' : execMs.toFixed(3),
    execMs === undefined ? '' : (shot.latencyMs - execMs).toFixed(3),
    shot.start,
    inv.execMs,
    inv.memoryMib,
    warmup ? 1 : 0,
    shot.error ?? '',
  ];
}

/** The trace function's `ExecutionTime` (µs) in ms, if the body carries one. */
export function reportedExecutionMs(body: string): number | undefined {
  try {
    const v = (JSON.parse(body) as { ExecutionTime?: unknown }).ExecutionTime;
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v / 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Simulated when every image is `simulated-trace` or every worker runs the
 * simulated runtime (Baton's `/v1/status` says so); busy-loop when workers
 * run real sandboxes and the images are the trace function.
 */
async function executionMode(registration: string, images: string[]): Promise<ExecutionMode> {
  if (images.every((i) => i === 'simulated-trace')) return 'simulated';
  try {
    const res = await request(`${registration}/v1/status`, { headersTimeout: 5_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) return 'unknown';
    const runtimes = new Set(
      (JSON.parse(text) as { workers?: Array<{ runtime?: string }> }).workers?.map(
        (w) => w.runtime,
      ),
    );
    if (runtimes.size === 1 && runtimes.has('simulated')) return 'simulated';
    if (runtimes.size > 0 && !runtimes.has('simulated')) return 'busy-loop';
    return 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Samples the control plane's sandbox count once a second; resolves the stop function's promise when the last sample is written. */
function pollTimeline(registration: string, out: WriteStream, t0: number): () => Promise<void> {
  let stopped = false;
  let supported = true;
  let pending: Promise<void> = Promise.resolve();
  const sample = () => {
    pending = clusterMetrics(registration).then((m) => {
      if (m === undefined) {
        supported = false;
        return;
      }
      out.write(
        stringify([
          [
            Math.round(performance.now() - t0),
            m.sandboxes,
            m.inflight,
            m.queued,
            m.sandboxesCreated,
          ],
        ]),
      );
    });
  };
  sample();
  const timer = setInterval(() => {
    if (!stopped && supported) sample();
  }, TIMELINE_INTERVAL_MS);
  return async () => {
    stopped = true;
    clearInterval(timer);
    await pending;
    if (supported) {
      sample();
      await pending;
    }
  };
}

function endStream(s: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.end(() => resolve());
  });
}
