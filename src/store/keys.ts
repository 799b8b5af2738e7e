/** Every key name the stores use, in one place. */

export type RecordKind = 'functions' | 'workers' | 'data-planes';

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
