/**
 * Load-balancer plug point: choose a sandbox with a free slot for one
 * request. One instance per function (it may keep a cursor). Pure over the
 * endpoint list it is given: no I/O, randomness injected. Returns undefined
 * when every endpoint is at its concurrency limit (the request then queues).
 */

export interface BalancedEndpoint {
  readonly id: string;
  /** Requests executing on this sandbox through this data plane. */
  readonly inflight: number;
}

export interface LoadBalancer {
  /** `limit` = requests one sandbox may serve at once; 0 = unlimited. */
  pick<E extends BalancedEndpoint>(endpoints: readonly E[], limit: number): E | undefined;
}

export const LOAD_BALANCER_NAMES = ['least-loaded', 'round-robin', 'random', 'knative'] as const;
export type LoadBalancerName = (typeof LOAD_BALANCER_NAMES)[number];

export type RandomSource = () => number;

export function hasFreeSlot(endpoint: BalancedEndpoint, limit: number): boolean {
  return limit === 0 || endpoint.inflight < limit;
}
