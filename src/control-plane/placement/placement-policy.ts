/**
 * Placement plug point: choose the worker for one new sandbox from a snapshot
 * of worker allocations. Pure: no I/O, no clock; randomness is injected. The
 * caller updates allocations after each choice, so a batch of placements is a
 * loop of calls.
 */

export interface PlacementRequest {
  readonly cpuMilli: number;
  readonly memoryMib: number;
}

export interface PlacementNode {
  readonly id: string;
  readonly cpuCapacityMilli: number;
  readonly memoryCapacityMib: number;
  readonly cpuAllocatedMilli: number;
  readonly memoryAllocatedMib: number;
  /** The least a sandbox takes on this node, whatever it requests (its runtime's cost). */
  readonly sandboxFloor?: PlacementRequest | undefined;
}

export interface PlacementPolicy {
  readonly name: string;
  /** Id of the chosen node, or undefined when no node has room. */
  place(nodes: readonly PlacementNode[], request: PlacementRequest): string | undefined;
}

export const PLACEMENT_POLICY_NAMES = ['least-allocated', 'round-robin', 'random'] as const;
export type PlacementPolicyName = (typeof PLACEMENT_POLICY_NAMES)[number];

/** What a sandbox requesting `request` takes on `node`: the request, raised to the node's floor. */
export function chargeOn(node: PlacementNode, request: PlacementRequest): PlacementRequest {
  const floor = node.sandboxFloor;
  if (floor === undefined) return request;
  return {
    cpuMilli: Math.max(request.cpuMilli, floor.cpuMilli),
    memoryMib: Math.max(request.memoryMib, floor.memoryMib),
  };
}

export function fits(node: PlacementNode, request: PlacementRequest): boolean {
  const charge = chargeOn(node, request);
  return (
    node.cpuAllocatedMilli + charge.cpuMilli <= node.cpuCapacityMilli &&
    node.memoryAllocatedMib + charge.memoryMib <= node.memoryCapacityMib
  );
}

export type RandomSource = () => number;
