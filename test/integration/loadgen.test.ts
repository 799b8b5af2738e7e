/**
 * The load generators end to end against `baton up` (simulated runtime):
 * a minute of thirty azure-100 functions replayed with zero failures, the
 * result directory and report it writes, RPS mode's cold starts, and
 * one-line errors for bad options.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { readTrace } from '../../src/loadgen/trace-reader.js';
import { runBaton, startUp, tempDir, type BatonUp } from '../helpers/processes.js';

const AZURE = fileURLToPath(new URL('../fixtures/azure-100', import.meta.url));
// Seed 3 samples thirty functions of which eight are invoked in the first minute, 108 times.
const WINDOW = { minutes: 1, functions: 30, seed: 3 };

describe('baton loadgen against baton up', () => {
  let b: BatonUp;
  let dir: string;
  before(async () => {
    b = await startUp(['--runtime', 'simulated', '--workers', '2']);
    dir = tempDir('baton-loadgen-');
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // First, while the cluster has no sandboxes: a cold step waits for zero before it starts,
  // which after the replay would be a minute of its functions' scale-down windows.
  it('sends a constant rate of cold starts in RPS mode', async () => {
    const r = await runBaton([
      'loadgen',
      'rps',
      '--target-cp',
      b.registration,
      '--target-dp',
      b.proxy,
      '--mode',
      'cold',
      '--rate',
      '20',
      '--duration-s',
      '2',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { requests: number; failures: number; cold_starts: number };
    assert.equal(s.requests, 40);
    assert.equal(s.failures, 0);
    assert.equal(s.cold_starts, 40, 'every invocation created a sandbox');
  });

  it('replays a minute of 30 functions with no failures and writes results and a report', async () => {
    const out = join(dir, 'replay');
    const r = await runBaton([
      'loadgen',
      'trace',
      '--trace',
      AZURE,
      '--target-cp',
      b.registration,
      '--target-dp',
      new URL(b.proxy).host,
      '--minutes',
      String(WINDOW.minutes),
      '--functions',
      String(WINDOW.functions),
      '--seed',
      String(WINDOW.seed),
      '--simulated',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const expected = readTrace(AZURE, WINDOW).functions.reduce(
      (n, f) => n + f.perMinute.reduce((a, c) => a + c, 0),
      0,
    );
    const s = JSON.parse(r.stdout) as Record<string, number | string | null>;
    assert.equal(s.invocations, expected);
    assert.equal(s.failures, 0, r.stderr);
    assert.equal(s.execution, 'simulated');
    assert.ok((s.cold_starts as number) >= 1, 'first invocations are cold');
    assert.ok((s.sandboxes_created as number) >= 1);
    assert.ok(Number.isFinite(s.sched_p50_ms) && (s.sched_p50_ms as number) >= 0);
    assert.ok((s.slowdown_p50 as number) >= 1);
    assert.match(r.stderr, /replay .*sent/, 'progress lines on a non-terminal');

    const rows = parse<Record<string, string>>(readFileSync(join(out, 'invocations.csv'), 'utf8'), {
      columns: true,
    });
    assert.equal(rows.length, expected);
    for (const row of rows) {
      assert.equal(row.status, '200');
      assert.equal(row.failure, '');
      assert.match(row.start!, /^(cold|warm|queued)$/);
      const exec = Number(row.execution_ms);
      assert.ok(exec >= Number(row.requested_ms), 'the function waited the requested time');
      assert.ok(Math.abs(Number(row.latency_ms) - exec - Number(row.scheduling_ms)) < 0.01);
    }
    const meta = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as {
      functions: Array<{ image: string }>;
      scheduled: number;
    };
    assert.equal(meta.scheduled, expected);
    assert.ok(meta.functions.every((f) => f.image === 'simulated-trace'));
    assert.ok(existsSync(join(out, 'report.html')));
    // A sample a second through the minute, and a header.
    assert.ok(readFileSync(join(out, 'sandboxes.csv'), 'utf8').split('\n').length > 55);
  });

  it('refuses bad options with one line naming the option', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['loadgen', 'trace'], /--trace: is required/],
      [['loadgen', 'trace', '--trace', AZURE, '--iat', 'poisson'], /--iat: /],
      [['loadgen', 'trace', '--trace', AZURE, '--minutes', '0'], /--minutes: /],
      [['loadgen', 'trace', '--trace', AZURE, '--target-dp', 'ftp://x:1'], /--target-dp: /],
      [
        ['loadgen', 'trace', '--trace', AZURE, '--minutes', '1', '--warmup-minutes', '2000'],
        /leaves nothing to measure|--minutes|window/,
      ],
      [['loadgen', 'rps', '--mode', 'lukewarm'], /--mode: /],
      [
        [
          'loadgen',
          'trace',
          '--trace',
          AZURE,
          '--target-cp',
          b.registration,
          '--target-dp',
          '127.0.0.1:1',
        ],
        /cannot reach the data plane at http:\/\/127\.0\.0\.1:1/,
      ],
      [
        [
          'loadgen',
          'trace',
          '--trace',
          AZURE,
          '--target-cp',
          'http://127.0.0.1:1',
          '--target-dp',
          b.proxy,
        ],
        /cannot reach the control plane at http:\/\/127\.0\.0\.1:1/,
      ],
      [['loadgen', 'trace', '--trace', join(dir, 'no-such-trace')], /no-such-trace/],
      [['loadgen', 'bogus'], /unknown load generator "bogus"/],
      [['report'], /expected one or more result directories/],
      [['report', dir], /not a replay result directory/],
    ];
    for (const [args, re] of cases) {
      const r = await runBaton(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  });
});
