/**
 * Embedded ClusterStore: a LevelDB database in the data dir (no server to
 * run), through `classic-level`. A write resolves once it is in LevelDB's
 * log and that log is synced to disk (one fdatasync per commit; LMDB, used
 * before, synced its pages and then its meta page, and a registration
 * waited for both). One batch is committed at a time; the writes issued
 * while it is under way go together in the next one (group commit), in the
 * order they were issued. One process opens the database at a time (the
 * control plane); sharing it between control planes is what the redis and
 * etcd stores are for. A data dir from an earlier Baton (an LMDB database in
 * `<data-dir>/store`) is copied in the first time the new one is opened
 * (embedded-legacy.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { ClosedError, StoreError, errorMessage } from '../shared/errors.js';
import { EMBEDDED_STORE_DIR, embeddedKey, embeddedKindRange, type RecordKind } from './keys.js';
import { decodeJsonRecord, type RecordOf } from './codec.js';
import { RecordStore } from './record-store.js';
import { importLegacyStore } from './embedded-legacy.js';

export interface EmbeddedStoreOptions {
  /** Baton data dir; the database lives in `<dataDir>/store-leveldb`. */
  dataDir: string;
}

interface PendingWrite {
  key: string;
  /** JSON text to put; undefined deletes. */
  value: string | undefined;
  resolve: (existed: boolean) => void;
  reject: (err: Error) => void;
}

type Db = ClassicLevel<string, string>;

/** Each commit waits for LevelDB's log to be synced to disk. */
const SYNC = { sync: true } as const;

export class EmbeddedStore extends RecordStore {
  readonly kind = 'embedded' as const;
  readonly #db: Db;
  readonly #where: string;
  /** Keys held on disk, plus those of the batch under way: a delete says whether its key existed. */
  #keys: Set<string>;
  #queue: PendingWrite[] = [];
  #committing: Promise<void> | undefined;
  #closed = false;

  private constructor(db: Db, where: string, keys: Set<string>) {
    super();
    this.#db = db;
    this.#where = where;
    this.#keys = keys;
  }

  /** Opens (creating if need be) the database; StoreError naming the path when it cannot. */
  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const path = join(options.dataDir, EMBEDDED_STORE_DIR);
    let db: Db | undefined;
    try {
      mkdirSync(path, { recursive: true });
      db = new ClassicLevel<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
      await db.open();
      await importLegacyStore(options.dataDir, db);
      return new EmbeddedStore(db, path, await allKeys(db));
    } catch (err) {
      await db?.close().catch(() => undefined);
      throw new StoreError(`cannot open embedded store at ${path}: ${openFailure(err)}`, {
        cause: err,
      });
    }
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#read(() => this.#db.get(embeddedKey('functions', '')));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#committing !== undefined) await this.#committing;
    await this.#db.close();
  }

  protected async putRecord(kind: RecordKind, id: string, value: unknown): Promise<void> {
    await this.#enqueue(embeddedKey(kind, id), JSON.stringify(value));
  }

  protected async deleteRecord(kind: RecordKind, id: string): Promise<boolean> {
    return await this.#enqueue(embeddedKey(kind, id), undefined);
  }

  protected async getRecord<K extends RecordKind>(
    kind: K,
    id: string,
  ): Promise<RecordOf<K> | undefined> {
    this.#assertOpen();
    const raw = await this.#read(() => this.#db.get(embeddedKey(kind, id)));
    return raw === undefined ? undefined : decodeJsonRecord(kind, id, raw);
  }

  protected async listRecords<K extends RecordKind>(kind: K): Promise<RecordOf<K>[]> {
    this.#assertOpen();
    const prefix = embeddedKey(kind, '');
    const entries = await this.#read(() => this.#db.iterator(embeddedKindRange(kind)).all());
    return entries.map(([key, raw]) => decodeJsonRecord(kind, key.slice(prefix.length), raw));
  }

  #enqueue(key: string, value: string | undefined): Promise<boolean> {
    this.#assertOpen();
    return new Promise((resolve, reject) => {
      this.#queue.push({ key, value, resolve, reject });
      this.#committing ??= this.#commitAll();
    });
  }

  /** Commits the queue batch by batch until it is empty; one batch on disk at a time. */
  async #commitAll(): Promise<void> {
    // Writes issued in the same turn as the first go in its batch.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      await this.#commit(batch);
    }
    this.#committing = undefined;
  }

  async #commit(batch: PendingWrite[]): Promise<void> {
    // Whether each key was held before this batch, to put back if it fails.
    const before = new Map<string, boolean>();
    const existed = batch.map((w) => {
      const had = this.#keys.has(w.key);
      if (!before.has(w.key)) before.set(w.key, had);
      if (w.value === undefined) this.#keys.delete(w.key);
      else this.#keys.add(w.key);
      return had;
    });
    try {
      const only = batch.length === 1 ? batch[0]! : undefined;
      // A lone write skips the batch's per-operation copying and checks (a
      // registration one after another is one): cheaper, the same durability.
      if (only === undefined)
        await this.#db.batch(
          batch.map((w) =>
            w.value === undefined
              ? { type: 'del' as const, key: w.key }
              : { type: 'put' as const, key: w.key, value: w.value },
          ),
          SYNC,
        );
      else if (only.value === undefined) await this.#db.del(only.key, SYNC);
      else await this.#db.put(only.key, only.value, SYNC);
    } catch (err) {
      // LevelDB applies a batch whole or not at all: the keys are as they were.
      for (const [key, had] of before)
        if (had) this.#keys.add(key);
        else this.#keys.delete(key);
      const failure = new StoreError(`embedded store: ${errorMessage(err)}`, { cause: err });
      for (const w of batch) w.reject(failure);
      return;
    }
    batch.forEach((w, i) => w.resolve(existed[i]!));
  }

  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (this.#closed) throw new ClosedError('embedded store is closed');
      throw new StoreError(`embedded store at ${this.#where}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('embedded store is closed');
  }
}

async function allKeys(db: Db): Promise<Set<string>> {
  return new Set(await db.keys().all());
}

/** LevelDB's reason for a failed open is in its cause ("Database failed to open" alone says nothing). */
function openFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause?.code === 'LEVEL_LOCKED')
    return 'another process has it open (one control plane per data dir; --data-dir)';
  return cause === undefined ? errorMessage(err) : `${errorMessage(err)}: ${errorMessage(cause)}`;
}
