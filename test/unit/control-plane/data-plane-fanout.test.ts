/** The ordered, coalescing push of changes to one data plane, against a fake data-plane client. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../src/shared/logger.js';
import {
  DataPlaneFanout,
  INTRODUCE_DELAY_MS,
  type FunctionView,
  type Snapshot,
} from '../../../src/control-plane/data-plane-fanout.js';
import type { ServiceClient } from '../../../src/rpc/contract.js';
import type { DataPlaneService, DataPlaneUpdate } from '../../../src/rpc/contracts/data-plane.js';
import type { Endpoint, FunctionRoute } from '../../../src/rpc/contracts/common.js';

function fakeClient(opts: { slowMs?: number; failFirst?: number } = {}) {
  const applied: DataPlaneUpdate[] = [];
  let failures = opts.failFirst ?? 0;
  const client = {
    applyUpdates: async (u: DataPlaneUpdate) => {
      if (opts.slowMs !== undefined) await sleep(opts.slowMs);
      if (failures > 0) {
        failures--;
        throw new Error('data plane unreachable');
      }
      applied.push(u);
      return {};
    },
  } as unknown as ServiceClient<DataPlaneService>;
  return { client, applied };
}

const route = (name: string): FunctionRoute => ({
  name,
  concurrency: 1,
  coldStartTimeoutMs: 1000,
  timeoutMs: 1000,
});
const ep = (id: string, fn = 'f'): Endpoint => ({
  id,
  function: fn,
  workerId: 'w',
  host: 'h',
  port: 1,
});
const emptySnapshot = (): Snapshot => ({ functions: [], endpoints: [] });
/** A control plane holding `views` (by function name). */
const holding = (views: Record<string, FunctionView> = {}, snapshot = emptySnapshot) => ({
  snapshot,
  view: (name: string) => views[name],
});
/** A control plane holding function `f` with no sandboxes. */
const holdingF = () => holding({ f: { route: route('f'), endpoints: [] } });

describe('DataPlaneFanout', () => {
  it('coalesces the changes of one turn into one push, in order', async () => {
    const { client, applied } = fakeClient();
    const f = new DataPlaneFanout(client, holdingF(), silentLogger());
    assert.equal(f.introduce('f'), true);
    f.addEndpoint(ep('a'));
    f.addEndpoint(ep('b'));
    await f.flushed();
    assert.equal(applied.length, 1);
    assert.deepEqual(applied[0], {
      upsertFunctions: [route('f')],
      addEndpoints: [ep('a'), ep('b')],
    });
  });

  it('never sends an endpoint added and removed before it went out, nor its end reason', async () => {
    const { client, applied } = fakeClient();
    const f = new DataPlaneFanout(client, holdingF(), silentLogger());
    f.introduce('f');
    f.addEndpoint(ep('gone'));
    f.removeEndpoint('gone', 'exited with code 1');
    f.addEndpoint(ep('kept'));
    await f.flushed();
    assert.deepEqual(applied, [{ upsertFunctions: [route('f')], addEndpoints: [ep('kept')] }]);
  });

  it('sends what changed during a push in the next one, and flushed() waits for it', async () => {
    const { client, applied } = fakeClient({ slowMs: 30 });
    const f = new DataPlaneFanout(client, holdingF(), silentLogger());
    f.introduce('f');
    f.addEndpoint(ep('a'));
    await sleep(5); // the first push is under way
    f.removeEndpoint('a', 'killed by SIGKILL');
    f.addEndpoint(ep('b'));
    await f.flushed();
    assert.deepEqual(applied, [
      { upsertFunctions: [route('f')], addEndpoints: [ep('a')] },
      {
        addEndpoints: [ep('b')],
        removeEndpoints: ['a'],
        endReasons: [{ id: 'a', reason: 'killed by SIGKILL' }],
      },
    ]);
  });

  it('after a failed push sends the whole state again', async () => {
    const { client, applied } = fakeClient({ failFirst: 1 });
    const snapshot: Snapshot = { functions: [route('f')], endpoints: [ep('a')] };
    const f = new DataPlaneFanout(
      client,
      holding({}, () => snapshot),
      silentLogger(),
    );
    // The retry's timer does not hold a process open; this test's must wait for it.
    const keepAlive = setInterval(() => undefined, 1000);
    f.removeEndpoint('old');
    await f.flushed();
    clearInterval(keepAlive);
    assert.deepEqual(applied, [
      { reset: true, upsertFunctions: [route('f')], addEndpoints: [ep('a')] },
    ]);
    // The full view told it `f`: its endpoints are sent from now on.
    f.addEndpoint(ep('b'));
    await f.flushed();
    assert.deepEqual(applied[1], { addEndpoints: [ep('b')] });
  });

  it('sends nothing about a function the data plane was not told', async () => {
    const { client, applied } = fakeClient();
    const f = new DataPlaneFanout(client, holdingF(), silentLogger());
    f.addEndpoint(ep('a'));
    f.failQueued('f', 'BATON_ERR_SANDBOX_START', 'no image');
    f.updateFunction({ ...route('f'), split: [{ function: 'f@2', weight: 100 }] });
    f.removeFunction('f');
    await f.flushed();
    assert.deepEqual(applied, []);
  });

  it('introduces a function once, with its ready endpoints and the revisions it splits to', async () => {
    const { client, applied } = fakeClient();
    const split = { ...route('f'), split: [{ function: 'f@2', weight: 100 }] };
    const f = new DataPlaneFanout(
      client,
      holding({
        f: { route: split, endpoints: [ep('a')] },
        'f@2': { route: route('f@2'), endpoints: [ep('b', 'f@2')] },
      }),
      silentLogger(),
    );
    assert.equal(f.introduce('f'), true);
    assert.equal(f.introduce('f'), true);
    assert.equal(f.introduce('nope'), false);
    await f.flushed();
    assert.deepEqual(applied, [
      { upsertFunctions: [split, route('f@2')], addEndpoints: [ep('a'), ep('b', 'f@2')] },
    ]);
    // Removed, it is introduced afresh.
    f.removeFunction('f');
    f.introduce('f');
    await f.flushed();
    assert.deepEqual(applied[1], {
      upsertFunctions: [split],
      addEndpoints: [ep('a')],
    });
  });

  it('introduces functions registered about the same time in one push, soon after', async () => {
    const { client, applied } = fakeClient();
    const f = new DataPlaneFanout(
      client,
      holding({
        f: { route: route('f'), endpoints: [] },
        g: { route: route('g'), endpoints: [ep('a', 'g')] },
      }),
      silentLogger(),
    );
    f.introduceSoon('f');
    f.introduceSoon('g');
    f.introduceSoon('gone');
    assert.equal(f.applied, true, 'nothing to wait for meanwhile');
    await sleep(INTRODUCE_DELAY_MS / 2);
    assert.deepEqual(applied, []);
    await sleep(INTRODUCE_DELAY_MS + 20);
    await f.flushed();
    assert.deepEqual(applied, [
      { upsertFunctions: [route('f'), route('g')], addEndpoints: [ep('a', 'g')] },
    ]);
    f.introduceSoon('f');
    await sleep(INTRODUCE_DELAY_MS + 20);
    assert.equal(applied.length, 1, 'a known function is not sent again');
  });

  it('remembers when it told the data plane a function does not exist', async () => {
    const { client } = fakeClient();
    const f = new DataPlaneFanout(client, holdingF(), silentLogger());
    assert.equal(f.deniedWithin(), false);
    f.denied();
    assert.equal(f.deniedWithin(), true);
    await sleep(15);
    assert.equal(f.deniedWithin(10), false);
    assert.equal(f.deniedWithin(), true);
  });
});
