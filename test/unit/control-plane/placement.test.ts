import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  LeastAllocatedPlacement,
  leastAllocatedScore,
  nodesToScore,
} from '../../../src/control-plane/placement/least-allocated.js';
import { RoundRobinPlacement } from '../../../src/control-plane/placement/round-robin.js';
import { RandomPlacement } from '../../../src/control-plane/placement/random.js';
import { createPlacementPolicy } from '../../../src/control-plane/placement/create-placement-policy.js';
import {
  chargeOn,
  type PlacementNode,
} from '../../../src/control-plane/placement/placement-policy.js';

function node(
  id: string,
  cpuUsed: number,
  memUsed: number,
  cpuCap = 1000,
  memCap = 1000,
): PlacementNode {
  return {
    id,
    cpuCapacityMilli: cpuCap,
    memoryCapacityMib: memCap,
    cpuAllocatedMilli: cpuUsed,
    memoryAllocatedMib: memUsed,
  };
}
const req = { cpuMilli: 100, memoryMib: 100 };

describe('least-allocated placement', () => {
  it('scores an empty node above a loaded one', () => {
    assert.ok(
      leastAllocatedScore(node('a', 0, 0), req) > leastAllocatedScore(node('b', 500, 500), req),
    );
  });

  it('scores balanced use above unbalanced use at equal total', () => {
    assert.ok(
      leastAllocatedScore(node('a', 300, 300), req) > leastAllocatedScore(node('b', 600, 0), req),
    );
  });

  it('computes the Kubernetes scores: LeastAllocated + BalancedAllocation', () => {
    // after placing: cpu 0.2, mem 0.6 -> least = ((0.8 + 0.4) / 2) * 100 = 60; balanced = (1 - 0.4/2) * 100 = 80
    assert.equal(Math.round(leastAllocatedScore(node('a', 100, 500), req)), 140);
  });

  it('picks the least allocated node and skips full ones', () => {
    const p = new LeastAllocatedPlacement();
    assert.equal(
      p.place([node('a', 800, 800), node('b', 200, 200), node('full', 950, 0)], req),
      'b',
    );
    assert.equal(p.place([node('full', 950, 950)], req), undefined);
    assert.equal(p.place([], req), undefined);
  });

  it('spreads a batch when the caller updates allocations', () => {
    const p = new LeastAllocatedPlacement();
    const nodes = [node('a', 0, 0), node('b', 0, 0), node('c', 0, 0)].map((n) => ({ ...n }));
    const counts = new Map<string, number>();
    for (let i = 0; i < 9; i++) {
      const id = p.place(nodes, req)!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      const n = nodes.find((x) => x.id === id)!;
      Object.assign(n, {
        cpuAllocatedMilli: n.cpuAllocatedMilli + 100,
        memoryAllocatedMib: n.memoryAllocatedMib + 100,
      });
    }
    assert.deepEqual([...counts.values()], [3, 3, 3]);
  });

  it('scores as many nodes as kube-scheduler: all of 100, a share of more', () => {
    assert.equal(nodesToScore(0), 0);
    assert.equal(nodesToScore(100), 100);
    assert.equal(nodesToScore(101), 100);
    assert.equal(nodesToScore(1000), 420);
    assert.equal(nodesToScore(5000), 500);
    assert.equal(nodesToScore(100_000), 5000);
  });

  it('in a large cluster scores a window of nodes, each placement starting where the last stopped', () => {
    const p = new LeastAllocatedPlacement();
    // 1000 half-full nodes (420 scored per placement) and the emptiest last.
    const nodes = Array.from({ length: 1000 }, (_, i) =>
      i === 999 ? node('empty', 0, 0) : node(`n${i}`, 500, 500),
    );
    assert.deepEqual(
      [p.place(nodes, req), p.place(nodes, req), p.place(nodes, req)],
      ['n0', 'n420', 'empty'],
    );
  });

  it('in a large cluster skips full nodes without counting them and finds the one with room', () => {
    const p = new LeastAllocatedPlacement();
    const nodes = Array.from({ length: 1000 }, (_, i) =>
      i === 700 ? node('room', 500, 500) : node(`full${i}`, 1000, 1000),
    );
    assert.equal(p.place(nodes, req), 'room');
    assert.equal(p.place(nodes, req), 'room');
    assert.equal(p.place(nodes.slice(0, 700), req), undefined);
  });
});

describe('round-robin placement', () => {
  it('cycles and skips nodes without room', () => {
    const p = new RoundRobinPlacement();
    const nodes = [node('a', 0, 0), node('full', 1000, 0), node('c', 0, 0)];
    assert.deepEqual(
      [p.place(nodes, req), p.place(nodes, req), p.place(nodes, req)],
      ['a', 'c', 'a'],
    );
  });
});

describe('random placement', () => {
  it('chooses only among nodes with room, driven by the injected source', () => {
    const values = [0.99, 0.0, 0.4];
    const p = new RandomPlacement(() => values.shift() ?? 0);
    // feasible: a, c; reservoir: a taken (0.99*1<1), c replaces when 0.0*2<1
    assert.equal(p.place([node('a', 0, 0), node('full', 1000, 1000), node('c', 0, 0)], req), 'c');
    assert.equal(new RandomPlacement().place([node('full', 1000, 1000)], req), undefined);
  });
});

describe('createPlacementPolicy', () => {
  it('rejects an unknown name with the option named', () => {
    assert.throws(
      () => createPlacementPolicy('best-fit'),
      /--placement: unknown policy "best-fit"/,
    );
    assert.equal(createPlacementPolicy('least-allocated').name, 'least-allocated');
  });
});

describe("a node's sandbox floor", () => {
  const floored = (id: string, cpuUsed: number, memUsed: number): PlacementNode => ({
    ...node(id, cpuUsed, memUsed, 1000, 1024),
    sandboxFloor: { cpuMilli: 25, memoryMib: 128 },
  });
  const tiny = { cpuMilli: 1, memoryMib: 1 };

  it('charges a sandbox at least the floor, whatever it requests', () => {
    assert.deepEqual(chargeOn(floored('a', 0, 0), tiny), { cpuMilli: 25, memoryMib: 128 });
    assert.deepEqual(chargeOn(floored('a', 0, 0), { cpuMilli: 500, memoryMib: 64 }), {
      cpuMilli: 500,
      memoryMib: 128,
    });
    assert.deepEqual(chargeOn(node('b', 0, 0), tiny), tiny, 'no floor: the request');
  });

  it('fits no more sandboxes than the floor admits, under every policy', () => {
    for (const p of [
      new LeastAllocatedPlacement(),
      new RoundRobinPlacement(),
      new RandomPlacement(),
    ]) {
      assert.equal(p.place([floored('a', 0, 1024 - 127)], tiny), undefined, p.name);
      assert.equal(p.place([floored('a', 0, 1024 - 128)], tiny), 'a', p.name);
      assert.equal(p.place([floored('a', 980, 0)], tiny), undefined, p.name);
    }
  });
});
