/**
 * Ordered, coalescing push of changes to one data plane. Changes made in the
 * same piece of synchronous work, or while a push is under way, are merged
 * into the next `applyUpdates` call (one in flight at a time), so a burst of
 * cold starts costs a few RPCs, not one per sandbox. The first change of a
 * quiet spell leaves at the end of the task that made it (a microtask), not
 * a loop turn later: it is on the path of every registration and cold
 * start. Merging keeps the meaning of the sequence (an endpoint added then
 * removed before it was sent is never sent). After a failed push the next one is a full `reset` built from the
 * control plane's state, so nothing is lost or applied out of order.
 *
 * A registration does not wait for data planes: new functions are sent
 * together, INTRODUCE_DELAY_MS after the first of them (`introduceSoon`), so
 * registrations one after another cost a push per batch, not one each; a
 * data plane that gets a request for a function before that asks for it
 * (`introduce`, answered once it was applied). The fanout keeps the names
 * it has sent and sends endpoints, route changes and failures only for
 * those. A data plane told a function does not exist remembers that for
 * NEGATIVE_TTL_MS; a registration in that time introduces the function to
 * it at once (`deniedWithin`).
 */
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import { backoffDelayMs } from '../shared/time.js';
import type { ServiceClient } from '../rpc/contract.js';
import type { DataPlaneService, DataPlaneUpdate } from '../rpc/contracts/data-plane.js';
import { NEGATIVE_TTL_MS } from '../rpc/contracts/control-plane.js';
import type { Endpoint, FunctionRoute } from '../rpc/contracts/common.js';

/** How long new functions gather before they are sent together (see introduceSoon). */
export const INTRODUCE_DELAY_MS = 10;

export interface Snapshot {
  functions: FunctionRoute[];
  endpoints: Endpoint[];
}

/** A function as a data plane first learns it: its route and its ready sandboxes. */
export interface FunctionView {
  route: FunctionRoute;
  endpoints: Endpoint[];
}

export class DataPlaneFanout {
  readonly #client: ServiceClient<DataPlaneService>;
  readonly #snapshot: () => Snapshot;
  readonly #view: (name: string) => FunctionView | undefined;
  readonly #log: Logger;
  /** Functions the data plane has, or has been sent. */
  #known = new Set<string>();
  /** Functions to introduce when #soonTimer fires. */
  #soon = new Set<string>();
  #soonTimer: NodeJS.Timeout | undefined;
  /** When the data plane was last told a function does not exist (performance.now()). */
  #deniedAt = Number.NEGATIVE_INFINITY;
  #reset = false;
  #upserts = new Map<string, FunctionRoute>();
  #removeFunctions = new Set<string>();
  #adds = new Map<string, Endpoint>();
  #removes = new Set<string>();
  /** How removed sandboxes ended, for the requests they were serving. */
  #endReasons = new Map<string, string>();
  #failQueued = new Map<string, { code: string; message: string }>();
  #sending = false;
  #scheduled = false;
  #failures = 0;
  #closed = false;
  /** Sequence number of the latest change, and of the latest change the data plane applied. */
  #changeSeq = 0;
  #appliedSeq = 0;
  #flushWaiters: Array<{ seq: number; resolve: () => void }> = [];

  constructor(
    client: ServiceClient<DataPlaneService>,
    state: { snapshot: () => Snapshot; view: (name: string) => FunctionView | undefined },
    logger: Logger,
  ) {
    this.#client = client;
    this.#snapshot = state.snapshot;
    this.#view = state.view;
    this.#log = logger;
  }

  /** Replace the data plane's whole view with the current state (after it registers). */
  resync(): void {
    this.#reset = true;
    this.#upserts.clear();
    this.#removeFunctions.clear();
    this.#adds.clear();
    this.#removes.clear();
    this.#endReasons.clear();
    this.#schedule();
  }

  /**
   * Sends the function, the functions its traffic splits to and their ready
   * endpoints, unless the data plane has them. False when the control plane
   * does not hold the function.
   */
  introduce(name: string): boolean {
    if (this.#known.has(name)) return true;
    const view = this.#view(name);
    if (view === undefined) return false;
    this.#upsert(view.route);
    for (const e of view.endpoints) this.addEndpoint(e);
    this.#introduceSplit(view.route);
    return true;
  }

  /**
   * Introduces the function with others registered about now, within
   * INTRODUCE_DELAY_MS (a request for it before then asks for it).
   */
  introduceSoon(name: string): void {
    if (this.#closed || this.#known.has(name)) return;
    this.#soon.add(name);
    this.#soonTimer ??= setTimeout(() => {
      this.#soonTimer = undefined;
      const names = this.#soon;
      this.#soon = new Set();
      for (const n of names) this.introduce(n);
    }, INTRODUCE_DELAY_MS).unref();
  }

  /** A function's route changed (its traffic split): sent where it is known. */
  updateFunction(route: FunctionRoute): void {
    if (!this.#known.has(route.name)) return;
    this.#upsert(route);
    this.#introduceSplit(route);
  }

  /** The data plane was told a function does not exist. */
  denied(): void {
    this.#deniedAt = performance.now();
  }

  /**
   * Whether the data plane may still remember that some function did not
   * exist (it counts from when it asked, before this recorded the answer).
   */
  deniedWithin(ms: number = NEGATIVE_TTL_MS): boolean {
    return performance.now() - this.#deniedAt <= ms;
  }

  #upsert(route: FunctionRoute): void {
    this.#known.add(route.name);
    this.#removeFunctions.delete(route.name);
    this.#upserts.set(route.name, route);
    this.#schedule();
  }

  #introduceSplit(route: FunctionRoute): void {
    for (const { function: target } of route.split ?? []) this.introduce(target);
  }

  removeFunction(name: string): void {
    if (!this.#known.delete(name)) return;
    this.#upserts.delete(name);
    for (const [id, e] of this.#adds) if (e.function === name) this.#adds.delete(id);
    this.#failQueued.delete(name);
    this.#removeFunctions.add(name);
    this.#schedule();
  }

  addEndpoint(e: Endpoint): void {
    if (!this.#known.has(e.function)) return;
    this.#adds.set(e.id, e);
    this.#schedule();
  }

  /** `reason`: how the sandbox ended (it died, or was stopped by a limit), if it did. */
  removeEndpoint(id: string, reason?: string): void {
    if (!this.#adds.delete(id)) {
      this.#removes.add(id);
      if (reason !== undefined) this.#endReasons.set(id, reason);
    }
    this.#schedule();
  }

  failQueued(fn: string, code: string, message: string): void {
    if (!this.#known.has(fn)) return;
    this.#failQueued.set(fn, { code, message });
    this.#schedule();
  }

  /** Whether every change made so far has been applied by the data plane (or the fanout closed). */
  get applied(): boolean {
    return this.#closed || this.#appliedSeq >= this.#changeSeq;
  }

  /** Resolves once every change made so far has been applied by the data plane (or the fanout closed). */
  flushed(): Promise<void> {
    const seq = this.#changeSeq;
    if (this.applied) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push({ seq, resolve }));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#soonTimer);
    this.#wakeFlushWaiters(Number.POSITIVE_INFINITY);
  }

  #hasPending(): boolean {
    return (
      this.#reset ||
      this.#upserts.size > 0 ||
      this.#removeFunctions.size > 0 ||
      this.#adds.size > 0 ||
      this.#removes.size > 0 ||
      this.#failQueued.size > 0
    );
  }

  #schedule(): void {
    this.#changeSeq++;
    if (this.#sending || this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#send();
    });
  }

  #take(): DataPlaneUpdate {
    const u: DataPlaneUpdate = {};
    if (this.#reset) {
      const snap = this.#snapshot();
      this.#known = new Set(snap.functions.map((f) => f.name));
      u.reset = true;
      u.upsertFunctions = snap.functions;
      u.addEndpoints = snap.endpoints;
      this.#reset = false;
      this.#upserts.clear();
      this.#removeFunctions.clear();
      this.#adds.clear();
      this.#removes.clear();
      this.#endReasons.clear();
    } else {
      if (this.#upserts.size > 0) u.upsertFunctions = [...this.#upserts.values()];
      if (this.#removeFunctions.size > 0) u.removeFunctions = [...this.#removeFunctions];
      if (this.#adds.size > 0) u.addEndpoints = [...this.#adds.values()];
      if (this.#removes.size > 0) u.removeEndpoints = [...this.#removes];
      if (this.#endReasons.size > 0)
        u.endReasons = [...this.#endReasons].map(([id, reason]) => ({ id, reason }));
      this.#upserts = new Map();
      this.#removeFunctions = new Set();
      this.#adds = new Map();
      this.#removes = new Set();
      this.#endReasons = new Map();
    }
    if (this.#failQueued.size > 0) {
      u.failQueued = [...this.#failQueued].map(([fn, f]) => ({ function: fn, ...f }));
      this.#failQueued = new Map();
    }
    return u;
  }

  #send(): void {
    if (this.#closed || !this.#hasPending()) return;
    this.#sending = true;
    const seq = this.#changeSeq;
    const update = this.#take();
    this.#client.applyUpdates(update).then(
      () => {
        this.#failures = 0;
        this.#sending = false;
        this.#appliedSeq = seq;
        this.#wakeFlushWaiters(seq);
        this.#send();
      },
      (err: unknown) => {
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 20 === 0) {
          this.#log.warn(
            { err: errorMessage(err), attempts: this.#failures },
            'cannot push updates to a data plane; will resync',
          );
        }
        // What was lost is rebuilt from state: send everything again.
        this.#reset = true;
        setTimeout(
          () => {
            this.#sending = false;
            this.#send();
          },
          backoffDelayMs(this.#failures, 50, 2000),
        ).unref();
      },
    );
  }

  #wakeFlushWaiters(applied: number): void {
    if (this.#flushWaiters.length === 0) return;
    const still: Array<{ seq: number; resolve: () => void }> = [];
    for (const w of this.#flushWaiters) {
      if (w.seq <= applied) w.resolve();
      else still.push(w);
    }
    this.#flushWaiters = still;
  }
}
