import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HostStats } from '../../../src/worker/host-stats.js';

describe('host stats', () => {
  it('reads the host at most once per window; a sample asked sooner gets the last one', () => {
    let now = 0;
    const stats = new HostStats(1000, () => now);
    // Within the first window: the reading taken at construction, not zeros.
    assert.ok(stats.sample().memoryPercent > 0);
    now = 1000;
    const first = stats.sample();
    assert.ok(first.cpuPercent >= 0 && first.cpuPercent <= 100);
    assert.ok(first.memoryPercent > 0 && first.memoryPercent <= 100);
    now = 1999;
    assert.equal(stats.sample(), first);
    now = 2000;
    assert.notEqual(stats.sample(), first);
  });
});
