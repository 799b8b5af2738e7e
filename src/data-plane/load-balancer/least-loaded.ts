/** The sandbox with the fewest requests in flight; ties go to the earlier one. */
import { hasFreeSlot, type BalancedEndpoint, type LoadBalancer } from './load-balancer.js';

export class LeastLoadedBalancer implements LoadBalancer {
  pick<E extends BalancedEndpoint>(endpoints: readonly E[], limit: number): E | undefined {
    let best: E | undefined;
    for (const e of endpoints) {
      if (!hasFreeSlot(e, limit)) continue;
      if (best === undefined || e.inflight < best.inflight) {
        best = e;
        if (e.inflight === 0) break;
      }
    }
    return best;
  }
}
