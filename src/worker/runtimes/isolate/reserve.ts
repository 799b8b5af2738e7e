/** Isolates made ahead of need, each with the guest prelude loaded (see IsolateReserve). */
import type IsolatedVm from 'isolated-vm';
import { compileCached, type Ivm } from './isolated-vm.js';

/**
 * What the worker does for a request after answering it (disposing of its
 * isolate, making the reserve's next while the reserve still has one) waits
 * this long, so as not to take the CPU from the answer on its way back
 * through the data plane to the client: on a 2-core machine, making an
 * isolate at once lengthened the client's wait for an isolate cold start
 * (docs/benchmarks.md, isolate cold path).
 */
export const AFTER_ANSWER_DELAY_MS = 5;

/**
 * An isolate with the guest prelude loaded and nothing else: no function's
 * code has run in it, and no host is attached yet.
 */
export interface ReadyIsolate {
  isolate: IsolatedVm.Isolate;
  context: IsolatedVm.Context;
  /** The prelude's `__baton.boot`, which makes the isolate a function's. */
  boot: IsolatedVm.Reference<unknown>;
}

/**
 * Isolates made ahead, off the request path, each with the guest prelude (the
 * web APIs, Baton's own code, the same for every function) loaded. Setting up
 * a V8 isolate and its context is most of an isolate's start, and running
 * the prelude in a fresh context adds to it (docs/benchmarks.md); with a
 * reserve, a new sandbox or a per-request isolate still
 * starts from an isolate no function's code has run in, but waits for
 * neither. The heap limit is fixed when an isolate is made, so the reserve is
 * kept per limit (the few most recently asked for).
 */
export class IsolateReserve {
  readonly #byLimit = new Map<number, ReadyIsolate[]>();
  #refilling = false;
  #closed = false;

  constructor(
    readonly ivm: Ivm,
    /** The prelude's bundle (see isolate-bundle.ts). */
    readonly prelude: string,
    /** Isolates kept per heap limit (0 = none: every start makes its own). */
    readonly size: number,
    readonly maxLimits = 4,
  ) {}

  /**
   * An isolate with a heap limit of `memoryMib`. The caller calls `refill()`
   * once it has answered: making an isolate holds up the thread.
   */
  take(memoryMib: number): ReadyIsolate {
    const kept = this.#byLimit.get(memoryMib);
    // Most recently used last, so the limit dropped when there are too many is the oldest.
    this.#byLimit.delete(memoryMib);
    if (this.size > 0 && !this.#closed) this.#byLimit.set(memoryMib, kept ?? []);
    for (const [limit, isolates] of this.#byLimit) {
      if (this.#byLimit.size <= this.maxLimits) break;
      for (const b of isolates) b.isolate.dispose();
      this.#byLimit.delete(limit);
    }
    return kept?.pop() ?? this.#make(memoryMib);
  }

  #make(memoryMib: number): ReadyIsolate {
    const isolate = new this.ivm.Isolate({ memoryLimit: memoryMib });
    try {
      const context = isolate.createContextSync();
      // Baton's own code (the web APIs, and its warm-up): run on this thread, with no limit.
      compileCached(isolate, this.prelude, 'file:///baton-prelude.js').runSync(context);
      const boot = context.evalSync('__baton.boot', {
        reference: true,
      }) as IsolatedVm.Reference<unknown>;
      return { isolate, context, boot };
    } catch (err) {
      isolate.dispose();
      throw err;
    }
  }

  /**
   * Tops the reserve up in the background, one isolate per turn of the event
   * loop: after AFTER_ANSWER_DELAY_MS while every limit still has one left,
   * at once when one has none (its next take would make one on the request's
   * path, as under a steady stream of per-request isolates).
   */
  refill(): void {
    if (this.#refilling || this.#closed) return;
    this.#refilling = true;
    let empty = false;
    for (const isolates of this.#byLimit.values()) empty ||= isolates.length === 0;
    if (empty) setImmediate(() => this.#topUp());
    else setTimeout(() => this.#topUp(), AFTER_ANSWER_DELAY_MS).unref();
  }

  #topUp(): void {
    if (!this.#closed)
      for (const [limit, isolates] of this.#byLimit)
        if (isolates.length < this.size) {
          try {
            isolates.push(this.#make(limit));
          } catch {
            // V8 could not make one (out of memory?): the next take makes its
            // own and reports why; the next refill tries again.
            break;
          }
          setImmediate(() => this.#topUp());
          return;
        }
    this.#refilling = false;
  }

  /** Isolates held now, over all limits. */
  get held(): number {
    let n = 0;
    for (const isolates of this.#byLimit.values()) n += isolates.length;
    return n;
  }

  close(): void {
    this.#closed = true;
    for (const isolates of this.#byLimit.values()) for (const b of isolates) b.isolate.dispose();
    this.#byLimit.clear();
  }
}
