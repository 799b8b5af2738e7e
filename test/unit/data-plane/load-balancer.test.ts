import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LeastLoadedBalancer } from '../../../src/data-plane/load-balancer/least-loaded.js';
import { RoundRobinBalancer } from '../../../src/data-plane/load-balancer/round-robin.js';
import { RandomBalancer } from '../../../src/data-plane/load-balancer/random.js';
import { KnativeBalancer } from '../../../src/data-plane/load-balancer/knative.js';
import { loadBalancerFactory } from '../../../src/data-plane/load-balancer/create-load-balancer.js';

const eps = (...inflight: number[]) => inflight.map((n, i) => ({ id: `s${i}`, inflight: n }));

describe('least-loaded balancer', () => {
  it('picks the endpoint with the fewest in flight', () => {
    assert.equal(new LeastLoadedBalancer().pick(eps(3, 1, 2), 5)?.id, 's1');
  });
  it('returns undefined when every endpoint is at its limit', () => {
    assert.equal(new LeastLoadedBalancer().pick(eps(1, 1), 1), undefined);
    assert.equal(new LeastLoadedBalancer().pick([], 1), undefined);
  });
  it('treats limit 0 as unlimited', () => {
    assert.equal(new LeastLoadedBalancer().pick(eps(100, 50), 0)?.id, 's1');
  });
});

describe('round-robin balancer', () => {
  it('rotates over free endpoints', () => {
    const lb = new RoundRobinBalancer();
    const e = eps(0, 1, 0);
    assert.deepEqual([lb.pick(e, 1)?.id, lb.pick(e, 1)?.id, lb.pick(e, 1)?.id], ['s0', 's2', 's0']);
  });
});

describe('random balancer', () => {
  it('never picks a full endpoint', () => {
    const lb = new RandomBalancer();
    for (let i = 0; i < 100; i++) assert.equal(lb.pick(eps(1, 0, 1), 1)?.id, 's1');
  });
  it('is uniform over free endpoints given the source', () => {
    const seq = [0.1, 0.9, 0.9];
    assert.equal(new RandomBalancer(() => seq.shift()!).pick(eps(0, 0, 0), 1)?.id, 's0');
  });
});

describe('knative balancer', () => {
  it('first available for concurrency <= 3', () => {
    const lb = new KnativeBalancer();
    assert.equal(lb.pick(eps(3, 2, 0), 3)?.id, 's1');
    assert.equal(lb.pick(eps(1, 0), 1)?.id, 's1');
  });
  it('round-robin above 3', () => {
    const lb = new KnativeBalancer();
    const e = eps(0, 0, 0);
    assert.deepEqual([lb.pick(e, 10)?.id, lb.pick(e, 10)?.id], ['s0', 's1']);
  });
  it('power of two choices for unlimited concurrency', () => {
    const seq = [0.0, 0.5]; // a = 0, b = floor(0.5 * 2) = 1 -> 2 (skips a)
    const lb = new KnativeBalancer(() => seq.shift()!);
    assert.equal(lb.pick(eps(9, 5, 1), 0)?.id, 's2');
  });
});

describe('loadBalancerFactory', () => {
  it('rejects an unknown name with the option named', () => {
    assert.throws(
      () => loadBalancerFactory('fastest'),
      /--load-balancer: unknown policy "fastest"/,
    );
  });
});
