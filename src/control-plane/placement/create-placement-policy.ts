import { InvalidConfigError } from '../../shared/errors.js';
import { LeastAllocatedPlacement } from './least-allocated.js';
import { RandomPlacement } from './random.js';
import { RoundRobinPlacement } from './round-robin.js';
import { PLACEMENT_POLICY_NAMES, type PlacementPolicy } from './placement-policy.js';

export function createPlacementPolicy(name: string): PlacementPolicy {
  switch (name) {
    case 'least-allocated':
      return new LeastAllocatedPlacement();
    case 'round-robin':
      return new RoundRobinPlacement();
    case 'random':
      return new RandomPlacement();
    default:
      throw new InvalidConfigError(
        `--placement: unknown policy "${name}" (expected one of ${PLACEMENT_POLICY_NAMES.join(', ')})`,
      );
  }
}
