import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stealPercent, stolenTicks } from '../../../benchmarks/lib/bench.js';

const PROC_STAT = `cpu  50202 0 18951 169847 2502 0 3792 15342 0 0
cpu0 25101 0 9475 84923 1251 0 1896 7671 0 0
cpu1 25101 0 9476 84924 1251 0 1896 7671 0 0
intr 1 2 3
`;

test('stolenTicks: the steal figure of the machine-wide cpu line', () => {
  assert.equal(stolenTicks(PROC_STAT), 15342);
  // A kernel that does not count steal prints fewer figures.
  assert.equal(stolenTicks('cpu  1 2 3 4\nintr 1\n'), 0);
  assert.throws(() => stolenTicks('intr 1\n'), /cpu line/);
  // This machine's own /proc/stat reads.
  assert.ok(Number.isInteger(stolenTicks()) && stolenTicks() >= 0);
});

test('stealPercent: stolen ticks over the CPU time of every CPU', () => {
  // 464 ticks of 100 per second over 5 s of 2 CPUs: 46.4 %.
  assert.equal(stealPercent(464, 5, 2, 100), 46.4);
  assert.equal(stealPercent(0, 60, 2, 100), 0);
  assert.equal(stealPercent(10, 0, 2, 100), 0);
});
