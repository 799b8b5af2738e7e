/**
 * etcd ClusterStore (the `etcd3` client): the store of a cluster with
 * several control-plane replicas, where etcd also runs their election
 * (control-plane/leadership.ts). One key per record. A write is
 * acknowledged once etcd has committed it through its raft log, which
 * etcd fsyncs before it answers.
 *
 * Fencing: once the control plane that owns this store leads, it calls
 * `fence` with its campaign key and that key's create revision; every write
 * after that is a transaction that succeeds only while that key still
 * exists with that revision. A deposed leader (its lease expired or was
 * revoked) therefore cannot write, however late its writes arrive:
 * NotLeaderError, and nothing changed.
 *
 * While etcd cannot be reached every call fails within CALL_TIMEOUT_MS with
 * StoreError; the client keeps reconnecting.
 *
 * A replica's store keeps a warm copy of the records (`startMirror`,
 * etcd-mirror.ts); lists are answered from it once it is proved current.
 */
import {
  Etcd3,
  isRecoverableError,
  type DeleteBuilder,
  type IResponseOp,
  type PutBuilder,
} from 'etcd3';
import { ConsecutiveBreaker, handleWhen, circuitBreaker, noop } from 'cockatiel';
import {
  BatonError,
  ClosedError,
  NotLeaderError,
  StoreError,
  errorMessage,
} from '../shared/errors.js';
import { DEFAULT_ETCD_PREFIX, etcdKindPrefix, type RecordKind } from './keys.js';
import { decodeJsonRecord, type RecordOf } from './codec.js';
import { RecordStore } from './record-store.js';
import { EtcdMirror, type MirrorCounters } from './etcd-mirror.js';
import type { Logger } from '../shared/logger.js';

/** A call that gets no answer in this long fails (etcd without a quorum does not answer). */
const CALL_TIMEOUT_MS = 3_000;

export interface EtcdStoreOptions {
  /** `http://host:port` of each etcd member. */
  endpoints: string[];
  keyPrefix?: string;
}

export class EtcdStore extends RecordStore {
  readonly kind = 'etcd' as const;
  /** The client, shared with the control plane's election (one connection per replica). */
  readonly client: Etcd3;
  readonly prefix: string;
  readonly #where: string;
  #fence: { key: string; createRevision: string } | undefined;
  #mirror: EtcdMirror | undefined;
  #closed = false;

  constructor(options: EtcdStoreOptions) {
    super();
    this.prefix = options.keyPrefix ?? DEFAULT_ETCD_PREFIX;
    this.#where = `etcd at ${options.endpoints.join(',')}`;
    this.client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: CALL_TIMEOUT_MS,
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS },
      faultHandling: {
        // Try the next member at once; never stop sending to a member for
        // seconds (the default breaker would hold a failover that long).
        global: noop,
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 200,
            breaker: new ConsecutiveBreaker(3),
          }),
      },
    });
  }

  /** From now on, writes succeed only while `key` exists with `createRevision` (see the file's comment). */
  fence(key: string, createRevision: string): void {
    this.#fence = { key, createRevision };
  }

  /** Keeps a warm copy of every record from now on, and answers lists from it (see the file's comment). */
  startMirror(logger?: Logger): void {
    if (this.#mirror !== undefined || this.#closed) return;
    this.#mirror = new EtcdMirror(this.client, this.prefix, logger);
    this.#mirror.start();
  }

  /** Lists answered from the warm copy, and lists read in full; undefined without one. */
  get mirrorCounters(): Readonly<MirrorCounters> | undefined {
    return this.#mirror?.counters;
  }

  async ping(): Promise<void> {
    // A linearizable read: answered only with a quorum, as a write would be.
    await this.#call(() => this.client.get(`${this.prefix}ping`).exec());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#mirror?.close();
    this.client.close();
  }

  #key(kind: RecordKind, id: string): string {
    return etcdKindPrefix(this.prefix, kind) + id;
  }

  protected async putRecord(kind: RecordKind, id: string, value: unknown): Promise<void> {
    const put = this.client.put(this.#key(kind, id)).value(JSON.stringify(value));
    if (this.#fence === undefined) await this.#call(() => put.exec());
    else await this.#commitFenced(this.#fence, put);
  }

  protected async deleteRecord(kind: RecordKind, id: string): Promise<boolean> {
    const del = this.client.delete().key(this.#key(kind, id));
    if (this.#fence === undefined) return (await this.#call(() => del.exec())).deleted !== '0';
    const done = await this.#commitFenced(this.#fence, del);
    return done?.response_delete_range?.deleted !== '0';
  }

  protected async getRecord<K extends RecordKind>(
    kind: K,
    id: string,
  ): Promise<RecordOf<K> | undefined> {
    const raw = await this.#call(() => this.client.get(this.#key(kind, id)).string());
    return raw === null ? undefined : decodeJsonRecord(kind, id, raw);
  }

  protected async listRecords<K extends RecordKind>(kind: K): Promise<RecordOf<K>[]> {
    const mirror = this.#mirror;
    const copied = mirror === undefined ? undefined : await this.#call(() => mirror.list(kind));
    if (copied !== undefined) return copied;
    const prefix = etcdKindPrefix(this.prefix, kind);
    const all = await this.#call(() => this.client.getAll().prefix(prefix).strings());
    return Object.entries(all).map(([key, raw]) => {
      const id = key.slice(prefix.length);
      return decodeJsonRecord(kind, id, raw);
    });
  }

  /** Commits `op` only while the fence's key exists with its revision; NotLeaderError otherwise. */
  async #commitFenced(
    fence: { key: string; createRevision: string },
    op: PutBuilder | DeleteBuilder,
  ): Promise<IResponseOp | undefined> {
    const txn = await this.#call(() =>
      this.client.if(fence.key, 'Create', '==', fence.createRevision).then(op).commit(),
    );
    if (!txn.succeeded)
      throw new NotLeaderError(
        'this control plane no longer leads (its election key is gone); the write was refused',
      );
    return txn.responses[0];
  }

  /** Runs one call; whatever goes wrong with etcd is a StoreError naming it. */
  async #call<T>(command: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('etcd store is closed');
    try {
      return await command();
    } catch (err) {
      if (err instanceof BatonError) throw err;
      throw new StoreError(`${this.#where}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
