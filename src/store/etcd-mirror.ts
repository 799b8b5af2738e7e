/**
 * A warm copy of an etcd store's records, for a control-plane replica that
 * follows: every record decoded in memory, kept current by one watch that
 * starts at the revision of one full read. When the replica is elected, its
 * lists come from here, not from a read of every record (the largest part
 * of a take-over under load).
 *
 * A list is answered from the copy only once one small transaction proves
 * it current: in the kind's key range, no key was written after the copy's
 * revision, and the number of keys equals the copy's. Every key that exists
 * now was then unchanged since the copy saw it, and none is missing or extra.
 * A watch that lags or broke therefore costs a full read, never a stale list.
 */
import { Range, type Etcd3, type IKeyValue, type IWatchResponse, type Watcher } from 'etcd3';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { decodeJsonRecord, type RecordOf } from './codec.js';
import { RECORD_KINDS, etcdKindPrefix, type RecordKind } from './keys.js';
import { waitAtMost } from '../shared/time.js';

/** After the watch failed (e.g. its revision was compacted), the copy is rebuilt after this long. */
const REBUILD_DELAY_MS = 1_000;

/** What a mirror has answered: lists from the copy, and lists it could not answer (read in full). */
export interface MirrorCounters {
  answered: number;
  missed: number;
}

export class EtcdMirror {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #log: Logger | undefined;
  /** The copy reflects the store at this revision (0n: not loaded). */
  #revision = 0n;
  readonly #records = new Map<RecordKind, Map<string, unknown>>();
  /** Kinds with a record that did not decode: listed from the store, which reports it. */
  readonly #undecodable = new Set<RecordKind>();
  #watcher: Watcher | undefined;
  #closed = false;
  readonly counters: MirrorCounters = { answered: 0, missed: 0 };

  constructor(client: Etcd3, prefix: string, logger?: Logger) {
    this.#client = client;
    this.#prefix = prefix;
    this.#log = logger;
  }

  /** Loads the copy and starts watching; on failure, tries again later. Returns at once. */
  start(): void {
    void this.#build();
  }

  /**
   * Stops watching. Resolves once etcd has ended the watch (at most a
   * second): a client closed under a live watch keeps trying to restore it.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher === undefined) return;
    await waitAtMost(
      watcher.cancel().catch(() => undefined),
      1000,
    );
  }

  /**
   * The records of `kind` as the store holds them now, when the copy is
   * proved current (one transaction); undefined when it is not (read them
   * from the store instead). Rejects as etcd calls do.
   */
  async list<K extends RecordKind>(kind: K): Promise<RecordOf<K>[] | undefined> {
    const revision = this.#revision;
    const records = this.#records.get(kind);
    if (revision === 0n || records === undefined || this.#undecodable.has(kind)) {
      this.counters.missed++;
      return undefined;
    }
    const range = Range.prefix(etcdKindPrefix(this.#prefix, kind));
    const check = await this.#client.kv.txn({
      success: [
        { request_range: { key: range.start, range_end: range.end, count_only: true } },
        {
          request_range: {
            key: range.start,
            range_end: range.end,
            keys_only: true,
            min_mod_revision: (revision + 1n).toString(),
          },
        },
      ],
    });
    const [count, changed] = check.responses.map((r) => r.response_range);
    // The copy may have moved on meanwhile; it is never behind `revision`, so a
    // copy that was current then and has applied later events is current too.
    const current =
      count !== undefined &&
      changed !== undefined &&
      changed.kvs.length === 0 &&
      Number(count.count) === records.size &&
      this.#records.get(kind) === records;
    if (!current) {
      this.counters.missed++;
      return undefined;
    }
    this.counters.answered++;
    return [...records.values()] as RecordOf<K>[];
  }

  async #build(): Promise<void> {
    while (!this.#closed) {
      try {
        const all = await this.#client.getAll().prefix(this.#prefix).exec();
        if (this.#closed) return;
        this.#records.clear();
        this.#undecodable.clear();
        for (const kind of RECORD_KINDS) this.#records.set(kind, new Map());
        for (const kv of all.kvs) this.#put(kv);
        const from = BigInt(all.header.revision);
        const watcher = await this.#client
          .watch()
          .prefix(this.#prefix)
          .startRevision((from + 1n).toString())
          .create();
        if (this.#closed) {
          void watcher.cancel().catch(() => undefined);
          return;
        }
        this.#watcher = watcher;
        this.#revision = from;
        watcher.on('data', (res) => this.#apply(res));
        watcher.once('error', (err) => {
          this.#log?.warn({ err: errorMessage(err) }, 'store copy: watch failed; rebuilding');
          this.#revision = 0n;
          void watcher.cancel().catch(() => undefined);
          setTimeout(() => void this.#build(), REBUILD_DELAY_MS).unref();
        });
        return;
      } catch (err) {
        if (this.#closed) return;
        this.#log?.info({ err: errorMessage(err) }, 'store copy: cannot load it yet');
        await new Promise((r) => setTimeout(r, REBUILD_DELAY_MS).unref());
      }
    }
  }

  /** Applies one watch response: all its events, then its revision. */
  #apply(res: IWatchResponse): void {
    if (this.#revision === 0n) return;
    let revision = this.#revision;
    for (const event of res.events) {
      if (event.type === 'Put') this.#put(event.kv);
      else this.#delete(event.kv);
      const at = BigInt(event.kv.mod_revision);
      if (at > revision) revision = at;
    }
    this.#revision = revision;
  }

  #put(kv: IKeyValue): void {
    const where = this.#where(kv);
    if (where === undefined) return;
    try {
      where.records.set(where.id, decodeJsonRecord(where.kind, where.id, kv.value.toString()));
    } catch {
      this.#undecodable.add(where.kind);
    }
  }

  #delete(kv: IKeyValue): void {
    const where = this.#where(kv);
    where?.records.delete(where.id);
  }

  #where(
    kv: IKeyValue,
  ): { kind: RecordKind; id: string; records: Map<string, unknown> } | undefined {
    const key = kv.key.toString();
    for (const kind of RECORD_KINDS) {
      const prefix = etcdKindPrefix(this.#prefix, kind);
      const records = this.#records.get(kind);
      if (key.startsWith(prefix) && records !== undefined)
        return { kind, id: key.slice(prefix.length), records };
    }
    return undefined;
  }
}
