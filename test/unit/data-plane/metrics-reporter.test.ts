/**
 * When the data plane tells the control plane about in-flight counts: at
 * once for a first queued request of a function with no sandbox, and of
 * one whose sandboxes are busy if it still waits QUEUE_WAIT_MS later; at
 * once for a long queue that doubled or halved; within QUIET_PUSH_DELAY_MS
 * for a function that went quiet and stayed so, and not for one that is
 * busy again by then (its interval reports carry it); between intervals,
 * only the functions whose counts changed.
 */
import { describe, it, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../src/shared/logger.js';
import {
  MetricsReporter,
  QUEUE_WAIT_MS,
  QUIET_PUSH_DELAY_MS,
  type FunctionMetric,
  type MetricSource,
} from '../../../src/data-plane/metrics-reporter.js';

/** A function whose load grows by its in-flight count at each accrual (a millisecond a call). */
function source(name: string): MetricSource & { inflight: number; queued: number } {
  return {
    name,
    inflight: 0,
    queued: 0,
    totals: { invocations: 0, failures: 0, coldStarts: 0, durationMs: 0 },
    load: { inflightMs: 0, served: 0, serviceMs: 0 },
    accrue() {
      this.load.inflightMs += this.inflight;
    },
  };
}

describe('metrics reporter', () => {
  const pushes: FunctionMetric[][] = [];
  // An interval far beyond the test: only the urgent and quiet pushes happen.
  const reporter = new MetricsReporter(
    (m) => {
      pushes.push(m);
      return Promise.resolve();
    },
    60_000,
    silentLogger(),
  );
  after(() => reporter.close());

  it('pushes a first queued request at once and a final 0 soon after', async () => {
    pushes.length = 0;
    const fn = source('a');
    fn.inflight = 1;
    reporter.changed(fn, 'now');
    await sleep(5);
    assert.deepEqual(
      pushes.map((p) => p.map((m) => [m.function, m.inflight])),
      [[['a', 1]]],
    );
    fn.inflight = 0;
    reporter.changed(fn, 'soon');
    await sleep(QUIET_PUSH_DELAY_MS * 3);
    assert.deepEqual(
      pushes.at(-1)?.map((m) => [m.function, m.inflight]),
      [['a', 0]],
    );
  });

  it('does not push a quiet moment of a function busy again before the delay', async () => {
    pushes.length = 0;
    const fn = source('b');
    fn.inflight = 1;
    reporter.changed(fn, 'periodic');
    fn.inflight = 0;
    reporter.changed(fn, 'soon');
    fn.inflight = 1;
    reporter.changed(fn, 'periodic');
    await sleep(QUIET_PUSH_DELAY_MS * 3);
    assert.equal(pushes.length, 0, 'steady load: left to the interval reports');
    // Quiet again and staying so: reported.
    fn.inflight = 0;
    reporter.changed(fn, 'soon');
    await sleep(QUIET_PUSH_DELAY_MS * 3);
    assert.deepEqual(
      pushes.at(-1)?.map((m) => [m.function, m.inflight]),
      [['b', 0]],
    );
  });

  it('accrues the load at each change and sends it as it is at the push', async () => {
    pushes.length = 0;
    const fn = source('l');
    fn.inflight = 2;
    reporter.changed(fn, 'periodic');
    fn.inflight = 3;
    reporter.changed(fn, 'now');
    assert.equal(fn.load.inflightMs, 5, 'accrued at each change');
    await sleep(5);
    assert.deepEqual(
      pushes.map((p) => p.map((m) => [m.function, m.load.inflightMs])),
      [[['l', 8]]],
      'and once more for the push',
    );
    fn.inflight = 0;
    reporter.changed(fn, 'soon');
    await sleep(QUIET_PUSH_DELAY_MS * 3);
  });

  it('pushes a request queued behind busy sandboxes only if the queue is still there QUEUE_WAIT_MS later', async () => {
    pushes.length = 0;
    const fn = source('behind');
    fn.inflight = 3;
    fn.queued = 1;
    reporter.changed(fn, 'waiting');
    fn.inflight = 2;
    fn.queued = 0;
    reporter.changed(fn, 'periodic');
    await sleep(QUEUE_WAIT_MS * 4);
    assert.equal(pushes.length, 0, 'cleared by the sandboxes it has: left to the interval');
    fn.inflight = 3;
    fn.queued = 1;
    reporter.changed(fn, 'waiting');
    await sleep(QUEUE_WAIT_MS * 4);
    assert.deepEqual(
      pushes.map((p) => p.map((m) => [m.function, m.queued])),
      [[['behind', 1]]],
    );
    fn.inflight = 0;
    fn.queued = 0;
    reporter.changed(fn, 'soon');
    await sleep(QUIET_PUSH_DELAY_MS * 3);
  });

  it('pushes at once a long queue that doubled or halved since it was sent', async () => {
    pushes.length = 0;
    const fn = source('q');
    const sent = () => pushes.map((p) => p.map((m) => m.queued).join(' '));
    fn.inflight = 2;
    fn.queued = 1;
    reporter.changed(fn, 'now');
    await sleep(5);
    for (const queued of [1, 2, 3, 4, 7, 8, 9, 16, 12, 9, 8, 5, 4, 1, 2, 4]) {
      fn.queued = queued;
      fn.inflight = queued + 1;
      reporter.changed(fn, 'periodic');
      await sleep(5);
    }
    assert.deepEqual(sent(), ['1', '8', '16', '8', '4'], 'a short queue waits for the interval');
    fn.inflight = 0;
    fn.queued = 0;
    reporter.changed(fn, 'soon');
    await sleep(QUIET_PUSH_DELAY_MS * 3);
  });

  it('pushes between intervals only the functions whose counts changed since they were sent', async () => {
    pushes.length = 0;
    const [a, b, c] = [source('x'), source('y'), source('z')];
    const sent = () => pushes.map((p) => p.map((m) => `${m.function}=${m.inflight}`).join(' '));
    a.inflight = 1;
    reporter.changed(a, 'now');
    await sleep(5);
    b.inflight = 1;
    reporter.changed(b, 'now');
    await sleep(5);
    a.inflight = 2;
    reporter.changed(a, 'periodic');
    c.inflight = 1;
    reporter.changed(c, 'now');
    await sleep(5);
    assert.deepEqual(sent(), ['x=1', 'y=1', 'x=2 z=1']);
    for (const fn of [a, b, c]) {
      fn.inflight = 0;
      reporter.changed(fn, 'soon');
    }
    await sleep(QUIET_PUSH_DELAY_MS * 3);
    assert.deepEqual(sent().at(-1), 'x=0 y=0 z=0');
  });

  it("sends an interval's push that found another under way right after that one", async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const held: FunctionMetric[][] = [];
    let letGo = (): void => undefined;
    const slow = new MetricsReporter(
      (m) => {
        held.push(m);
        return held.length === 1 ? new Promise<void>((r) => (letGo = r)) : Promise.resolve();
      },
      1000,
      silentLogger(),
    );
    try {
      const fn = source('w');
      fn.inflight = 1;
      slow.changed(fn, 'now');
      await sleep(5);
      assert.equal(held.length, 1, 'the first push, still under way');
      fn.inflight = 2;
      slow.changed(fn, 'periodic');
      mock.timers.tick(1000);
      assert.equal(held.length, 1, 'one push at a time');
      letGo();
      await sleep(5);
      assert.deepEqual(
        held.map((p) => p.map((m) => `${m.function}=${m.inflight}`).join(' ')),
        ['w=1', 'w=2'],
      );
    } finally {
      letGo();
      slow.close();
      mock.timers.reset();
    }
  });
});
