/** Every key name the stores use, in one place. */

export const RECORD_KINDS = [
  'functions',
  'workers',
  'data-planes',
  'secrets',
  'traffic',
  'invocations',
] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export const DEFAULT_REDIS_PREFIX = 'baton:';

/** Redis: one hash per record kind, field = record id, value = JSON. */
export function redisHashKey(prefix: string, kind: RecordKind): string {
  return `${prefix}${kind}`;
}

/** Embedded (LevelDB): one key per record, `kind + '/' + id`, value = JSON. */
export function embeddedKey(kind: RecordKind, id: string): string {
  return `${kind}/${id}`;
}

/** Embedded: the key range of one kind of record ('0' is the character after '/'). */
export function embeddedKindRange(kind: RecordKind): { gte: string; lt: string } {
  return { gte: `${kind}/`, lt: `${kind}0` };
}

/** Folder inside the data dir that holds the embedded database. */
export const EMBEDDED_STORE_DIR = 'store-leveldb';

/** Folder of an earlier Baton's embedded database (LMDB, one named sub-database per kind). */
export const LEGACY_EMBEDDED_STORE_DIR = 'store';

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
