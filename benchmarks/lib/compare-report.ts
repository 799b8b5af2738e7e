/**
 * bench:compare's summary: each step's runs on each system (one per
 * `--repeat`) reduced to their medians, Baton's over Dirigent's, and, with
 * several runs, the ratio in each run (the two systems run one right after
 * the other, so a run's ratio is measured in one stretch of the machine's
 * weather). Pure: compare.ts measures, this only reduces.
 */
import { round } from '../../src/loadgen/stats.js';

export const SYSTEMS = ['dirigent', 'baton'] as const;
export type System = (typeof SYSTEMS)[number];

/** One measurement of one step on one system. */
export interface Row {
  experiment: string;
  system: System;
  /** 1-based: the how-manieth run of this step (`--repeat`). */
  run: number;
  p50_ms: number | null;
  p99_ms: number | null;
  achieved: number | null;
  failures: number;
  /** Registrations: the batch's wall time. */
  total_ms?: number;
  /** CPU µs per invocation (registration), by daemon role. */
  cpu_us: Record<string, number>;
  /** Percent of the machine's CPU time the hypervisor took while it was measured (steal). */
  steal_pct: number;
  /** InVitro's output of this run (its per-invocation CSVs), in the work folder (`--keep-work`). */
  invitro_folder?: string;
}

/** The median of one system's runs of one step. */
export interface Summary {
  runs: number;
  p50_ms: number | null;
  p99_ms: number | null;
  achieved: number | null;
  /** Summed over the runs, not a median: one failure anywhere shows. */
  failures: number;
  total_ms: number | null;
  cpu_us: Record<string, number>;
  steal_pct: number | null;
}

/** The middle value (the mean of the two middle ones for an even count); null when none. */
export function median(values: readonly (number | null | undefined)[]): number | null {
  const known = values.filter((v): v is number => v != null).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const mid = known.length >> 1;
  return known.length % 2 === 1 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2;
}

export function summarize(rows: readonly Row[]): Summary {
  const roles = new Set(rows.flatMap((r) => Object.keys(r.cpu_us)));
  const cpu: Record<string, number> = {};
  for (const role of roles) {
    const m = median(rows.map((r) => r.cpu_us[role]));
    if (m !== null) cpu[role] = round(m, 1);
  }
  const med = (pick: (r: Row) => number | null | undefined, digits: number) => {
    const m = median(rows.map(pick));
    return m === null ? null : round(m, digits);
  };
  return {
    runs: rows.length,
    p50_ms: med((r) => r.p50_ms, 2),
    p99_ms: med((r) => r.p99_ms, 2),
    achieved: med((r) => r.achieved, 1),
    failures: rows.reduce((s, r) => s + r.failures, 0),
    total_ms: med((r) => r.total_ms, 1),
    cpu_us: cpu,
    steal_pct: med((r) => r.steal_pct, 1),
  };
}

/** The most stolen of `rows` (one measurement's: a registration run has two batches). */
export function mostStolen(rows: readonly Row[]): number {
  return Math.max(0, ...rows.map((r) => r.steal_pct));
}

/**
 * Baton's over Dirigent's, two decimals (two significant digits under 0.1,
 * so a p99 thousands of times Dirigent's shows as 0.0017, not 0); null when
 * either is missing or Dirigent's is 0.
 */
export function ratio(b: number | null | undefined, d: number | null | undefined): number | null {
  if (b == null || d == null || d === 0) return null;
  const r = b / d;
  return r !== 0 && Math.abs(r) < 0.1 ? Number(r.toPrecision(2)) : round(r, 2);
}

/** A step's figures: the medians on each system and the ratios that judge it. */
export interface Comparison {
  experiment: string;
  dirigent: Summary | undefined;
  baton: Summary | undefined;
  /** Of the medians: total time for registrations, p50 otherwise. */
  ratio_main: number | null;
  ratio_p99: number | null;
  /** The same ratio in each run where both systems have one, in run order. */
  ratio_main_per_run: (number | null)[];
  ratio_p99_per_run: (number | null)[];
}

const main = (r: { total_ms?: number | null; p50_ms: number | null }) =>
  r.total_ms != null ? r.total_ms : r.p50_ms;

/** Every step in the order first measured. */
export function compareRows(rows: readonly Row[]): Comparison[] {
  const experiments = [...new Set(rows.map((r) => r.experiment))];
  return experiments.map((experiment) => {
    const of = (s: System) => rows.filter((r) => r.experiment === experiment && r.system === s);
    const d = of('dirigent');
    const b = of('baton');
    const dSum = d.length > 0 ? summarize(d) : undefined;
    const bSum = b.length > 0 ? summarize(b) : undefined;
    const runs = [...new Set([...d, ...b].map((r) => r.run))].sort((x, y) => x - y);
    const pairs = runs.flatMap((run) => {
      const dr = d.find((r) => r.run === run);
      const br = b.find((r) => r.run === run);
      return dr === undefined || br === undefined ? [] : [[dr, br] as const];
    });
    return {
      experiment,
      dirigent: dSum,
      baton: bSum,
      ratio_main: dSum && bSum ? ratio(main(bSum), main(dSum)) : null,
      ratio_p99: ratio(bSum?.p99_ms, dSum?.p99_ms),
      ratio_main_per_run: pairs.map(([dr, br]) => ratio(main(br), main(dr))),
      ratio_p99_per_run: pairs.map(([dr, br]) => ratio(br.p99_ms, dr.p99_ms)),
    };
  });
}
