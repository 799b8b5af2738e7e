/** Every key name the stores use, in one place. */

export type RecordKind =
  'functions' | 'workers' | 'data-planes' | 'secrets' | 'traffic' | 'invocations';

export const DEFAULT_REDIS_PREFIX = 'baton:';

/** Redis: one hash per record kind, field = record id, value = JSON. */
export function redisHashKey(prefix: string, kind: RecordKind): string {
  return `${prefix}${kind}`;
}

/** Embedded (LMDB): one named sub-database per record kind, key = record id. */
export function embeddedDbName(kind: RecordKind): string {
  return kind;
}

/** Folder inside the data dir that holds the embedded database. */
export const EMBEDDED_STORE_DIR = 'store';

export const DEFAULT_ETCD_PREFIX = '/baton/';

/** etcd: one key per record, `PREFIX + kind + '/' + id`, value = JSON. */
export function etcdKindPrefix(prefix: string, kind: RecordKind): string {
  return `${prefix}${kind}/`;
}

/** etcd: the election among control-plane replicas. */
export function etcdElectionName(prefix: string): string {
  return `${prefix}leader`;
}

/** etcd: where etcd3's Election keeps the campaign keys of that election (`election/NAME/LEASE`). */
export function etcdCampaignPrefix(prefix: string): string {
  return `election/${etcdElectionName(prefix)}/`;
}
