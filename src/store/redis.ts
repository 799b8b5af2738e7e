/**
 * Redis ClusterStore (ioredis): the store for a cluster of control planes.
 * One hash per record kind. Durability is the server's: on connect the store
 * checks that the server runs with AOF and `appendfsync always` (the paper's
 * setting) and, unless told not to, configures it so.
 * Leaves out: Redis Cluster sharding and replication set-up (operator's job).
 */
import { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.js';
import { ClosedError, StoreCorruptError, StoreError, errorMessage } from '../shared/errors.js';
import type { FunctionSpec } from '../shared/function-spec.js';
import type { DataPlaneRecord, WorkerRecord } from '../shared/cluster-objects.js';
import type { ClusterStore } from './store.js';
import { DEFAULT_REDIS_PREFIX, redisHashKey, type RecordKind } from './keys.js';
import { decodeRecord, type RecordOf } from './codec.js';

export interface RedisStoreOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  keyPrefix?: string;
  /** Set `appendonly yes` and `appendfsync always` on the server if they are not. Default true. */
  enforceDurability?: boolean;
  connectTimeoutMs?: number;
  logger: Logger;
}

export class RedisStore implements ClusterStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #prefix: string;
  #closed = false;

  private constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  /** Connects and checks durability settings. Throws StoreError when the server cannot be reached. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      maxRetriesPerRequest: 3,
      enableAutoPipelining: true,
    });
    // Until connected, remember why connecting fails; afterwards, log connection trouble.
    let lastError: Error | undefined;
    const onConnectError = (err: Error) => (lastError = err);
    redis.on('error', onConnectError);
    try {
      await redis.connect();
      await ensureDurability(redis, options.enforceDurability ?? true, options.logger);
    } catch (err) {
      redis.disconnect();
      // The socket error may be reported just after the rejection.
      await new Promise((r) => setImmediate(r));
      const cause = lastError ?? err;
      throw new StoreError(
        `cannot use redis at ${redactUrl(options.url)}: ${errorMessage(cause)}`,
        { cause },
      );
    }
    redis.off('error', onConnectError);
    redis.on('error', (err: Error) =>
      options.logger.warn({ err: errorMessage(err) }, 'redis connection error'),
    );
    return new RedisStore(redis, options.keyPrefix ?? DEFAULT_REDIS_PREFIX);
  }

  putFunction(spec: FunctionSpec): Promise<void> {
    return this.#put('functions', spec.name, spec);
  }
  getFunction(name: string): Promise<FunctionSpec | undefined> {
    return this.#get('functions', name);
  }
  listFunctions(): Promise<FunctionSpec[]> {
    return this.#list('functions');
  }
  deleteFunction(name: string): Promise<boolean> {
    return this.#delete('functions', name);
  }

  putWorker(worker: WorkerRecord): Promise<void> {
    return this.#put('workers', worker.id, worker);
  }
  listWorkers(): Promise<WorkerRecord[]> {
    return this.#list('workers');
  }
  deleteWorker(id: string): Promise<boolean> {
    return this.#delete('workers', id);
  }

  putDataPlane(dataPlane: DataPlaneRecord): Promise<void> {
    return this.#put('data-planes', dataPlane.id, dataPlane);
  }
  listDataPlanes(): Promise<DataPlaneRecord[]> {
    return this.#list('data-planes');
  }
  deleteDataPlane(id: string): Promise<boolean> {
    return this.#delete('data-planes', id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #put(kind: RecordKind, id: string, value: unknown): Promise<void> {
    this.#assertOpen();
    await this.#redis.hset(redisHashKey(this.#prefix, kind), id, JSON.stringify(value));
  }

  async #delete(kind: RecordKind, id: string): Promise<boolean> {
    this.#assertOpen();
    return (await this.#redis.hdel(redisHashKey(this.#prefix, kind), id)) > 0;
  }

  async #get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf<K> | undefined> {
    this.#assertOpen();
    const raw = await this.#redis.hget(redisHashKey(this.#prefix, kind), id);
    return raw === null ? undefined : decodeRecord(kind, id, parseJson(kind, id, raw));
  }

  async #list<K extends RecordKind>(kind: K): Promise<RecordOf<K>[]> {
    this.#assertOpen();
    const all = await this.#redis.hgetall(redisHashKey(this.#prefix, kind));
    return Object.entries(all).map(([id, raw]) => decodeRecord(kind, id, parseJson(kind, id, raw)));
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('redis store is closed');
  }
}

async function ensureDurability(redis: Redis, enforce: boolean, logger: Logger): Promise<void> {
  const [, appendonly] = (await redis.config('GET', 'appendonly')) as [string, string];
  const [, appendfsync] = (await redis.config('GET', 'appendfsync')) as [string, string];
  if (appendonly === 'yes' && appendfsync === 'always') return;
  if (!enforce) {
    logger.warn(
      { appendonly, appendfsync },
      'redis is not configured for durable writes (AOF, fsync always)',
    );
    return;
  }
  await redis.config('SET', 'appendonly', 'yes');
  await redis.config('SET', 'appendfsync', 'always');
  logger.warn(
    { was: { appendonly, appendfsync } },
    'configured redis for durable writes: appendonly yes, appendfsync always',
  );
}

function parseJson(kind: RecordKind, id: string, raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new StoreCorruptError(`stored ${kind} record "${id}" is not JSON: ${errorMessage(err)}`);
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
