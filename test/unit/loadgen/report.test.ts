/** Replay summaries on hand-computed data; result directories read back; the HTML page's content. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  distributions,
  loadRun,
  summarizeRun,
  type InvocationRecord,
} from '../../../src/loadgen/report.js';
import { cdfPoints, niceTicks, renderReport } from '../../../src/loadgen/report-html.js';
import { reportedExecutionMs } from '../../../src/loadgen/trace-replay.js';
import { writeResultDir } from '../../helpers/replay-results.js';

const inv = (
  fn: string,
  latencyMs: number,
  executionMs: number | undefined,
  extra: Partial<InvocationRecord> = {},
): InvocationRecord => ({
  function: fn,
  sentMs: 0,
  ok: true,
  latencyMs,
  executionMs,
  start: 'warm',
  warmup: false,
  failure: '',
  ...extra,
});

describe('replay summary', () => {
  // Function a: slowdowns 2 and 8 (geometric mean 4), scheduling 10 and 70 ms (mean 40).
  // Function b: slowdowns 1.5 and 1.5 (geometric mean 1.5), scheduling 1 and 1 ms (mean 1).
  // Function c: one slowdown of 1.25 (scheduling 5 ms).
  const records = [
    inv('a', 20, 10, { start: 'cold' }),
    inv('a', 80, 10),
    inv('b', 3, 2),
    inv('b', 3, 2, { start: 'queued' }),
    inv('c', 25, 20),
    inv('a', 1, undefined, { ok: false, failure: 'sandbox gone' }),
    inv('c', 9999, 1, { warmup: true, start: 'cold' }),
  ];

  it('computes scheduling latency, per-function means and geometric-mean slowdowns', () => {
    const d = distributions(records);
    assert.deepEqual(
      [...d.schedulingMs].sort((x, y) => x - y),
      [1, 1, 5, 10, 70],
    );
    assert.deepEqual(
      [...d.functionMeanSchedulingMs].sort((x, y) => x - y),
      [1, 5, 40],
    );
    const slow = [...d.functionSlowdown].sort((x, y) => x - y);
    assert.equal(slow.length, 3);
    assert.ok(Math.abs(slow[0]! - 1.25) < 1e-9);
    assert.ok(Math.abs(slow[1]! - 1.5) < 1e-9);
    assert.ok(Math.abs(slow[2]! - 4) < 1e-9, `geometric mean of 2 and 8 is 4, not ${slow[2]}`);
  });

  it('summarises p50/p99 by nearest rank, leaving out warm-up and failed invocations', () => {
    const s = summarizeRun(records, [
      { tMs: 0, sandboxes: 0, sandboxesCreated: 7 },
      { tMs: 1000, sandboxes: 2, sandboxesCreated: 9 },
      { tMs: 2000, sandboxes: 3, sandboxesCreated: 12 },
    ]);
    assert.equal(s.invocations, 6, 'the warm-up invocation is not counted');
    assert.equal(s.failures, 1);
    assert.equal(s.cold_starts, 1);
    assert.equal(s.queued, 1);
    assert.equal(s.sched_p50_ms, 5); // ranks: 1 1 [5] 10 70
    assert.equal(s.sched_p99_ms, 70);
    assert.equal(s.fn_sched_mean_p50_ms, 5); // 1 [5] 40
    assert.equal(s.fn_sched_mean_p99_ms, 40);
    assert.equal(s.slowdown_p50, 1.5); // 1.25 [1.5] 4
    assert.equal(s.slowdown_p99, 4);
    assert.equal(s.sandboxes_created, 5, 'created during the run: 12 - 7');
    assert.equal(s.functions_invoked, 3);
  });

  it('counts sandboxes from the end of the warm-up, and says when the target did not report', () => {
    const timeline = [
      { tMs: 0, sandboxes: 0, sandboxesCreated: 0 },
      { tMs: 60_000, sandboxes: 4, sandboxesCreated: 4 },
      { tMs: 120_000, sandboxes: 5, sandboxesCreated: 6 },
    ];
    assert.equal(summarizeRun(records, timeline, 60_000).sandboxes_created, 2);
    const none = summarizeRun(records.map((r) => ({ ...r, start: '' })));
    assert.equal(none.sandboxes_created, null);
    assert.equal(none.cold_starts, null);
  });

  it('reads ExecutionTime (µs) from the trace function body', () => {
    assert.equal(reportedExecutionMs('{"Status":"OK","ExecutionTime":12500}'), 12.5);
    assert.equal(reportedExecutionMs('{"Status":"OK"}'), undefined);
    assert.equal(reportedExecutionMs('not json'), undefined);
  });

  it('samples a CDF into at most 401 points from 0 to 1', () => {
    const pts = cdfPoints(Array.from({ length: 1000 }, (_, i) => 1000 - i));
    assert.equal(pts.length, 401);
    assert.deepEqual(pts.slice(0, 2), [
      [1, 0],
      [1, 0.001],
    ]);
    assert.deepEqual(pts.at(-1), [1000, 1]);
    assert.ok(pts.every((p, i) => i === 0 || (p[0] >= pts[i - 1]![0] && p[1] > pts[i - 1]![1])));
    assert.deepEqual(cdfPoints([7]), [
      [7, 0],
      [7, 1],
    ]);
    assert.deepEqual(cdfPoints([]), []);
  });
});

describe('result directories', () => {
  const write = (invocations: string, timeline?: string) =>
    writeResultDir(
      mkdtempSync(join(tmpdir(), 'baton-report-')),
      'run <one>',
      invocations,
      timeline,
    );

  it('reads a run back, failure reasons with commas and quotes included', () => {
    const dir = write(
      '0.000,0.100,f,200,12.000,10.000,2.000,cold,10,64,0,\n' +
        '5.000,5.200,f,502,3.000,,,,10,64,0,"sandbox 1, ""x"", gone"\n',
      '0,0,0,0,0\n1000,1,0,0,1\n',
    );
    try {
      const run = loadRun(dir);
      assert.equal(run.invocations.length, 2);
      assert.equal(run.invocations[1]!.failure, 'sandbox 1, "x", gone');
      assert.equal(run.invocations[1]!.ok, false);
      assert.equal(run.invocations[0]!.executionMs, 10);
      assert.equal(run.timeline.length, 2);
      const html = renderReport([run, run]);
      assert.match(html, /^<!doctype html>/);
      assert.equal(html.match(/<svg /g)?.length, 3, 'three plots');
      assert.match(html, /run &lt;one&gt;/, 'labels are escaped');
      assert.doesNotMatch(html, /<script|src="http|href="http/, 'self-contained');
      assert.doesNotMatch(html, /id="length-warning"/, 'the same window twice');
      // Legends under the plots (below the x-axis label), never over the lines.
      const legendYs = [
        ...html.matchAll(/<line x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="[\d.]+" stroke="#/g),
      ].map((m) => Number(m[1]));
      assert.ok(
        legendYs.length > 0 && legendYs.every((y) => y > 420),
        `legend rows at ${legendYs.join(',')}`,
      );
      assert.match(
        html,
        /<circle class="hover"[^>]*><title>run &lt;one&gt;: per invocation: p\d+ = [\d.]+ ms<\/title>/,
      );
      assert.doesNotMatch(html, /Dirigent \(paper/);
      const withReference = renderReport([run], { reference: true });
      assert.match(
        withReference,
        /<title>Dirigent \(paper, Azure 500 functions\): p50 = 1\.74 ms<\/title>/,
      );
      assert.match(
        withReference,
        /<title>Dirigent \(paper, Azure 500 functions\): p99 = 1130 ms<\/title>/,
      );
      const longer = {
        ...run,
        meta: {
          ...run.meta,
          label: 'longer',
          trace: { ...run.meta.trace, minutes: run.meta.trace.minutes + 5 },
        },
      };
      assert.match(
        renderReport([run, longer]),
        /id="length-warning">These runs replayed different windows/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('puts time and count ticks on round values', () => {
    assert.deepEqual(niceTicks(71), [0, 20, 40, 60, 80]);
    assert.deepEqual(niceTicks(5), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(niceTicks(230), [0, 50, 100, 150, 200, 250]);
    assert.deepEqual(niceTicks(0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('names the file and line of a malformed value, and a directory that is not a result', () => {
    const dir = write('0.000,zero,f,200,12.000,10.000,2.000,cold,10,64,0,\n');
    try {
      assert.throws(() => loadRun(dir), /invocations\.csv:2: sent_ms "zero" is not a number/);
      assert.throws(() => loadRun(tmpdir()), /not a replay result directory \(no run\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
