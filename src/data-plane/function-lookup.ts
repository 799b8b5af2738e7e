/**
 * A request for a function the data plane has not been sent (yet: new
 * functions are sent in batches, shortly after their registration) asks
 * the control plane (`lookupFunction`), which pushes the function to it and
 * then answers. Requests for one name share one call. A name the control
 * plane does not hold is remembered as absent for NEGATIVE_TTL_MS from when
 * it was asked (up to `maxAbsent` names, the oldest forgotten first), so a
 * client that repeats a wrong name costs one call a second, not one per
 * request; a full view from the control plane forgets them all. At most
 * `maxPending` names are looked up at once.
 */
import { NEGATIVE_TTL_MS } from '../rpc/contracts/control-plane.js';

export const DEFAULT_MAX_ABSENT = 10_000;
/** Most names looked up at once (a request for another is answered 503 meanwhile). */
export const DEFAULT_MAX_PENDING = 1_024;

export class FunctionLookup {
  readonly #ask: (name: string) => Promise<boolean>;
  readonly #maxAbsent: number;
  readonly #maxPending: number;
  readonly #pending = new Map<string, Promise<boolean>>();
  /** Names the control plane does not hold, with when that answer expires (performance.now()). */
  readonly #absent = new Map<string, number>();
  /** Bumped by `forget`: an answer to a call made before it is not remembered. */
  #generation = 0;

  constructor(
    ask: (name: string) => Promise<boolean>,
    bounds: { maxAbsent?: number; maxPending?: number } = {},
  ) {
    this.#ask = ask;
    this.#maxAbsent = bounds.maxAbsent ?? DEFAULT_MAX_ABSENT;
    this.#maxPending = bounds.maxPending ?? DEFAULT_MAX_PENDING;
  }

  /** Whether a new name cannot be looked up now (as many are under way as it allows). */
  full(name: string): boolean {
    return this.#pending.size >= this.#maxPending && !this.#pending.has(name);
  }

  /** Whether the control plane said lately that it does not hold `name`. */
  absent(name: string): boolean {
    const until = this.#absent.get(name);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.#absent.delete(name);
    return false;
  }

  /**
   * Whether the control plane holds `name` (if so, it has been pushed here
   * by the time this resolves). Rejects when the control plane cannot be asked.
   */
  lookup(name: string): Promise<boolean> {
    const pending = this.#pending.get(name);
    if (pending !== undefined) return pending;
    const askedAt = performance.now();
    const generation = this.#generation;
    const call = this.#ask(name)
      .then((found) => {
        if (!found && generation === this.#generation) this.#remember(name, askedAt);
        return found;
      })
      .finally(() => this.#pending.delete(name));
    this.#pending.set(name, call);
    return call;
  }

  /** Forgets every absent name (a full view arrived). */
  forget(): void {
    this.#absent.clear();
    this.#generation++;
  }

  #remember(name: string, askedAt: number): void {
    this.#absent.delete(name);
    if (this.#absent.size >= this.#maxAbsent) {
      const oldest = this.#absent.keys().next().value;
      if (oldest !== undefined) this.#absent.delete(oldest);
    }
    this.#absent.set(name, askedAt + NEGATIVE_TTL_MS);
  }
}
