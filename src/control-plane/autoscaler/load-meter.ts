/**
 * A function's load over its data planes, from the cumulative measures each
 * reports (`LoadTotals`), and how long its sandboxes take to be made: what
 * its scaler samples each tick (takeDemand) and what tells it whether the
 * ready sandboxes clear a queue (serviceMs, creationMs).
 *
 * Knative's autoscaler scales on the concurrency its queue-proxies average
 * over time. The count at the instant of a report is a poor sample of it: a
 * daemon that stalls for a few milliseconds under 2000 requests/s leaves
 * dozens in flight at once, and the scaler took those bursts for demand
 * (32-64 sandboxes where 2-4 serve). The mean over time still counts a
 * backlog long after it is cleared, and on a machine whose CPU is the limit
 * a request's time from the data plane to its answer includes waits for the
 * daemons' event loops, which more sandboxes do not shorten: so the demand
 * is also capped by Little's law over what was served.
 * Plain numbers and no timers: time comes in as arguments.
 */
import type { LoadTotals } from '../../shared/cluster-objects.js';

/** A data plane's service times are read over periods at least this long. */
export const PERIOD_MS = 250;
/** The service time is the median of the means of this many latest periods. */
export const SERVICE_PERIODS = 9;
/** Weight of the newest creation in the mean creation time. */
export const CREATION_WEIGHT = 0.25;
/**
 * How busy Little's law may keep the sandboxes it asks for: Knative's default
 * target utilisation. The mean in-flight count it caps includes the time
 * requests wait, which gives a target of 100 % its headroom; the sandboxes
 * busy on average do not (at concurrency 1, 2000 requests/s of 0.45 ms on
 * one sandbox queue most requests).
 */
export const CAP_UTILIZATION = 0.7;

interface PlaneLoad {
  /** When its latest report came, its in-flight count then, and its measures. */
  at: number;
  inflight: number;
  load: LoadTotals;
  /** Its measures at the start of the current period. */
  period: { at: number; served: number; serviceMs: number };
}

/** Where a window starts: its time, the in-flight integral then, and the latest report then. */
interface WindowStart {
  at: number;
  inflightMs: number;
  reportedAt: number;
  served: number;
}

export class LoadMeter {
  readonly #planes = new Map<string, PlaneLoad>();
  /** What every data plane's in-flight integral grew by, summed (request-ms). */
  #inflightMs = 0;
  /** What every data plane's served count grew by, and when the latest report came. */
  #served = 0;
  #reportedAt = 0;
  #window: WindowStart | undefined;
  /** Requests served per ms over the latest window with a report. */
  #servedRate = 0;
  /** Mean service time of each of the latest periods, oldest first. */
  readonly #periods: number[] = [];
  #creationMs: number | undefined;

  /**
   * The time a sandbox takes per request, lately: the median of the latest
   * periods' means (a period of stalls on a busy machine does not move it);
   * undefined before a period served any.
   */
  get serviceMs(): number | undefined {
    if (this.#periods.length === 0) return undefined;
    const sorted = [...this.#periods].sort((a, b) => a - b);
    return sorted[(sorted.length - 1) >> 1];
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

  /** A data plane's report at `now`: its in-flight count and its cumulative measures. */
  report(plane: string, now: number, inflight: number, load: LoadTotals): void {
    const prev = this.#planes.get(plane);
    // A data plane that restarted counts from zero again.
    const restarted =
      prev !== undefined &&
      (load.inflightMs < prev.load.inflightMs || load.served < prev.load.served);
    if (prev === undefined || restarted) {
      // What it measured before this control plane heard of it is in no window;
      // since a restart, all it measured is.
      this.#count(restarted ? load.inflightMs : 0, restarted ? load.served : 0, now);
      this.#window ??= this.#start(now);
      const period = restarted
        ? { at: now, served: 0, serviceMs: 0 }
        : { at: now, served: load.served, serviceMs: load.serviceMs };
      this.#planes.set(plane, { at: now, inflight, load, period });
      return;
    }
    this.#count(load.inflightMs - prev.load.inflightMs, load.served - prev.load.served, now);
    const p = prev.period;
    if (now - p.at >= PERIOD_MS) {
      const served = load.served - p.served;
      if (served > 0) {
        this.#periods.push((load.serviceMs - p.serviceMs) / served);
        if (this.#periods.length > SERVICE_PERIODS) this.#periods.shift();
      }
      prev.period = { at: now, served: load.served, serviceMs: load.serviceMs };
    }
    prev.at = now;
    prev.inflight = inflight;
    prev.load = load;
  }

  /** A data plane is gone: what it had in flight counts until `now`, then nothing. */
  drop(plane: string, now: number): void {
    const p = this.#planes.get(plane);
    if (p === undefined) return;
    this.#inflightMs += p.inflight * (now - p.at);
    this.#planes.delete(plane);
  }

  /** Starts a new window at `now` (a function the scaler takes up again after a quiet spell). */
  restart(now: number): void {
    this.#window = this.#planes.size === 0 ? undefined : this.#start(now);
  }

  /**
   * The in-flight count to scale for over the window to `now`, and a new
   * window from `now`; undefined while no data plane has reported its load.
   * It is the window's mean in-flight count, but no more than Little's law
   * gives for what was served (requests served per ms x service time) plus
   * what clears the `queued` requests waiting now within one creation time,
   * at CAP_UTILIZATION.
   */
  takeDemand(now: number, queued: number): number | undefined {
    const start = this.#window;
    if (start === undefined) return undefined;
    const end = this.#start(now);
    this.#window = end;
    const span = now - start.at;
    if (span <= 0) return undefined;
    // A report corrects what was extrapolated for the previous window: never below zero.
    const mean = Math.max(0, (end.inflightMs - start.inflightMs) / span);
    if (end.reportedAt > start.reportedAt)
      this.#servedRate = (end.served - start.served) / (end.reportedAt - start.reportedAt);
    else if (mean === 0) this.#servedRate = 0;
    const service = this.serviceMs;
    const creation = this.#creationMs;
    if (service === undefined || service <= 0 || creation === undefined || creation <= 0)
      return mean;
    return Math.min(mean, (service * (this.#servedRate + queued / creation)) / CAP_UTILIZATION);
  }

  #count(inflightMs: number, served: number, now: number): void {
    this.#inflightMs += inflightMs;
    this.#served += served;
    this.#reportedAt = now;
  }

  /** A window starting at `now`: the integral to `now`, each data plane's count since its latest report taken as unchanged. */
  #start(now: number): WindowStart {
    let inflightMs = this.#inflightMs;
    for (const p of this.#planes.values()) inflightMs += p.inflight * (now - p.at);
    return { at: now, inflightMs, reportedAt: this.#reportedAt, served: this.#served };
  }
}
