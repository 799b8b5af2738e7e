import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareRows,
  median,
  mostStolen,
  ratio,
  summarize,
  type Row,
  type System,
} from '../../../benchmarks/lib/compare-report.js';

const step = (
  system: System,
  run: number,
  p50: number,
  p99: number,
  failures = 0,
  cpu: Record<string, number> = {},
  steal = 0,
): Row => ({
  experiment: 'cold 250/s',
  system,
  run,
  p50_ms: p50,
  p99_ms: p99,
  achieved: 250,
  failures,
  cpu_us: cpu,
  steal_pct: steal,
});

const registrations = (system: System, run: number, total: number): Row => ({
  experiment: '500 registrations',
  system,
  run,
  p50_ms: null,
  p99_ms: null,
  achieved: null,
  failures: 0,
  total_ms: total,
  cpu_us: {},
  steal_pct: 0,
});

test('median: the middle value, the mean of the two middle ones, null for none', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, null, undefined]), 5);
  assert.equal(median([]), null);
  assert.equal(median([null]), null);
});

test('ratio: two decimals, two significant digits under 0.1, null without both', () => {
  assert.equal(ratio(1.2345, 1), 1.23);
  assert.equal(ratio(2.82, 1648.47), 0.0017);
  assert.equal(ratio(0, 5), 0);
  assert.equal(ratio(1, 0), null);
  assert.equal(ratio(null, 1), null);
  assert.equal(ratio(1, undefined), null);
});

test('summarize: medians of the runs, failures summed, CPU by role', () => {
  const s = summarize([
    step('baton', 1, 40, 90, 0, { 'data-plane': 300, 'control-plane': 100 }, 0.5),
    step('baton', 2, 44, 50, 2, { 'data-plane': 500 }, 12),
    step('baton', 3, 42, 70, 1, { 'data-plane': 400, 'control-plane': 120 }, 2),
  ]);
  assert.equal(s.steal_pct, 2);
  assert.equal(s.runs, 3);
  assert.equal(s.p50_ms, 42);
  assert.equal(s.p99_ms, 70);
  assert.equal(s.failures, 3);
  assert.equal(s.total_ms, null);
  // A role missing from one run is the median of the runs that have it.
  assert.deepEqual(s.cpu_us, { 'data-plane': 400, 'control-plane': 110 });
});

test('compareRows: ratios of the medians, and of each run where both systems ran', () => {
  const [c] = compareRows([
    step('dirigent', 1, 40, 50),
    step('baton', 1, 40, 100),
    step('dirigent', 2, 40, 60),
    step('baton', 2, 20, 30),
    step('dirigent', 3, 50, 200),
    // Baton's third run is missing (a step that failed to start, say): no ratio for run 3.
  ]);
  assert.equal(c!.experiment, 'cold 250/s');
  assert.equal(c!.dirigent!.p99_ms, 60);
  assert.equal(c!.baton!.p99_ms, 65);
  assert.equal(c!.ratio_main, 0.75);
  assert.equal(c!.ratio_p99, 1.08);
  assert.deepEqual(c!.ratio_main_per_run, [1, 0.5]);
  assert.deepEqual(c!.ratio_p99_per_run, [2, 0.5]);
});

test('compareRows: registrations are judged by their total time; steps keep their order', () => {
  const out = compareRows([
    registrations('dirigent', 1, 800),
    registrations('baton', 1, 1000),
    step('dirigent', 1, 40, 50),
    step('baton', 1, 40, 50),
    registrations('dirigent', 2, 900),
    registrations('baton', 2, 720),
  ]);
  assert.deepEqual(
    out.map((c) => c.experiment),
    ['500 registrations', 'cold 250/s'],
  );
  const [reg] = out;
  assert.equal(reg!.dirigent!.total_ms, 850);
  assert.equal(reg!.baton!.total_ms, 860);
  assert.equal(reg!.ratio_main, 1.01);
  assert.deepEqual(reg!.ratio_main_per_run, [1.25, 0.8]);
  assert.deepEqual(reg!.ratio_p99_per_run, [null, null]);
});

test('compareRows: one system only (--only) has no ratios', () => {
  const [c] = compareRows([step('baton', 1, 40, 50), step('baton', 2, 42, 52)]);
  assert.equal(c!.dirigent, undefined);
  assert.equal(c!.baton!.p50_ms, 41);
  assert.equal(c!.ratio_main, null);
  assert.equal(c!.ratio_p99, null);
  assert.deepEqual(c!.ratio_main_per_run, []);
});

test("mostStolen: the largest steal of one measurement's rows, 0 for none", () => {
  assert.equal(
    mostStolen([step('baton', 1, 40, 50, 0, {}, 3.5), step('baton', 1, 40, 50, 0, {}, 9)]),
    9,
  );
  assert.equal(mostStolen([]), 0);
});
