/**
 * Pushes in-flight counts (queued + executing) per function to the control
 * plane, with its load over time: at once when a request of a function
 * with no sandbox starts waiting in an empty queue, or one behind busy
 * sandboxes still waits QUEUE_WAIT_MS later, or a queue of QUEUE_REPORTED
 * or more doubled or halved since it was last sent, every
 * interval while anything is in flight, and a final 0 when a function goes
 * quiet (sent within QUIET_PUSH_DELAY_MS, so the control plane's view is not
 * left stale for a whole interval; not sent if it is busy again by then: a
 * function under steady load goes quiet between requests many times a second,
 * and its interval reports say enough). One push at a time; changes made
 * while a push is under way go in the next one, so a burst of cold starts
 * becomes a few batched pushes. An interval's push that finds one under way
 * is sent right after it (when it was skipped instead, a count that changed
 * without urgency could reach the control plane two intervals late).
 * A push between intervals carries only the functions whose counts changed
 * since they were last sent (the control plane keeps the others' as they
 * were): at 250 cold starts/s every push carried the ten or so functions
 * in flight, and parsing them was two fifths of what the control plane
 * allocated.
 */
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import type { LoadTotals, TrafficTotals } from '../shared/cluster-objects.js';

export interface MetricSource {
  readonly name: string;
  /** Queued + executing. */
  readonly inflight: number;
  readonly queued: number;
  readonly totals: TrafficTotals;
  readonly load: LoadTotals;
  /** Brings `load` up to now (FunctionState.accrue). */
  accrue(): void;
}

export interface FunctionMetric {
  function: string;
  inflight: number;
  queued: number;
  totals: TrafficTotals;
  load: LoadTotals;
}

export type MetricSink = (metrics: FunctionMetric[]) => Promise<void>;

/** A function that went quiet is reported within this delay (batched with others). */
export const QUIET_PUSH_DELAY_MS = 50;

/** A queue this long that doubles or halves is reported at once (see #queueMoved). */
export const QUEUE_REPORTED = 8;

/**
 * A request queued behind busy sandboxes is reported if it, or another,
 * still waits this long after (see Urgency).
 */
export const QUEUE_WAIT_MS = 10;

/**
 * `now`: the first queued request of a function with no sandbox; `waiting`:
 * the first queued behind busy sandboxes, pushed only if the queue is still
 * there QUEUE_WAIT_MS later (at 2000 requests/s on two sandboxes at
 * concurrency 1 a queue forms and clears hundreds of times a second; a push
 * for each, which the scaler acts on only when the sandboxes cannot clear
 * the queue, took the control plane's CPU per warm request under InVitro
 * from 5-11 µs to 21-24); `soon`: the function went quiet; `periodic`: any
 * other change.
 */
export type Urgency = 'now' | 'waiting' | 'soon' | 'periodic';

/** Functions pushed after a delay if they are then still as `still` says. */
class Recheck {
  readonly #fns = new Set<MetricSource>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly still: (fn: MetricSource) => boolean,
    private readonly push: () => void,
  ) {}

  add(fn: MetricSource): void {
    this.#fns.add(fn);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      let any = false;
      for (const f of this.#fns) if (this.still(f)) any = true;
      this.#fns.clear();
      if (any) this.push();
    }, this.delayMs);
  }

  delete(fn: MetricSource): void {
    this.#fns.delete(fn);
  }

  close(): void {
    clearTimeout(this.#timer);
  }
}

export class MetricsReporter {
  readonly #sink: MetricSink;
  readonly #log: Logger;
  /** Functions that had something in flight at or since the last push. */
  readonly #active = new Set<MetricSource>();
  readonly #interval: NodeJS.Timeout;
  #sending = false;
  #urgent = false;
  /** An interval's push found another under way: it follows that one, not the next interval. */
  #intervalDue = false;
  #scheduled = false;
  /** Functions that went quiet: pushed soon if they stay so. */
  readonly #quiet = new Recheck(
    QUIET_PUSH_DELAY_MS,
    (f) => f.inflight === 0,
    () => this.#flush(),
  );
  /** Functions with a request queued behind busy sandboxes: pushed at once if it still waits. */
  readonly #waiting = new Recheck(
    QUEUE_WAIT_MS,
    (f) => f.queued > 0,
    () => this.#pushNow(),
  );
  /** What was last sent of each active function: queued and executing. */
  readonly #sent = new Map<MetricSource, { inflight: number; queued: number }>();
  #failures = 0;

  constructor(sink: MetricSink, intervalMs: number, logger: Logger) {
    this.#sink = sink;
    this.#log = logger;
    this.#interval = setInterval(() => this.#flush(true), intervalMs);
    this.#interval.unref();
  }

  /** The function's in-flight count changed. */
  changed(fn: MetricSource, urgency: Urgency): void {
    fn.accrue();
    this.#active.add(fn);
    if (urgency === 'periodic' && !this.#queueMoved(fn)) return;
    if (urgency === 'soon') return this.#quiet.add(fn);
    if (urgency === 'waiting') return this.#waiting.add(fn);
    this.#pushNow();
  }

  /** A push as soon as the one under way (if any) is done. */
  #pushNow(): void {
    this.#urgent = true;
    if (this.#sending || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /**
   * A queue of QUEUE_REPORTED or more is twice what was last sent or more
   * (the ready sandboxes do not keep up), or one sent that long is half of
   * it or less (they cleared it): the control plane hears it at once rather
   * than at the next interval, since a queue that does not empty makes no
   * other urgent push, and the scaler reads the backlog from the count.
   * Shorter queues wait for the interval (at 1000 requests/s, pushing each
   * change of a queue of 1-2 doubled the control plane's work per request).
   */
  #queueMoved(fn: MetricSource): boolean {
    const sent = this.#sent.get(fn);
    if (sent === undefined || sent.queued === 0) return false;
    const queued = fn.queued;
    if (queued >= QUEUE_REPORTED && queued >= 2 * sent.queued) return true;
    return sent.queued >= QUEUE_REPORTED && 2 * queued <= sent.queued;
  }

  /** Stops reporting a function (it was removed). */
  forget(fn: MetricSource): void {
    this.#active.delete(fn);
    this.#quiet.delete(fn);
    this.#waiting.delete(fn);
    this.#sent.delete(fn);
  }

  close(): void {
    clearInterval(this.#interval);
    this.#quiet.close();
    this.#waiting.close();
  }

  /** `all`: the interval's push, every active function; otherwise those that changed. */
  #flush(all = false): void {
    if (this.#sending) {
      this.#intervalDue ||= all;
      return;
    }
    all ||= this.#intervalDue;
    this.#intervalDue = false;
    if (this.#active.size === 0) return;
    this.#urgent = false;
    const metrics: FunctionMetric[] = [];
    const included: MetricSource[] = [];
    const quiet: MetricSource[] = [];
    for (const fn of this.#active) {
      const { inflight, queued } = fn;
      const sent = this.#sent.get(fn);
      if (inflight === 0) {
        this.#active.delete(fn);
        this.#sent.delete(fn);
        quiet.push(fn);
      } else if (sent === undefined) this.#sent.set(fn, { inflight, queued });
      else if (all || sent.inflight !== inflight || sent.queued !== queued) {
        sent.inflight = inflight;
        sent.queued = queued;
      } else continue;
      included.push(fn);
      fn.accrue();
      metrics.push({
        function: fn.name,
        inflight,
        queued,
        totals: { ...fn.totals },
        load: { ...fn.load },
      });
    }
    if (metrics.length === 0) return;
    this.#sending = true;
    this.#sink(metrics)
      .then(
        () => {
          this.#failures = 0;
        },
        (err: unknown) => {
          if (this.#failures++ % 10 === 0) {
            this.#log.warn({ err: errorMessage(err) }, 'cannot push metrics to the control plane');
          }
          // None of it arrived: send it again next time.
          for (const fn of quiet) this.#active.add(fn);
          for (const fn of included) this.#sent.delete(fn);
        },
      )
      .finally(() => {
        this.#sending = false;
        if (this.#urgent || this.#intervalDue) this.#flush();
      });
  }
}
