/** The open-loop scheduler: every request sent, none early, in order, and no busy waiting between sends. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { runOpenLoop, runSchedule, type ShotResult } from '../../../src/loadgen/open-loop.js';

const ok = (): Promise<ShotResult> => Promise.resolve({ status: 200, ok: true });

describe('runSchedule', () => {
  it('sends each request once, in order, never before its time', async () => {
    const at = [0, 0, 5, 5, 12, 30, 31, 60];
    const sentAt: number[] = [];
    const t0 = performance.now();
    const run = await runSchedule({
      count: at.length,
      atMs: (i) => at[i]!,
      send: (i) => {
        sentAt[i] = performance.now() - t0;
        return ok();
      },
    });
    assert.deepEqual(
      run.shots.map((s) => s.index),
      at.map((_, i) => i),
    );
    for (const s of run.shots) {
      assert.ok(s.sentMs >= s.scheduledMs, `request ${s.index} sent early`);
      assert.equal(s.scheduledMs, at[s.index]);
    }
    for (let i = 1; i < sentAt.length; i++) assert.ok(sentAt[i]! >= sentAt[i - 1]!);
  });

  it('waits for the next send on timers, not by spinning the event loop', async () => {
    // It used to wait the last 1.5 ms before each send on setImmediate: at
    // 1000 requests/s, thousands of immediates a second and a busy core.
    let immediates = 0;
    const hook = createHook({
      init: (_id, type) => {
        if (type === 'Immediate') immediates++;
      },
    }).enable();
    try {
      const run = await runOpenLoop({ rate: 1000, durationMs: 200, send: ok });
      assert.equal(run.shots.length, 200);
    } finally {
      hook.disable();
    }
    assert.ok(immediates < 20, `${immediates} immediates for 200 sends`);
  });

  it('stops sending once aborted and returns what was answered', async () => {
    const ac = new AbortController();
    const run = await runSchedule({
      count: 100,
      atMs: (i) => i * 2,
      send: (i) => {
        if (i === 9) ac.abort();
        return ok();
      },
      signal: ac.signal,
    });
    assert.equal(run.shots.length, 10);
  });
});
