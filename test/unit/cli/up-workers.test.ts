import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { groupPortRange, workerGroups } from '../../../src/cli/up-workers.js';
import { splitPortRange } from '../../../src/worker/ports.js';

type Options = Parameters<typeof workerGroups>[0];
const groups = (workers: number, runtime = 'simulated') =>
  workerGroups({ workers, runtime } as Options).map((g) => [g.name, g.first, g.count]);

describe('baton up worker processes', () => {
  it('puts simulated workers 25 to a process', () => {
    assert.deepEqual(groups(60), [
      ['workers-1', 0, 25],
      ['workers-2', 25, 25],
      ['workers-3', 50, 10],
    ]);
    assert.deepEqual(groups(1), [['worker-1', 0, 1]]);
  });

  it('spreads thousands of simulated workers over at most 10 processes', () => {
    const five = groups(5000);
    assert.equal(five.length, 10);
    assert.ok(five.every(([, , count]) => count === 500));
    // `baton worker --count` takes up to 1000.
    assert.ok(groups(10_000).every(([, , count]) => (count as number) <= 1000));
  });

  it('gives other runtimes a process per worker', () => {
    assert.deepEqual(groups(2, 'process'), [
      ['worker-1', 0, 1],
      ['worker-2', 1, 1],
    ]);
  });

  it("gives a process its workers' shares of --port-range, which it divides again", () => {
    const o = { workers: 60, runtime: 'simulated' } as Options;
    const shares = splitPortRange('20000-20599', 60, '--workers');
    const ranges = workerGroups(o).map((g) => groupPortRange(shares, g));
    assert.deepEqual(ranges, ['20000-20249', '20250-20499', '20500-20599']);
    // The second process's 25 workers get the same shares as in one split.
    assert.deepEqual(splitPortRange(ranges[1]!, 25, '--count'), shares.slice(25, 50));
  });
});
