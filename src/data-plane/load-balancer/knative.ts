/**
 * Knative activator's policy: container concurrency 1..3 -> first sandbox
 * with a free slot; above 3 -> round-robin over free sandboxes; 0
 * (unlimited) -> power of two random choices, the less loaded wins.
 */
import {
  hasFreeSlot,
  type BalancedEndpoint,
  type LoadBalancer,
  type RandomSource,
} from './load-balancer.js';
import { RoundRobinBalancer } from './round-robin.js';

export class KnativeBalancer implements LoadBalancer {
  readonly #roundRobin = new RoundRobinBalancer();
  constructor(private readonly random: RandomSource = Math.random) {}

  pick<E extends BalancedEndpoint>(endpoints: readonly E[], limit: number): E | undefined {
    if (limit === 0) return this.#powerOfTwo(endpoints);
    if (limit <= 3) return endpoints.find((e) => hasFreeSlot(e, limit));
    return this.#roundRobin.pick(endpoints, limit);
  }

  #powerOfTwo<E extends BalancedEndpoint>(endpoints: readonly E[]): E | undefined {
    const n = endpoints.length;
    if (n <= 1) return endpoints[0];
    const a = Math.floor(this.random() * n);
    let b = Math.floor(this.random() * (n - 1));
    if (b >= a) b++;
    const ea = endpoints[a]!;
    const eb = endpoints[b]!;
    return eb.inflight < ea.inflight ? eb : ea;
  }
}
