/**
 * The isolate runtimes' reserve of ready isolates (the guest prelude loaded,
 * nothing else): one per take, never handed out twice, kept per heap limit,
 * refilled in the background, emptied on close. Real isolates (isolated-vm).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import type IsolatedVm from 'isolated-vm';
import {
  AFTER_ANSWER_DELAY_MS,
  IsolateReserve,
} from '../../../src/worker/runtimes/isolate/reserve.js';
import { bundlePrelude } from '../../../src/worker/runtimes/isolate/bundle.js';
import { isolatesUnsupported } from '../../helpers/isolates.js';

async function refilled(reserve: IsolateReserve, held: number): Promise<void> {
  for (let i = 0; i < 200 && reserve.held < held; i++) await sleep(5);
  assert.equal(reserve.held, held);
}

describe('IsolateReserve', { skip: isolatesUnsupported }, () => {
  const load = async () =>
    ((await import('isolated-vm')) as { default: typeof IsolatedVm }).default;
  const reserveOf = async (size: number, maxLimits?: number) =>
    new IsolateReserve(await load(), await bundlePrelude(), size, maxLimits);

  it('hands out a ready isolate with the asked heap limit, never the same one twice', async () => {
    const reserve = await reserveOf(2);
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
        // The prelude and nothing of an earlier user; no host attached yet.
        assert.equal(b.context.evalSync('typeof leftover'), 'undefined');
        assert.equal(b.context.evalSync('typeof Response'), 'function');
        assert.equal(b.boot.typeof, 'function');
        assert.match(
          String(b.context.evalSync('try { performance.now(); "" } catch (e) { e.message }')),
          /no host yet/,
        );
        // The prelude's warm-up left no handler behind.
        await assert.rejects(
          b.context.eval('__baton.dispatch("GET", "http://localhost/", [], null)', {
            promise: true,
          }),
          /the isolate is not booted/,
        );
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
    const reserve = await reserveOf(1, 2);
    for (const limit of [8, 16, 24]) reserve.take(limit).isolate.dispose();
    reserve.refill();
    await refilled(reserve, 2);
    reserve.close();
    assert.equal(reserve.held, 0);
    reserve.refill();
    await sleep(AFTER_ANSWER_DELAY_MS * 4);
    assert.equal(reserve.held, 0, 'a closed reserve makes nothing');
  });

  it('refills a limit left with none at once, one left only after the answer delay', async () => {
    const reserve = await reserveOf(2);
    try {
      reserve.take(8).isolate.dispose();
      // None left: made on the next turns, before the delay could pass.
      reserve.refill();
      for (let i = 0; i < 4 && reserve.held < 2; i++) await turn();
      assert.equal(reserve.held, 2);
      await turn(); // the refill's last turn, which finds it full
      reserve.take(8).isolate.dispose();
      reserve.refill();
      await turn();
      assert.equal(reserve.held, 1, 'one left: the refill waits for the answer to be on its way');
      await refilled(reserve, 2);
    } finally {
      reserve.close();
    }
  });

  it('makes nothing ahead when its size is 0', async () => {
    const reserve = await reserveOf(0);
    reserve.take(8).isolate.dispose();
    reserve.refill();
    await sleep(AFTER_ANSWER_DELAY_MS * 4);
    await turn();
    assert.equal(reserve.held, 0);
    reserve.close();
  });
});
