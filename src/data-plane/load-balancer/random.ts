/** Uniformly random among the sandboxes with a free slot. */
import {
  hasFreeSlot,
  type BalancedEndpoint,
  type LoadBalancer,
  type RandomSource,
} from './load-balancer.js';

export class RandomBalancer implements LoadBalancer {
  constructor(private readonly random: RandomSource = Math.random) {}

  pick<E extends BalancedEndpoint>(endpoints: readonly E[], limit: number): E | undefined {
    let chosen: E | undefined;
    let seen = 0;
    for (const e of endpoints) {
      if (!hasFreeSlot(e, limit)) continue;
      seen++;
      if (this.random() * seen < 1) chosen = e;
    }
    return chosen;
  }
}
