/** Next sandbox after the last one chosen that has a free slot. */
import { hasFreeSlot, type BalancedEndpoint, type LoadBalancer } from './load-balancer.js';

export class RoundRobinBalancer implements LoadBalancer {
  #next = 0;

  pick<E extends BalancedEndpoint>(endpoints: readonly E[], limit: number): E | undefined {
    const n = endpoints.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const e = endpoints[i]!;
      if (hasFreeSlot(e, limit)) {
        this.#next = (i + 1) % n;
        return e;
      }
    }
    return undefined;
  }
}
