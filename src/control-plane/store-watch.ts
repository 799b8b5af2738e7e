/**
 * The control plane's view of its store's health: whether the store answered
 * the last time it was asked (a ping every check, and every call the control
 * plane makes), and the writes that may wait for it. Worker and data-plane
 * records are written for recovery only: while the store is down the control
 * plane keeps working from memory and writes them once it is back (the
 * latest write per record wins). Function registrations never wait here:
 * they are refused while the store is down.
 */
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import { waitAtMost } from '../shared/time.js';
import type { ClusterStore } from '../store/store.js';

export interface StoreStatus {
  kind: string;
  ok: boolean;
  /** Why it is not ok. */
  error: string | null;
  /** Since when it has been in this state (ms since the epoch). */
  since: number;
}

/** Longest a stopping control plane waits for its deferred writes. */
const CLOSE_WAIT_MS = 2_000;

/** Deferred writes sent to the store at once, at most. */
const FLUSH_BATCH = 256;

export class StoreWatch {
  readonly #store: ClusterStore;
  readonly #log: Logger;
  readonly #now: () => number;
  #ok = true;
  #error: string | null = null;
  #since: number;
  readonly #deferred = new Map<string, () => Promise<unknown>>();
  /** The one pass over the deferred writes under way, if any. */
  #flushing: Promise<void> | undefined;
  #checking = false;
  /** The control plane is stopping: nothing more is written, and the store's closing is not a failure. */
  #closed = false;

  constructor(store: ClusterStore, logger: Logger, now: () => number) {
    this.#store = store;
    this.#log = logger;
    this.#now = now;
    this.#since = now();
  }

  get status(): StoreStatus {
    return { kind: this.#store.kind, ok: this.#ok, error: this.#error, since: this.#since };
  }

  /** Records the outcome of a call to the store. */
  observe(err?: unknown): void {
    if (err === undefined) {
      if (this.#ok) return;
      this.#log.info(
        { store: this.#store.kind, downForMs: this.#now() - this.#since },
        'the store answers again',
      );
      this.#ok = true;
      this.#error = null;
      this.#since = this.#now();
      return;
    }
    if (this.#closed) return;
    const reason = errorMessage(err);
    if (this.#ok)
      this.#log.error(
        { store: this.#store.kind, err: reason },
        'the store cannot be used; serving from memory, registrations are refused',
      );
    if (this.#ok) this.#since = this.#now();
    this.#ok = false;
    this.#error = reason;
  }

  /** Runs a store call, noting whether the store answered; rethrows its error. */
  async call<T>(call: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const out = await call();
      this.observe();
      this.onCall?.((performance.now() - t0) / 1000, true);
      return out;
    } catch (err) {
      this.observe(err);
      this.onCall?.((performance.now() - t0) / 1000, false);
      throw err;
    }
  }

  /** Told the time of each call and whether it succeeded (the metrics). */
  onCall: ((seconds: number, ok: boolean) => void) | undefined;

  /**
   * A write that may wait for the store: tried now, and again at each
   * check until it succeeds. A later write under the same key replaces it.
   */
  defer(key: string, write: () => Promise<unknown>): void {
    if (this.#closed) return;
    this.#deferred.set(key, write);
    void this.#flush();
  }

  /**
   * Before the store is closed: waits (at most `waitMs`) for the writes
   * deferred so far, and takes no more. Without it, workers deregistering
   * while the control plane stopped (5000 of them) had their records written
   * to a store being closed, and the control plane logged it as failed.
   */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await waitAtMost(this.#flush(), waitMs);
  }

  /** Pings the store and retries deferred writes. Never rejects. */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      await this.call(() => this.#store.ping()).catch(() => undefined);
      if (this.#ok) await this.#flush();
    } finally {
      this.#checking = false;
    }
  }

  /**
   * One pass at a time: writes deferred meanwhile join the running pass (each
   * `defer` used to start a pass over every write still waiting, one after
   * another, so 5000 workers registering at once meant millions of writes).
   */
  #flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    while (this.#deferred.size > 0) {
      // Many at once: the embedded store commits the writes of one turn in one
      // transaction, Redis pipelines them.
      const batch: Array<[string, () => Promise<unknown>]> = [];
      for (const entry of this.#deferred) {
        batch.push(entry);
        if (batch.length === FLUSH_BATCH) break;
      }
      const results = await Promise.allSettled(batch.map(([, write]) => this.call(write)));
      let failed = false;
      batch.forEach(([key, write], i) => {
        if (results[i]!.status === 'rejected') failed = true;
        else if (this.#deferred.get(key) === write) this.#deferred.delete(key);
      });
      if (failed) return; // the rest waits for the next check
    }
  }
}
