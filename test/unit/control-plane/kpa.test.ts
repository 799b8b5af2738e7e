import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  KpaScaler,
  kpaConfigFor,
  type KpaConfig,
} from '../../../src/control-plane/autoscaler/kpa.js';
import type { Backlog } from '../../../src/control-plane/autoscaler/autoscaler.js';
import { specFromForm } from '../../../src/control-plane/registration-form.js';
import { dirigentForm } from '../../../src/loadgen/dirigent-client.js';
import { spec } from '../../helpers/specs.js';

const TICK = 2000;

function config(over: Partial<KpaConfig> = {}): KpaConfig {
  return { ...kpaConfigFor(spec()), ...over };
}

/** Runs ticks with a constant in-flight value, feeding back the decision as the current scale. */
/** `inflight` in flight of which `queued` wait; the service and creation times when known. */
function backlog(
  inflight: number,
  queued: number,
  serviceMs?: number,
  creationMs?: number,
): Backlog {
  return { inflight, queued, serviceMs, creationMs };
}

/** `ticks` ticks with `inflight` in flight at each, as the scaling loop runs them (observe, then decide). */
function run(s: KpaScaler, from: number, ticks: number, inflight: number, current: number) {
  let now = from;
  let scale = current;
  for (let i = 0; i < ticks; i++) {
    now += TICK;
    s.observe(now, inflight > 0);
    scale = s.decide(now, inflight, scale);
  }
  return { now, scale };
}

describe('KPA autoscaler', () => {
  it('uses Dirigent defaults: 60 s stable, 6 s panic, target = concurrency', () => {
    const c = kpaConfigFor(spec({ concurrency: 4 }));
    assert.equal(c.stableWindowMs, 60_000);
    assert.equal(c.panicWindowMs, 6_000);
    assert.equal(c.targetPerSandbox, 4);
    assert.equal(c.maxScale, Infinity);
    assert.equal(kpaConfigFor(spec({ concurrency: 0 })).targetPerSandbox, 100);
  });

  it('sweep preset: 6 s stable, 2 s panic, upper bound 1', () => {
    const c = kpaConfigFor(spec({ coldStartSweep: true }));
    assert.equal(c.stableWindowMs, 6_000);
    assert.equal(c.panicWindowMs, 2_000);
    assert.equal(c.maxScale, 1);
  });

  it("sweep preset: a given upper bound overrides its 1, as in Dirigent's registration", () => {
    // InVitro's warm function: cold_start_sweep=true, scaling_upper_bound=1024, lower bound 1.
    const form = dirigentForm('warm-function', 'empty', {
      scaling_upper_bound: '1024',
      scaling_lower_bound: '1',
      cold_start_sweep: 'true',
    });
    const c = kpaConfigFor(specFromForm(form));
    assert.equal(c.maxScale, 1024);
    assert.equal(c.stableWindowMs, 6_000);
    form.delete('scaling_upper_bound');
    assert.equal(kpaConfigFor(specFromForm(form)).maxScale, 1);
  });

  it('scales from zero to 1 at once', () => {
    const s = new KpaScaler(config(), 0);
    assert.equal(s.scaleFromZero(5), 1);
  });

  it('stable mode: steady in-flight load maps to ceil(avg / target)', () => {
    const s = new KpaScaler(config(), 0);
    // 5 in flight with 5 sandboxes: not panicking, 5 desired.
    const { scale } = run(s, 0, 40, 5, 5);
    assert.equal(scale, 5);
    assert.equal(s.inPanic, false);
  });

  it('enters panic when the panic estimate is >= 2x the current scale and never scales down in panic', () => {
    const s = new KpaScaler(config(), 0);
    let now = TICK;
    assert.equal(s.decide(now, 1, 1), 1);
    now += TICK;
    const burst = s.decide(now, 40, 1);
    assert.equal(s.inPanic, true);
    // panic window (3 ticks) avg = (1 + 40) / 2 -> 21 desired, above the stable estimate
    assert.equal(burst, 21);
    now += TICK;
    const next = s.decide(now, 0, burst);
    assert.ok(next >= burst, `desired dropped from ${burst} to ${next} during panic`);
  });

  it('leaves panic only after a full stable window below the threshold', () => {
    const s = new KpaScaler(config(), 0);
    let now = TICK;
    let scale = s.decide(now, 50, 1);
    assert.equal(s.inPanic, true);
    // Traffic stays at the new scale: not over the threshold any more.
    for (let t = 0; t < 29; t++) {
      now += TICK;
      scale = s.decide(now, scale, scale);
      assert.equal(s.inPanic, true, `left panic after ${(t + 1) * 2} s`);
    }
    now += TICK;
    s.decide(now, scale, scale);
    assert.equal(s.inPanic, false);
  });

  it('panics at once on requests queued behind busy sandboxes, and the next ticks keep it', () => {
    const s = new KpaScaler(config(), 0);
    const { now, scale: before } = run(s, 0, 5, 1, 1);
    assert.equal(before, 1);
    assert.equal(
      s.onQueued(now + 100, backlog(1, 0), 1),
      undefined,
      'demand within capacity: wait for the tick',
    );
    assert.equal(
      s.onQueued(now + 200, backlog(2, 1), 1),
      2,
      'one busy, one waiting: a second sandbox now',
    );
    assert.equal(s.inPanic, true);
    assert.equal(
      s.onQueued(now + 300, backlog(5, 1), 4),
      undefined,
      'sandboxes being created cover it',
    );
    assert.equal(run(s, now + 200, 3, 1, 2).scale, 2, 'panic does not scale down');
    const bounded = new KpaScaler(config({ maxScale: 3 }), 0);
    assert.equal(bounded.onQueued(1, backlog(10, 8), 2), 3, 'within the upper bound');
  });

  it('at most doubles per reaction to a queue, however long the queue behind a cold start', () => {
    const s = new KpaScaler(config(), 0);
    // 2000 requests/s of 0.5 ms each, 40 ms creation: about 80 wait behind the first sandbox.
    assert.equal(s.onQueued(50, backlog(81, 80), 1), 2);
    assert.equal(s.onQueued(100, backlog(60, 58), 2), 4, 'the round was not enough: double again');
    assert.equal(s.onQueued(150, backlog(3, 0), 4), undefined, 'the queue drained: enough');
    // A sustained need still reaches its size at the tick (panic-window average).
    const long = new KpaScaler(config(), 0);
    assert.equal(long.decide(TICK, 200, 1), Math.ceil(200 / kpaConfigFor(spec()).targetPerSandbox));
  });

  it('scales for a queue only as far as the ready sandboxes cannot clear it within a creation time', () => {
    // 2000 requests/s of 0.5 ms at concurrency 1 behind a stall: 47 wait for 16
    // sandboxes, cleared in 1.5 ms where a new sandbox takes 40.
    const short = new KpaScaler(config(), 0);
    assert.equal(short.onQueued(10, backlog(63, 47, 0.5, 40), 16), undefined);
    assert.equal(short.inPanic, false, 'no panic for what clears itself');
    // 80 behind a cold start, once requests have been served: one sandbox clears them in 40 ms.
    assert.equal(short.onQueued(20, backlog(81, 80, 0.5, 40), 1), undefined);
    assert.equal(short.onQueued(30, backlog(161, 160, 0.5, 40), 1), 2, 'two clear 160');
    // Requests of 1 s: nine waiting need nine more sandboxes, reached by doubling.
    const long = new KpaScaler(config(), 0);
    assert.equal(long.onQueued(10, backlog(10, 9, 1000, 40), 1), 2);
    assert.equal(long.onQueued(50, backlog(10, 8, 1000, 40), 2), 4);
    assert.equal(long.onQueued(90, backlog(10, 6, 1000, 40), 4), 8);
    assert.equal(long.onQueued(130, backlog(10, 2, 1000, 40), 8), undefined, 'under the threshold');
    // Requests of 100 ms, 60 waiting for 4, 400 ms creations: 15 clear them in one creation time.
    const mid = new KpaScaler(config(), 0);
    assert.equal(mid.onQueued(10, backlog(64, 60, 100, 400), 4), 8);
    assert.equal(mid.onQueued(20, backlog(64, 60, 100, 400), 8), 15);
  });

  it('limits scale-down to half the current scale per tick', () => {
    const s2 = new KpaScaler(config(), 0);
    let now = 0;
    for (let i = 0; i < 30; i++) s2.decide((now += TICK), 10, 10);
    // load disappears: the stable average decays; each tick at most halves
    let scale = 10;
    for (let i = 0; i < 40; i++) {
      const next = s2.decide((now += TICK), 0, scale);
      assert.ok(next >= Math.floor(scale / 2), `${scale} -> ${next}`);
      scale = next;
    }
    assert.equal(scale, 0);
  });

  it('scales to zero only after a whole quiet stable window', () => {
    const s = new KpaScaler(config({ stableWindowMs: 6000, panicWindowMs: 2000 }), 0);
    let now = 1000;
    s.scaleFromZero(now);
    // the request finished before the first tick: every sample is 0
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) seen.push(s.decide((now += TICK), 0, 1));
    // ticks at 3 s, 5 s: still inside the 6 s window after activity at 1 s; at 7 s the window is quiet
    assert.deepEqual(seen, [1, 1, 0, 0]);
  });

  it('wants no sandbox once its sandboxes were reclaimed, until requests come again', () => {
    const s = new KpaScaler(config({ stableWindowMs: 6000, panicWindowMs: 2000 }), 0);
    const { now } = run(s, 0, 2, 4, 4);
    s.forget();
    assert.equal(s.lastActiveAt, now);
    assert.equal(s.decide(now + TICK, 0, 0), 0);
    assert.equal(s.decide(now + 2 * TICK, 2, 0), 2);
  });

  it('counts activity reported between ticks as activity', () => {
    const s = new KpaScaler(config({ stableWindowMs: 6000, panicWindowMs: 2000 }), 0);
    let now = 0;
    s.decide((now += TICK), 0, 1);
    s.observe(now + 1500, true); // a short request between ticks
    assert.equal(s.decide((now += TICK), 0, 1), 1);
    assert.equal(s.decide((now += TICK), 0, 1), 1);
    assert.equal(s.decide((now += TICK), 0, 1), 1);
    assert.equal(s.decide(now + TICK, 0, 1), 0);
  });

  it('clamps to the lower and upper bounds', () => {
    const low = new KpaScaler(kpaConfigFor(spec({ minScale: 3 })), 0);
    assert.equal(run(low, 0, 40, 0, 3).scale, 3);
    const high = new KpaScaler(kpaConfigFor(spec({ maxScale: 4 })), 0);
    assert.equal(high.decide(TICK, 100, 1), 4);
    const sweep = new KpaScaler(kpaConfigFor(spec({ coldStartSweep: true })), 0);
    assert.equal(sweep.decide(TICK, 100, 1), 1);
  });

  it('limits scale-up to 1000x the current scale', () => {
    const s = new KpaScaler(config(), 0);
    assert.equal(s.decide(TICK, 5000, 1), 1000);
  });

  it('holds recovered sandboxes for one stable window', () => {
    const s = new KpaScaler(config({ stableWindowMs: 6000, panicWindowMs: 2000 }), 0);
    s.holdScaleDown(14_000); // until 20 s
    const { scale } = run(s, 0, 8, 0, 4);
    assert.equal(scale, 4);
    assert.equal(run(s, 20_000, 10, 0, 4).scale, 0);
  });
});
