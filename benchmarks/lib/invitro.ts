/**
 * InVitro (vhive-serverless/loader, branch rps_mode), the paper's load
 * generator, as bench:compare's client: built from a checkout, run once per
 * step in its Dirigent-RPS mode (h2c, the registration form, one warm
 * function or one function per cold start repeated every cooldown), and its
 * per-invocation CSV read back. It registers its own functions; a step's
 * CPU is counted from when it starts invoking.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RpsMode } from '../../src/loadgen/rps.js';
import { latencyPercentiles, round } from '../../src/loadgen/stats.js';
import { goBinary } from './dirigent.js';

/** InVitro's cold functions are each invoked again after this long (its default). */
const COOLDOWN_S = 10;
/**
 * A request unanswered this long is a failure (InVitro's HTTP client
 * time-out, GRPCFunctionTimeoutSeconds; its default of 900 s kept a step
 * of Dirigent's at 1000 warm/s waiting for minutes on requests never
 * answered). Baton's own cold-start time-out is the same.
 */
const REQUEST_TIMEOUT_S = 60;
/** Past its minutes and that time-out, a run still going is stopped and the step fails. */
const EXIT_GRACE_MS = 60_000;
const STARTS_INVOKING = 'Starting function invocation driver';

/** Builds InVitro's loader from `checkout` into `outDir`; returns the binary's path. */
export function buildInvitro(checkout: string, outDir: string): string {
  if (!existsSync(join(checkout, 'cmd', 'loader.go')))
    throw new Error(`${checkout} is not a checkout of vhive-serverless/loader (no cmd/loader.go)`);
  mkdirSync(outDir, { recursive: true });
  const bin = join(outDir, 'loader');
  execFileSync(goBinary(), ['build', '-o', bin, './cmd/loader.go'], {
    cwd: checkout,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return bin;
}

export interface InvitroStep {
  rate: number;
  achieved: number;
  p50_ms: number;
  p99_ms: number;
  failures: number;
}

export interface InvitroRun {
  /** Resolves once it has registered its functions and starts invoking. */
  readonly invoking: Promise<void>;
  /** Resolves with the step's figures when it has finished. */
  readonly done: Promise<InvitroStep>;
}

/**
 * Runs one step: `rate` invocations per second for `minutes` (InVitro's
 * unit), all cold or all warm, against the system whose registration
 * server is at `registration` (host:port). Files go to `dir`.
 */
export function runInvitro(
  bin: string,
  registration: string,
  mode: RpsMode,
  rate: number,
  minutes: number,
  dir: string,
): InvitroRun {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(invitroConfig(registration, mode, rate, minutes, dir)));
  const child = spawn(bin, ['--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let markInvoking: () => void = () => undefined;
  const invoking = new Promise<void>((r) => (markInvoking = r));
  const onOutput = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
    if (log.includes(STARTS_INVOKING)) markInvoking();
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const done = new Promise<InvitroStep>((resolve, reject) => {
    const limitMs = (minutes * 60 + REQUEST_TIMEOUT_S) * 1000 + EXIT_GRACE_MS;
    const overdue = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('error', (err) => {
      clearTimeout(overdue);
      markInvoking();
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(overdue);
      markInvoking();
      if (code !== 0) {
        const why =
          signal === 'SIGKILL'
            ? `still running after ${limitMs / 1000} s`
            : `exited with ${code ?? signal}`;
        reject(new Error(`InVitro ${why}: ${log.slice(-2000)}`));
        return;
      }
      try {
        resolve(readResults(join(dir, `out_duration_${minutes}.csv`), rate, minutes));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
  // The caller awaits `invoking` first: a failed start must not count as unhandled meanwhile.
  done.catch(() => undefined);
  return { invoking, done };
}

function invitroConfig(
  registration: string,
  mode: RpsMode,
  rate: number,
  minutes: number,
  dir: string,
) {
  return {
    Seed: 42,
    Platform: 'Dirigent-RPS',
    InvokeProtocol: 'http2',
    EndpointPort: 80,
    DirigentControlPlaneIP: registration,
    BusyLoopOnSandboxStartup: false,
    AsyncMode: false,
    AsyncResponseURL: '',
    AsyncWaitToCollectMin: 1,
    RpsTarget: rate,
    RpsColdStartRatioPercentage: mode === 'cold' ? 100 : 0,
    RpsCooldownSeconds: COOLDOWN_S,
    RpsImage: 'docker.io/cvetkovic/dirigent_empty_function:latest',
    RpsRuntimeMs: 10,
    RpsMemoryMB: 2048,
    RpsIterationMultiplier: 80,
    TracePath: 'data/traces/example',
    Granularity: 'minute',
    OutputPathPrefix: join(dir, 'out'),
    IATDistribution: 'equidistant',
    CPULimit: '1vCPU',
    ExperimentDuration: minutes,
    WarmupDuration: 0,
    IsPartiallyPanic: false,
    EnableZipkinTracing: false,
    EnableMetricsScrapping: false,
    MetricScrapingPeriodSeconds: 15,
    AutoscalingMetric: 'concurrency',
    GRPCConnectionTimeoutSeconds: 5,
    GRPCFunctionTimeoutSeconds: REQUEST_TIMEOUT_S,
  };
}

/** InVitro's per-invocation CSV: responseTime in µs; a time-out of either kind is a failure. */
function readResults(csv: string, rate: number, minutes: number): InvitroStep {
  const [header, ...rows] = readFileSync(csv, 'utf8').trim().split('\n');
  const cols = header!.split(',');
  const at = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`${csv}: no column ${name}`);
    return i;
  };
  const [response, connection, timeout] = [
    at('responseTime'),
    at('connectionTimeout'),
    at('functionTimeout'),
  ];
  const latencies: number[] = [];
  let failures = 0;
  for (const row of rows) {
    const f = row.split(',');
    if (f[connection] === 'true' || f[timeout] === 'true') failures++;
    else latencies.push(Number(f[response]) / 1000);
  }
  const { p50_ms, p99_ms } = latencyPercentiles(latencies);
  return { rate, achieved: round(rows.length / (minutes * 60), 1), p50_ms, p99_ms, failures };
}
