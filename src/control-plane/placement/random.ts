/** Uniformly random among the nodes with room. */
import {
  fits,
  type PlacementNode,
  type PlacementPolicy,
  type PlacementRequest,
  type RandomSource,
} from './placement-policy.js';

export class RandomPlacement implements PlacementPolicy {
  readonly name = 'random';
  constructor(private readonly random: RandomSource = Math.random) {}

  place(nodes: readonly PlacementNode[], request: PlacementRequest): string | undefined {
    // Reservoir sampling: one pass, no allocation.
    let chosen: string | undefined;
    let seen = 0;
    for (const node of nodes) {
      if (!fits(node, request)) continue;
      seen++;
      if (this.random() * seen < 1) chosen = node.id;
    }
    return chosen;
  }
}
