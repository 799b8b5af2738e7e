/**
 * When each invocation of a trace is sent, and what it asks for. For every
 * function and minute of the window, that minute's N invocations are spread
 * over the minute by the chosen inter-arrival distribution, as InVitro does:
 * `equidistant` (60/N apart), `uniform` (independent uniform times, sorted) or
 * `exponential` (N exponential gaps scaled so that all N fall inside the
 * minute). Each invocation gets an execution time and a memory size sampled
 * from the function's percentile rows (a uniform quantile, interpolated
 * linearly between the listed percentiles).
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { InvalidArgumentError } from '../shared/errors.js';
import { DURATION_PERCENTILES, MEMORY_PERCENTILES, type Trace } from './trace-reader.js';

export const IAT_DISTRIBUTIONS = ['exponential', 'equidistant', 'uniform'] as const;
export type IatDistribution = (typeof IAT_DISTRIBUTIONS)[number];

export interface ScheduledInvocation {
  /** ms from the start of the replay. */
  atMs: number;
  /** Index into the trace's functions. */
  fn: number;
  /** Requested execution time, whole ms (at least 1). */
  execMs: number;
  /** Requested memory, whole MiB (at least 1). */
  memoryMib: number;
}

const MINUTE_MS = 60_000;

/** Every invocation of the trace's window, in send order. */
export function buildSchedule(
  trace: Trace,
  iat: IatDistribution,
  seed: number,
): ScheduledInvocation[] {
  if (!IAT_DISTRIBUTIONS.includes(iat))
    throw new InvalidArgumentError(
      `--iat: unknown distribution "${String(iat)}" (expected one of ${IAT_DISTRIBUTIONS.join(', ')})`,
    );
  const rng = xoroshiro128plus(seed);
  const out: ScheduledInvocation[] = [];
  trace.functions.forEach((f, fn) => {
    f.perMinute.forEach((n, minute) => {
      for (const offset of arrivalsInMinute(n, iat, rng))
        out.push({
          atMs: minute * MINUTE_MS + offset,
          fn,
          execMs: Math.max(
            1,
            Math.round(samplePercentiles(f.durationPercentiles, DURATION_PERCENTILES, rng)),
          ),
          memoryMib: Math.max(
            1,
            Math.round(samplePercentiles(f.memoryPercentiles, MEMORY_PERCENTILES, rng)),
          ),
        });
    });
  });
  return out.sort((a, b) => a.atMs - b.atMs || a.fn - b.fn);
}

/** `n` offsets in [0, 60000) ms, ascending. */
export function arrivalsInMinute(n: number, iat: IatDistribution, rng: RandomGenerator): number[] {
  if (n <= 0) return [];
  switch (iat) {
    case 'equidistant':
      return Array.from({ length: n }, (_, i) => (i * MINUTE_MS) / n);
    case 'uniform':
      return Array.from({ length: n }, () => uniformFloat64(rng) * MINUTE_MS).sort((a, b) => a - b);
    case 'exponential': {
      // n gaps before the n arrivals plus one after the last; scaled to the minute.
      const gaps = Array.from({ length: n + 1 }, () => -Math.log(1 - uniformFloat64(rng)));
      const scale = MINUTE_MS / gaps.reduce((a, b) => a + b, 0);
      const out: number[] = [];
      let t = 0;
      for (let i = 0; i < n; i++) {
        t += gaps[i]! * scale;
        out.push(Math.min(t, MINUTE_MS - 1e-6));
      }
      return out;
    }
  }
}

/** A value at a uniform random quantile of a distribution given by percentile points. */
export function samplePercentiles(
  values: readonly number[],
  percentiles: readonly number[],
  rng: RandomGenerator,
): number {
  const q = uniformFloat64(rng) * 100;
  if (q <= percentiles[0]!) return values[0]!;
  for (let i = 1; i < percentiles.length; i++) {
    const p0 = percentiles[i - 1]!;
    const p1 = percentiles[i]!;
    if (q <= p1) return values[i - 1]! + ((values[i]! - values[i - 1]!) * (q - p0)) / (p1 - p0);
  }
  return values.at(-1)!;
}
