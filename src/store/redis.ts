/**
 * Redis ClusterStore (ioredis): the store for a cluster of control planes.
 * One hash per record kind. Durability is the server's: the store checks on
 * every (re)connection that the server runs with AOF and `appendfsync
 * always` (the paper's setting) and refuses to write to one that does not;
 * it never changes the server's configuration (turning AOF on at run time
 * makes Redis rewrite its AOF from what it holds, which can lose data).
 * While the server is unreachable every call fails at once with StoreError
 * (no offline queue) and the client keeps reconnecting in the background.
 * Leaves out: Redis Cluster sharding and replication set-up (operator's job).
 */
import { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.js';
import {
  BatonError,
  ClosedError,
  InvalidConfigError,
  StoreError,
  errorMessage,
} from '../shared/errors.js';
import { DEFAULT_REDIS_PREFIX, redisHashKey, type RecordKind } from './keys.js';
import { decodeJsonRecord, type RecordOf } from './codec.js';
import { RecordStore } from './record-store.js';

/** A call that gets no answer in this long fails (a server that hangs is as good as down). */
const COMMAND_TIMEOUT_MS = 5_000;

export interface RedisStoreOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  keyPrefix?: string;
  connectTimeoutMs?: number;
  /**
   * Return a store even when the server cannot be reached at first: calls
   * fail with StoreError until it can. Default false (connect rejects).
   */
  startWhenUnreachable?: boolean;
  logger: Logger;
}

export class RedisStore extends RecordStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #where: string;
  /** Why the server may not be written to (it runs without durable writes); undefined when it may. */
  #unsafe: string | undefined;
  /** Set once connect() has made its own first check. */
  #started = false;
  #closed = false;

  private constructor(redis: Redis, prefix: string, where: string) {
    super();
    this.#redis = redis;
    this.#prefix = prefix;
    this.#where = where;
  }

  /**
   * Connects and checks the server's durability settings. Rejects with
   * InvalidConfigError when the server runs without them (saying how to turn
   * them on), and with StoreError when it cannot be reached (unless
   * `startWhenUnreachable`).
   */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const where = `redis at ${redactUrl(options.url)}`;
    const redis = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true,
    });
    const store = new RedisStore(redis, options.keyPrefix ?? DEFAULT_REDIS_PREFIX, where);
    const log = options.logger;
    let lastError: Error | undefined;
    let reported = false;
    redis.on('error', (err: Error) => {
      lastError = err;
      if (!reported) log.warn({ err: errorMessage(err) }, `${where}: connection error`);
      reported = true;
    });
    // Checked on every connection: the server may have been replaced or reconfigured.
    redis.on('ready', () => {
      reported = false;
      if (!store.#started) return;
      void store.#checkDurability().then(
        (problem) => {
          if (problem !== undefined && store.#unsafe === undefined)
            log.error({ problem }, `${where}: refusing to write to it`);
          store.#unsafe = problem;
        },
        (err: unknown) =>
          log.warn({ err: errorMessage(err) }, `${where}: cannot read its configuration`),
      );
    });
    try {
      await redis.connect();
    } catch (err) {
      // The socket error may be reported just after the rejection.
      await new Promise((r) => setImmediate(r));
      const cause = lastError ?? err;
      if (options.startWhenUnreachable === true) {
        log.warn(
          { err: errorMessage(cause) },
          `${where} is not reachable; will keep trying in the background`,
        );
        store.#started = true;
        return store;
      }
      redis.disconnect();
      throw new StoreError(`cannot use ${where}: ${errorMessage(cause)}`, { cause });
    }
    const problem = await store.#checkDurability().catch((err: unknown) => {
      redis.disconnect();
      throw new StoreError(`cannot use ${where}: ${errorMessage(err)}`, { cause: err });
    });
    if (problem !== undefined) {
      redis.disconnect();
      throw new InvalidConfigError(`--redis-url: ${problem}`);
    }
    store.#started = true;
    return store;
  }

  /** Resolves when the server answers and may be written to; StoreError otherwise. */
  async ping(): Promise<void> {
    await this.#call(() => this.#redis.ping());
    if (this.#unsafe !== undefined) throw new StoreError(this.#unsafe);
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

  protected async putRecord(kind: RecordKind, id: string, value: unknown): Promise<void> {
    this.#assertWritable();
    await this.#call(() =>
      this.#redis.hset(redisHashKey(this.#prefix, kind), id, JSON.stringify(value)),
    );
  }

  protected async deleteRecord(kind: RecordKind, id: string): Promise<boolean> {
    this.#assertWritable();
    return (await this.#call(() => this.#redis.hdel(redisHashKey(this.#prefix, kind), id))) > 0;
  }

  protected async getRecord<K extends RecordKind>(
    kind: K,
    id: string,
  ): Promise<RecordOf<K> | undefined> {
    const raw = await this.#call(() => this.#redis.hget(redisHashKey(this.#prefix, kind), id));
    return raw === null ? undefined : decodeJsonRecord(kind, id, raw);
  }

  protected async listRecords<K extends RecordKind>(kind: K): Promise<RecordOf<K>[]> {
    const all = await this.#call(() => this.#redis.hgetall(redisHashKey(this.#prefix, kind)));
    return Object.entries(all).map(([id, raw]) => decodeJsonRecord(kind, id, raw));
  }

  /** Runs one command; whatever goes wrong with the server is a StoreError naming it. */
  async #call<T>(command: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('redis store is closed');
    try {
      return await command();
    } catch (err) {
      if (err instanceof BatonError) throw err;
      throw new StoreError(`${this.#where}: ${errorMessage(err)}`, { cause: err });
    }
  }

  #assertWritable(): void {
    if (this.#unsafe !== undefined && !this.#closed) throw new StoreError(this.#unsafe);
  }

  /** Why the server must not be written to, or undefined when it runs with durable writes. */
  async #checkDurability(): Promise<string | undefined> {
    const [, appendonly] = (await this.#redis.config('GET', 'appendonly')) as [string, string];
    const [, appendfsync] = (await this.#redis.config('GET', 'appendfsync')) as [string, string];
    if (appendonly === 'yes' && appendfsync === 'always') return undefined;
    return (
      `${this.#where} runs with appendonly ${appendonly} and appendfsync ${appendfsync}; ` +
      'Baton acknowledges a registration only once it is on disk and needs appendonly yes ' +
      'and appendfsync always: set both in redis.conf and restart Redis ' +
      '(CONFIG SET on a running server makes it rewrite its AOF from what it holds now)'
    );
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
