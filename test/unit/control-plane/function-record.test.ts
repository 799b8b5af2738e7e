import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FunctionRecord, type SandboxRecord } from '../../../src/control-plane/cluster-state.js';
import { compileFunctionSpec } from '../../../src/shared/function-spec.js';

const TIMINGS = {
  imageFetchMs: 0,
  createMs: 0,
  networkMs: 0,
  startMs: 0,
  readinessMs: 0,
  totalMs: 0,
};

function sandbox(id: string): SandboxRecord {
  return {
    id,
    function: 'f',
    workerId: 'w-1',
    freshPerRequest: false,
    reportsColdStart: false,
    standby: false,
    host: '',
    port: 0,
    phase: 'creating',
    createdAt: 0,
    readyAt: undefined,
    timings: undefined,
  };
}

/** Whether `p` has settled by the time the event loop turns once. */
function settledNow(p: Promise<void>): Promise<boolean> {
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((resolve) => setImmediate(() => resolve(false))),
  ]);
}

describe('waiting for a change of a function’s sandboxes', () => {
  const LONG_MS = 60_000;

  it('wakes when a sandbox is ready, with the counts already updated', async () => {
    const fn = new FunctionRecord(compileFunctionSpec({ name: 'f', image: 'x' }));
    const sb = sandbox('sb-1');
    fn.track(sb);
    const change = fn.nextChange(LONG_MS);
    assert.equal(await settledNow(change), false, 'nothing changed yet');
    const second = fn.nextChange(LONG_MS);
    fn.sandboxReady(sb, '127.0.0.1', 9000, 1, TIMINGS);
    assert.equal(await settledNow(change), true);
    assert.equal(await settledNow(second), true, 'every waiter wakes');
    assert.equal(fn.ready, 1);
  });

  it('wakes when a sandbox is gone or a creation failed', async () => {
    const fn = new FunctionRecord(compileFunctionSpec({ name: 'f', image: 'x' }));
    const sb = sandbox('sb-1');
    fn.track(sb);
    const gone = fn.nextChange(LONG_MS);
    fn.untrack(sb);
    assert.equal(await settledNow(gone), true);
    assert.equal(fn.creating, 0);
    const failed = fn.nextChange(LONG_MS);
    fn.creationFailed({ code: 'BATON_ERR_SANDBOX_START', message: 'broken' }, false, 0);
    assert.equal(await settledNow(failed), true);
  });

  it('wakes after its time when nothing changes', async () => {
    const fn = new FunctionRecord(compileFunctionSpec({ name: 'f', image: 'x' }));
    await fn.nextChange(5);
    // A waiter that timed out is not woken again (nor kept) by a later change.
    const sb = sandbox('sb-1');
    fn.track(sb);
    const later = fn.nextChange(LONG_MS);
    fn.sandboxReady(sb, '127.0.0.1', 9000, 1, TIMINGS);
    assert.equal(await settledNow(later), true);
  });
});
