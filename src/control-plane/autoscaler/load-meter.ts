/**
 * A function's load over its data planes, from the cumulative measures each
 * reports (`LoadTotals`): the mean in-flight count over a window, and the
 * mean time a sandbox takes per request; and how long its sandboxes take to
 * be made. Knative's autoscaler scales on
 * concurrency its queue-proxies average over time. The count at the instant
 * of a report is a poor sample of it: a daemon that stalls for a few
 * milliseconds under 2000 requests/s leaves dozens in flight at once, and
 * the scaler took those bursts for demand (64 sandboxes where 2-4 serve).
 * Plain numbers and no timers: time comes in as arguments.
 */
import type { LoadTotals } from '../../shared/cluster-objects.js';

/** How many requests' worth of history the mean service time keeps. */
export const SERVICE_MEMORY = 20;
/** Weight of the newest creation in the mean creation time. */
export const CREATION_WEIGHT = 0.25;

interface PlaneLoad {
  /** When its latest report came, and its in-flight and executing counts then. */
  at: number;
  inflight: number;
  executing: number;
  load: LoadTotals;
}

/** The in-flight and executing counts integrated over time, request-ms. */
interface Integrals {
  inflightMs: number;
  busyMs: number;
}

const ZERO: LoadTotals = { inflightMs: 0, busyMs: 0, served: 0, serviceMs: 0 };

export class LoadMeter {
  readonly #planes = new Map<string, PlaneLoad>();
  /** What every data plane's integrals grew by, summed. */
  readonly #sum: Integrals = { inflightMs: 0, busyMs: 0 };
  #window: (Integrals & { at: number }) | undefined;
  #serviceMs: number | undefined;
  #creationMs: number | undefined;

  /** Mean time a sandbox took per request, lately; undefined before any was served. */
  get serviceMs(): number | undefined {
    return this.#serviceMs;
  }

  /** Mean time a new sandbox took to be ready, lately; undefined before one was. */
  get creationMs(): number | undefined {
    return this.#creationMs;
  }

  /** A sandbox was ready `ms` after it was asked for. */
  created(ms: number): void {
    const c = this.#creationMs;
    this.#creationMs = c === undefined ? ms : c + (ms - c) * CREATION_WEIGHT;
  }

  /** A data plane's report at `now`: its in-flight and queued counts and its cumulative measures. */
  report(plane: string, now: number, inflight: number, queued: number, load: LoadTotals): void {
    const executing = inflight - queued;
    const prev = this.#planes.get(plane);
    if (prev === undefined) {
      // What it measured before this control plane heard of it is not in any window.
      this.#window ??= { at: now, ...this.#integrals(now) };
      this.#planes.set(plane, { at: now, inflight, executing, load });
      return;
    }
    // A data plane that restarted counts from zero again.
    const restarted = load.inflightMs < prev.load.inflightMs || load.served < prev.load.served;
    const base = restarted ? ZERO : prev.load;
    this.#sum.inflightMs += load.inflightMs - base.inflightMs;
    this.#sum.busyMs += load.busyMs - base.busyMs;
    const served = load.served - base.served;
    if (served > 0) {
      const mean = (load.serviceMs - base.serviceMs) / served;
      this.#serviceMs =
        this.#serviceMs === undefined
          ? mean
          : this.#serviceMs + (mean - this.#serviceMs) * Math.min(1, served / SERVICE_MEMORY);
    }
    prev.at = now;
    prev.inflight = inflight;
    prev.executing = executing;
    prev.load = load;
  }

  /** A data plane is gone: what it had in flight counts until `now`, then nothing. */
  drop(plane: string, now: number): void {
    const p = this.#planes.get(plane);
    if (p === undefined) return;
    this.#sum.inflightMs += p.inflight * (now - p.at);
    this.#sum.busyMs += p.executing * (now - p.at);
    this.#planes.delete(plane);
  }

  /** Starts a new window at `now` (a function the scaler takes up again after a quiet spell). */
  restart(now: number): void {
    this.#window = this.#planes.size === 0 ? undefined : { at: now, ...this.#integrals(now) };
  }

  /**
   * The in-flight count to scale for over the window to `now`, and a new
   * window from `now`; undefined while no data plane has reported its load.
   * It is the mean in-flight count, but no more than what the window's
   * requests kept busy plus what clears the `queued` requests waiting now
   * within one creation time: a backlog that built up while sandboxes were
   * short (or a daemon stalled) raises the mean long after it is cleared,
   * and the sandboxes it asks for would find nothing to take.
   */
  takeDemand(now: number, queued: number): number | undefined {
    const start = this.#window;
    if (start === undefined) return undefined;
    const end = this.#integrals(now);
    this.#window = { at: now, ...end };
    const span = now - start.at;
    if (span <= 0) return undefined;
    // A report corrects what was extrapolated for the previous window: never below zero.
    const inflight = Math.max(0, (end.inflightMs - start.inflightMs) / span);
    const busy = Math.max(0, (end.busyMs - start.busyMs) / span);
    const service = this.#serviceMs;
    const creation = this.#creationMs;
    if (service === undefined || creation === undefined || creation <= 0) return inflight;
    return Math.min(inflight, busy + (queued * service) / creation);
  }

  /** The integrals to `now`: each data plane's counts since its latest report taken as unchanged. */
  #integrals(now: number): Integrals {
    let { inflightMs, busyMs } = this.#sum;
    for (const p of this.#planes.values()) {
      inflightMs += p.inflight * (now - p.at);
      busyMs += p.executing * (now - p.at);
    }
    return { inflightMs, busyMs };
  }
}
