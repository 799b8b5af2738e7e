/**
 * Placement plug point: choose the worker for one new sandbox from a snapshot
 * of worker allocations. Pure: no I/O, no clock; randomness is injected. The
 * caller updates allocations after each choice, so a batch of placements is a
 * loop of calls.
 */

export interface PlacementNode {
  readonly id: string;
  readonly cpuCapacityMilli: number;
  readonly memoryCapacityMib: number;
  readonly cpuAllocatedMilli: number;
  readonly memoryAllocatedMib: number;
}

export interface PlacementRequest {
  readonly cpuMilli: number;
  readonly memoryMib: number;
}

export interface PlacementPolicy {
  readonly name: string;
  /** Id of the chosen node, or undefined when no node has room. */
  place(nodes: readonly PlacementNode[], request: PlacementRequest): string | undefined;
}

export const PLACEMENT_POLICY_NAMES = ['least-allocated', 'round-robin', 'random'] as const;
export type PlacementPolicyName = (typeof PLACEMENT_POLICY_NAMES)[number];

export function fits(node: PlacementNode, request: PlacementRequest): boolean {
  return (
    node.cpuAllocatedMilli + request.cpuMilli <= node.cpuCapacityMilli &&
    node.memoryAllocatedMib + request.memoryMib <= node.memoryCapacityMib
  );
}

export type RandomSource = () => number;
