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

/** Clusters up to this size have every node that fits scored. */
const MIN_NODES_TO_SCORE = 100;

/**
 * How many nodes that fit are scored for one placement, as kube-scheduler's
 * adaptive percentageOfNodesToScore: every node of up to 100; of more,
 * (50 - n/125) % of them, at least 5 % and at least 100 (500 of 5000).
 */
export function nodesToScore(n: number): number {
  if (n <= MIN_NODES_TO_SCORE) return n;
  const percent = Math.max(5, 50 - n / 125);
  return Math.max(MIN_NODES_TO_SCORE, Math.floor((n * percent) / 100));
}

/**
 * Scores the nodes that fit and takes the best. In a large cluster only the
 * first nodesToScore() that fit are scored, starting where the last
 * placement stopped, so that every node is looked at in turn (kube-scheduler
 * does the same): scoring all 5000 of the paper's workers for each cold
 * start took most of the control plane's time. Ties go to the node looked
 * at first.
 */
export class LeastAllocatedPlacement implements PlacementPolicy {
  readonly name = 'least-allocated';
  /** Where the next sampled scan starts. */
  #next = 0;

  place(nodes: readonly PlacementNode[], request: PlacementRequest): string | undefined {
    const n = nodes.length;
    const wanted = nodesToScore(n);
    const start = wanted < n ? this.#next % n : 0;
    let best: PlacementNode | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    let found = 0;
    let looked = 0;
    while (looked < n && found < wanted) {
      const node = nodes[(start + looked) % n]!;
      looked++;
      if (!fits(node, request)) continue;
      found++;
      const score = leastAllocatedScore(node, request);
      if (score > bestScore) {
        best = node;
        bestScore = score;
      }
    }
    if (wanted < n) this.#next = (start + looked) % n;
    return best?.id;
  }
}
