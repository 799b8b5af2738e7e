/** Summary statistics for latency samples; pure. */
import { isLate, type Shot } from './open-loop.js';

/** The p-th percentile (0..100) by nearest rank over sorted values; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function sortedCopy(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Median and 99th percentile of latencies in ms, rounded to microseconds. */
export function latencyPercentiles(latenciesMs: readonly number[]): {
  p50_ms: number;
  p99_ms: number;
} {
  const sorted = sortedCopy(latenciesMs);
  return { p50_ms: round(percentile(sorted, 50), 3), p99_ms: round(percentile(sorted, 99), 3) };
}

/** One constant-rate step of an open-loop run. */
export interface RateStep {
  rate: number;
  achieved: number;
  p50_ms: number;
  p99_ms: number;
  failures: number;
  requests: number;
  /** Sends more than LATE_SEND_MS behind schedule (the generator could not keep up). */
  late_sends: number;
}

export function summarizeStep(rate: number, shots: readonly Shot[], durationMs: number): RateStep {
  const ok = shots.filter((s) => s.ok);
  return {
    rate,
    achieved: round(ok.length / (durationMs / 1000), 1),
    ...latencyPercentiles(ok.map((s) => s.latencyMs)),
    failures: shots.length - ok.length,
    requests: shots.length,
    late_sends: shots.filter(isLate).length,
  };
}

/** Failures grouped by status and reason: `3 x 503 no sandbox within 60000 ms`. */
export function failureSample(shots: readonly Shot[]): string[] {
  const seen = new Map<string, number>();
  for (const s of shots) {
    if (s.ok) continue;
    const kind = `${s.status} ${s.error ?? ''}`.trim();
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
  }
  return [...seen].map(([k, n]) => `${n} x ${k}`);
}
