/**
 * A function's load on a data plane, what the autoscaler averages: its
 * in-flight count (queued + executing) integrated over time, each stretch
 * charged to the count it had, and the time sandboxes took per request.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FunctionState } from '../../../src/data-plane/function-state.js';
import { LeastLoadedBalancer } from '../../../src/data-plane/load-balancer/least-loaded.js';

function functionState(): FunctionState<string> {
  const route = { name: 'f', concurrency: 1, coldStartTimeoutMs: 1000, timeoutMs: 1000 };
  return new FunctionState<string>(route, new LeastLoadedBalancer());
}

describe('FunctionState load', () => {
  it('integrates the in-flight count over time, each stretch at the count it had', () => {
    const fn = functionState();
    fn.accrue(1000);
    assert.equal(fn.load.inflightMs, 0, 'nothing in flight yet');
    fn.executing = 1;
    fn.accrue(1000);
    fn.queue.push('a', 0);
    fn.queue.push('b', 0);
    fn.accrue(1010); // 1 in flight for 10 ms
    assert.equal(fn.load.inflightMs, 10);
    fn.queue.shift();
    fn.queue.shift();
    fn.accrue(1015); // 3 for 5 ms
    assert.equal(fn.load.inflightMs, 25);
    fn.executing = 0;
    fn.accrue(1020); // 1 for 5 ms
    fn.accrue(5000); // quiet: nothing added
    assert.equal(fn.load.inflightMs, 30);
  });

  it('counts what sandboxes served and how long they took', () => {
    const fn = functionState();
    fn.served(2);
    fn.served(4.5);
    assert.deepEqual(fn.load, { inflightMs: 0, served: 2, serviceMs: 6.5 });
  });
});
