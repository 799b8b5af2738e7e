/** Chooses and opens the configured ClusterStore. */
import type { Logger } from '../shared/logger.js';
import type { ClusterStore, StoreKind } from './store.js';
import { EmbeddedStore } from './embedded.js';
import { RedisStore } from './redis.js';
import { EtcdStore } from './etcd.js';

export type StoreOptions =
  | { kind: Extract<StoreKind, 'embedded'>; dataDir: string }
  | {
      kind: Extract<StoreKind, 'redis'>;
      url: string;
      keyPrefix?: string;
      /** Start even when the server cannot be reached yet (calls fail until it can). */
      startWhenUnreachable?: boolean;
    }
  | { kind: Extract<StoreKind, 'etcd'>; endpoints: string[] };

export async function createStore(options: StoreOptions, logger: Logger): Promise<ClusterStore> {
  if (options.kind === 'embedded') return EmbeddedStore.open({ dataDir: options.dataDir });
  if (options.kind === 'etcd') return new EtcdStore({ endpoints: options.endpoints });
  return RedisStore.connect({
    url: options.url,
    logger,
    ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
    ...(options.startWhenUnreachable === undefined
      ? {}
      : { startWhenUnreachable: options.startWhenUnreachable }),
  });
}
