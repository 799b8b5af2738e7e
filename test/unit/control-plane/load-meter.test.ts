/**
 * LoadMeter: the in-flight count a function's scaler samples each tick,
 * from its data planes' cumulative integrals (between reports, each plane's
 * counts taken as unchanged), across restarts and departures of data
 * planes: the window's mean, capped by what its requests kept busy plus
 * what clears the queue within a creation time. And the mean service time
 * (over about SERVICE_MEMORY requests) and creation time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CREATION_WEIGHT,
  LoadMeter,
  SERVICE_MEMORY,
} from '../../../src/control-plane/autoscaler/load-meter.js';

function load(inflightMs: number, busyMs = 0, served = 0, serviceMs = 0) {
  return { inflightMs, busyMs, served, serviceMs };
}

describe('LoadMeter', () => {
  it('has no demand before a data plane reported its load', () => {
    const m = new LoadMeter();
    assert.equal(m.takeDemand(1000, 0), undefined);
    assert.equal(m.serviceMs, undefined);
  });

  it('takes the mean in-flight count over each window, not the count at the reports', () => {
    const m = new LoadMeter();
    // What the plane measured before this control plane heard of it is left out.
    m.report('dp', 0, 30, 29, load(50_000));
    // 2 s at a mean of 1.5 in flight (bursts of 30 at the instants of reports).
    m.report('dp', 2000, 30, 29, load(53_000));
    assert.equal(m.takeDemand(2000, 29), 1.5);
    // Quiet since: its last report said 0 in flight.
    m.report('dp', 2500, 0, 0, load(53_500));
    assert.equal(m.takeDemand(4000, 0), 0.5 / 2);
    assert.equal(m.takeDemand(6000, 0), 0);
  });

  it('takes counts as unchanged until the next report, and the report corrects them', () => {
    const m = new LoadMeter();
    m.report('dp', 0, 4, 0, load(0));
    assert.equal(m.takeDemand(1000, 0), 4, 'four in flight since the report');
    // It was 2 on average over the first 2 s after all: the next window makes up for it.
    m.report('dp', 2000, 2, 0, load(4000));
    assert.equal(m.takeDemand(2000, 0), 0);
    assert.equal(m.takeDemand(3000, 0), 2);
  });

  it('sums data planes, and keeps going through a restart and a departure', () => {
    const m = new LoadMeter();
    m.report('a', 0, 1, 0, load(100));
    m.report('b', 0, 1, 0, load(900));
    m.report('a', 1000, 1, 0, load(1100));
    m.report('b', 1000, 3, 0, load(1900));
    assert.equal(m.takeDemand(1000, 0), 2);
    // b restarted: it counts from zero again.
    m.report('b', 2000, 0, 0, load(500));
    // a left, with one in flight for the second it was last seen.
    m.drop('a', 2000);
    assert.equal(m.takeDemand(2000, 0), (1000 + 500) / 1000);
    m.report('a', 2500, 0, 0, load(0));
    assert.equal(m.takeDemand(3000, 0), 0, 'a back: from its first report on');
  });

  it('starts a window afresh when the function is taken up again', () => {
    const m = new LoadMeter();
    m.report('dp', 0, 0, 0, load(0));
    m.report('dp', 60_000, 5, 0, load(10));
    m.restart(60_000);
    assert.equal(m.takeDemand(62_000, 0), 5, 'not diluted by the quiet minute before');
    const none = new LoadMeter();
    none.restart(0);
    assert.equal(none.takeDemand(1000, 0), undefined, 'nothing reported: nothing to average');
  });

  it('caps the mean at what kept sandboxes busy plus what clears the queue within a creation time', () => {
    const m = new LoadMeter();
    m.created(50);
    m.report('dp', 0, 0, 0, load(0));
    // A backlog of hundreds for part of the window, cleared by the end: the
    // mean is 227, the sandboxes were busy 2 on average, served in 0.5 ms each.
    m.report('dp', 2000, 2, 0, load(454_000, 4000, 8000, 4000));
    assert.equal(m.serviceMs, 0.5);
    assert.equal(m.takeDemand(2000, 0), 2, 'the queue is gone: what kept them busy');
    // Still 300 waiting at the end of the next: 300 x 0.5 ms clear in 50 ms with 3 more.
    m.report('dp', 4000, 302, 300, load(908_000, 8000, 16_000, 8000));
    assert.equal(m.takeDemand(4000, 300), 2 + 3);
    // Short waits, none left at the tick: what kept them busy.
    m.report('dp', 6000, 2, 0, load(911_000, 10_000, 20_000, 10_000));
    assert.equal(m.takeDemand(6000, 0), 1);
    // A mean below the cap is the mean.
    m.report('dp', 8000, 2, 0, load(912_000, 12_000, 24_000, 12_000));
    assert.equal(m.takeDemand(8000, 0), 0.5);
  });

  it('keeps the mean service time of about the last SERVICE_MEMORY requests', () => {
    const m = new LoadMeter();
    m.report('dp', 0, 0, 0, load(0));
    m.report('dp', 10, 0, 0, load(0, 0, 2, 2));
    assert.equal(m.serviceMs, 1);
    m.report('dp', 20, 0, 0, load(0, 0, 2 + SERVICE_MEMORY, 2 + 10 * SERVICE_MEMORY));
    assert.equal(m.serviceMs, 10, 'that many requests replace it');
    m.report('dp', 30, 0, 0, load(0, 0, 3 + SERVICE_MEMORY, 12 + 10 * SERVICE_MEMORY));
    assert.equal(m.serviceMs, 10, 'one request as slow as the mean leaves it');
    m.report('dp', 40, 0, 0, load(0, 0, 4 + SERVICE_MEMORY, 1012 + 10 * SERVICE_MEMORY));
    assert.equal(m.serviceMs, 10 + (1000 - 10) / SERVICE_MEMORY, 'one slow one moves it a little');
  });

  it('keeps a moving mean of creation times', () => {
    const m = new LoadMeter();
    assert.equal(m.creationMs, undefined);
    m.created(40);
    assert.equal(m.creationMs, 40);
    m.created(440);
    assert.equal(m.creationMs, 40 + 400 * CREATION_WEIGHT);
  });
});
