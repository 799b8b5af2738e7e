/** Cycles through the nodes in the order given, skipping nodes without room. */
import {
  fits,
  type PlacementNode,
  type PlacementPolicy,
  type PlacementRequest,
} from './placement-policy.js';

export class RoundRobinPlacement implements PlacementPolicy {
  readonly name = 'round-robin';
  #next = 0;

  place(nodes: readonly PlacementNode[], request: PlacementRequest): string | undefined {
    const n = nodes.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const node = nodes[i]!;
      if (fits(node, request)) {
        this.#next = (i + 1) % n;
        return node.id;
      }
    }
    return undefined;
  }
}
