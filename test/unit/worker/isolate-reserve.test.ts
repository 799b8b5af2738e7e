/**
 * The isolate runtimes' reserve of blank isolates: one per take, never handed
 * out twice, kept per heap limit, refilled in the background, emptied on
 * close. Real isolates (isolated-vm).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import type IsolatedVm from 'isolated-vm';
import { IsolateReserve } from '../../../src/worker/runtimes/isolate.js';
import { isolatesUnsupported } from '../../helpers/isolates.js';

async function refilled(reserve: IsolateReserve, held: number): Promise<void> {
  for (let i = 0; i < 100 && reserve.held < held; i++) await turn();
  assert.equal(reserve.held, held);
}

describe('IsolateReserve', { skip: isolatesUnsupported }, () => {
  const load = async () =>
    ((await import('isolated-vm')) as { default: typeof IsolatedVm }).default;

  it('hands out a blank isolate with the asked heap limit, never the same one twice', async () => {
    const reserve = new IsolateReserve(await load(), 2);
    try {
      const first = reserve.take(16);
      assert.equal(reserve.held, 0, 'nothing is made ahead before a limit is asked for');
      reserve.refill();
      await refilled(reserve, 2);
      const seen = new Set([first.isolate]);
      for (let i = 0; i < 5; i++) {
        const b = reserve.take(16);
        assert.ok(!seen.has(b.isolate), 'an isolate is handed out once');
        seen.add(b.isolate);
        // Blank: the context has only ECMAScript's globals, nothing of an earlier user.
        assert.equal(b.context.evalSync('typeof __baton'), 'undefined');
        b.context.evalSync('globalThis.leftover = 1');
        reserve.refill();
      }
      const heap = reserve.take(16).isolate.getHeapStatisticsSync();
      assert.ok(
        heap.heap_size_limit >= 16 * 1024 * 1024 && heap.heap_size_limit < 64 * 1024 * 1024,
      );
      for (const i of seen) i.dispose();
    } finally {
      reserve.close();
    }
  });

  it('keeps isolates for the most recently asked limits only, and none after close', async () => {
    const reserve = new IsolateReserve(await load(), 1, 2);
    for (const limit of [8, 16, 24]) reserve.take(limit).isolate.dispose();
    reserve.refill();
    await refilled(reserve, 2);
    reserve.close();
    assert.equal(reserve.held, 0);
    reserve.refill();
    await turn();
    assert.equal(reserve.held, 0, 'a closed reserve makes nothing');
  });

  it('makes nothing ahead when its size is 0', async () => {
    const reserve = new IsolateReserve(await load(), 0);
    reserve.take(8).isolate.dispose();
    reserve.refill();
    await turn();
    await turn();
    assert.equal(reserve.held, 0);
    reserve.close();
  });
});
