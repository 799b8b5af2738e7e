/**
 * LoadMeter: the in-flight count a function's scaler samples each tick,
 * from its data planes' cumulative measures (between reports, each plane's
 * count taken as unchanged), across restarts and departures of data planes:
 * the window's mean, capped by Little's law over what was served plus what
 * clears the queue within a creation time. The service time is the median
 * of the latest periods' means; the creation time a moving mean.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CAP_UTILIZATION,
  CREATION_WEIGHT,
  LoadMeter,
  PERIOD_MS,
  SERVICE_PERIODS,
} from '../../../src/control-plane/autoscaler/load-meter.js';

function load(inflightMs: number, served = 0, serviceMs = 0) {
  return { inflightMs, served, serviceMs };
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
    m.report('dp', 0, 30, load(50_000));
    // 2 s at a mean of 1.5 in flight (bursts of 30 at the instants of reports).
    m.report('dp', 2000, 30, load(53_000));
    assert.equal(m.takeDemand(2000, 29), 1.5);
    // Quiet since: its last report said 0 in flight.
    m.report('dp', 2500, 0, load(53_500));
    assert.equal(m.takeDemand(4000, 0), 0.5 / 2);
    assert.equal(m.takeDemand(6000, 0), 0);
  });

  it('takes a count as unchanged until the next report, and the report corrects it', () => {
    const m = new LoadMeter();
    m.report('dp', 0, 4, load(0));
    assert.equal(m.takeDemand(1000, 0), 4, 'four in flight since the report');
    // It was 2 on average over the first 2 s after all: the next window makes up for it.
    m.report('dp', 2000, 2, load(4000));
    assert.equal(m.takeDemand(2000, 0), 0);
    assert.equal(m.takeDemand(3000, 0), 2);
  });

  it('sums data planes, and keeps going through a restart and a departure', () => {
    const m = new LoadMeter();
    m.report('a', 0, 1, load(100));
    m.report('b', 0, 1, load(900));
    m.report('a', 1000, 1, load(1100));
    m.report('b', 1000, 3, load(1900));
    assert.equal(m.takeDemand(1000, 0), 2);
    // b restarted: it counts from zero again.
    m.report('b', 2000, 0, load(500));
    // a left, with one in flight for the second it was last seen.
    m.drop('a', 2000);
    assert.equal(m.takeDemand(2000, 0), (1000 + 500) / 1000);
    m.report('a', 2500, 0, load(0));
    assert.equal(m.takeDemand(3000, 0), 0, 'a back: from its first report on');
  });

  it('starts a window afresh when the function is taken up again', () => {
    const m = new LoadMeter();
    m.report('dp', 0, 0, load(0));
    m.report('dp', 60_000, 5, load(10));
    m.restart(60_000);
    assert.equal(m.takeDemand(62_000, 0), 5, 'not diluted by the quiet minute before');
    const none = new LoadMeter();
    none.restart(0);
    assert.equal(none.takeDemand(1000, 0), undefined, 'nothing reported: nothing to average');
  });

  it('caps the mean by what was served and what clears the queue within a creation time', () => {
    const m = new LoadMeter();
    m.created(50);
    m.report('dp', 0, 0, load(0));
    // A backlog of hundreds for part of the window, cleared by its end: the
    // mean is 227; 2 requests/ms were served, in 0.5 ms each: 1 busy.
    m.report('dp', 2000, 2, load(454_000, 4000, 2000));
    assert.equal(m.serviceMs, 0.5);
    const cap = (busy: number) => busy / CAP_UTILIZATION;
    assert.equal(m.takeDemand(2000, 0), cap(1), 'the queue is gone: what served them');
    // 300 still waiting at the end of the next: 300 x 0.5 ms clear in 50 ms with 3 more.
    m.report('dp', 4000, 302, load(908_000, 8000, 4000));
    assert.equal(m.takeDemand(4000, 300), cap(1 + 3));
    // A mean below the cap is the mean.
    m.report('dp', 6000, 1, load(909_000, 12_000, 6000));
    assert.equal(m.takeDemand(6000, 0), 0.5);
    // No report in the window while requests are in flight: the rate holds.
    assert.equal(m.takeDemand(8000, 0), 1);
  });

  it('leaves the mean uncapped while served requests took no measurable time', () => {
    const m = new LoadMeter();
    m.created(50);
    m.report('dp', 0, 3, load(0));
    m.report('dp', 1000, 3, load(3000, 10, 0));
    assert.equal(m.serviceMs, 0);
    assert.equal(m.takeDemand(1000, 0), 3);
  });

  it('takes the service time as the median of the latest periods, which a stall does not move', () => {
    const m = new LoadMeter();
    m.report('dp', 0, 1, load(0));
    let served = 0;
    let serviceMs = 0;
    let now = 0;
    const period = (mean: number, ms = PERIOD_MS) => {
      served += 10;
      serviceMs += 10 * mean;
      m.report('dp', (now += ms), 1, load(now, served, serviceMs));
    };
    period(1);
    assert.equal(m.serviceMs, 1);
    period(50); // a stall
    period(1);
    assert.equal(m.serviceMs, 1);
    // A report sooner than PERIOD_MS after the period began is part of the next period.
    period(7, PERIOD_MS / 2);
    period(1, PERIOD_MS / 2);
    assert.equal(m.serviceMs, 1);
    for (let i = 0; i < SERVICE_PERIODS; i++) period(4);
    assert.equal(m.serviceMs, 4, 'the function got slower: its periods say so');
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
