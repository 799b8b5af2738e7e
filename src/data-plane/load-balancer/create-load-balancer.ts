import { InvalidConfigError } from '../../shared/errors.js';
import { KnativeBalancer } from './knative.js';
import { LeastLoadedBalancer } from './least-loaded.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { LOAD_BALANCER_NAMES, type LoadBalancer } from './load-balancer.js';

/** Returns a factory: each function gets its own balancer (some keep a cursor). */
export function loadBalancerFactory(name: string): () => LoadBalancer {
  switch (name) {
    case 'least-loaded':
      return () => new LeastLoadedBalancer();
    case 'round-robin':
      return () => new RoundRobinBalancer();
    case 'random':
      return () => new RandomBalancer();
    case 'knative':
      return () => new KnativeBalancer();
    default:
      throw new InvalidConfigError(
        `--load-balancer: unknown policy "${name}" (expected one of ${LOAD_BALANCER_NAMES.join(', ')})`,
      );
  }
}
