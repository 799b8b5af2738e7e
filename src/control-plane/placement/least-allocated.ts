/**
 * Kubernetes' default scoring as Dirigent uses it: LeastAllocated (prefer the
 * node with the most free CPU and memory after placing) plus
 * BalancedAllocation (prefer the node whose CPU and memory use stay closest).
 * Each score is 0..100; the highest sum wins; ties go to the earlier node.
 */
import {
  chargeOn,
  fits,
  type PlacementNode,
  type PlacementPolicy,
  type PlacementRequest,
} from './placement-policy.js';

export function leastAllocatedScore(node: PlacementNode, request: PlacementRequest): number {
  const charge = chargeOn(node, request);
  const cpuFraction = (node.cpuAllocatedMilli + charge.cpuMilli) / node.cpuCapacityMilli;
  const memFraction = (node.memoryAllocatedMib + charge.memoryMib) / node.memoryCapacityMib;
  const leastAllocated = ((1 - cpuFraction + (1 - memFraction)) / 2) * 100;
  // Standard deviation of two fractions is half their distance.
  const balanced = (1 - Math.abs(cpuFraction - memFraction) / 2) * 100;
  return leastAllocated + balanced;
}

export class LeastAllocatedPlacement implements PlacementPolicy {
  readonly name = 'least-allocated';

  place(nodes: readonly PlacementNode[], request: PlacementRequest): string | undefined {
    let best: PlacementNode | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const node of nodes) {
      if (!fits(node, request)) continue;
      const score = leastAllocatedScore(node, request);
      if (score > bestScore) {
        best = node;
        bestScore = score;
      }
    }
    return best?.id;
  }
}
