/**
 * The data plane's Prometheus metrics (docs/metrics.md): per function,
 * invocations by outcome, cold starts, end-to-end and scheduling latency
 * (arrival to sent to a sandbox; the queue wait for requests that waited),
 * and on each scrape its queue depth, requests executing and sandboxes
 * routed to. Each request costs a Map lookup, one close callback
 * (Exchange.onClose) and three histogram/counter updates.
 */
import {
  LATENCY_BUCKETS_S,
  daemonRegistry,
  metricsOf,
  type Registry,
} from '../shared/prometheus.js';
import {
  HotCounter,
  HotHistogram,
  type Count,
  type HistogramCounts,
} from '../shared/hot-metrics.js';
import type { Exchange } from './exchange.js';
import type { FunctionState } from './function-state.js';

type Outcome = 'success' | 'client_error' | 'server_error' | 'client_gone';

/** A function's series, kept beside its name and read by the metrics at scrape time. */
interface Series {
  outcome: Record<Outcome, Count>;
  cold: Count;
  duration: HistogramCounts;
  scheduling: HistogramCounts;
  queueWait: HistogramCounts;
}

export class DataPlaneMetrics {
  readonly registry: Registry;
  readonly #invocations: HotCounter<'function' | 'outcome'>;
  readonly #coldStarts: HotCounter<'function'>;
  readonly #duration: HotHistogram<'function'>;
  readonly #scheduling: HotHistogram<'function'>;
  readonly #queueWait: HotHistogram<'function'>;
  readonly #series = new Map<string, Series>();

  constructor(functions: () => Iterable<FunctionState<unknown>>, processMetrics: boolean) {
    const r = (this.registry = daemonRegistry(processMetrics));
    const m = metricsOf(r);
    // Updated on every request: kept as plain numbers, read at scrape time.
    this.#invocations = new HotCounter(
      r,
      'baton_dp_invocations_total',
      'Invocations answered (or given up by the client), by outcome: success (< 400), client_error (4xx), server_error (5xx), client_gone.',
    );
    this.#coldStarts = new HotCounter(
      r,
      'baton_dp_cold_starts_total',
      'Invocations that arrived while their function had no sandbox and waited for one to be made.',
    );
    const latency = (name: string, help: string) =>
      new HotHistogram<'function'>(r, name, help, LATENCY_BUCKETS_S);
    this.#duration = latency(
      'baton_dp_invocation_duration_seconds',
      'From arrival at the data plane to the end of the answer.',
    );
    this.#scheduling = latency(
      'baton_dp_scheduling_seconds',
      'From arrival to being sent to a sandbox (queueing and cold start included).',
    );
    this.#queueWait = latency(
      'baton_dp_queue_wait_seconds',
      'Time in the function queue, for invocations that found no free sandbox.',
    );
    const perFunction = (
      name: string,
      help: string,
      value: (fn: FunctionState<unknown>) => number,
    ) =>
      m.gauge(name, help, ['function'], (set) => {
        for (const fn of functions()) set({ function: fn.name }, value(fn));
      });
    const series = this.#series;
    const byFunction = <S>(pick: (s: Series) => S) =>
      function* (): Generator<readonly [{ function: string }, S]> {
        for (const [fn, s] of series) yield [{ function: fn }, pick(s)];
      };
    this.#invocations.readFrom(function* () {
      for (const [fn, s] of series)
        for (const outcome of OUTCOMES) yield [{ function: fn, outcome }, s.outcome[outcome]];
    });
    this.#coldStarts.readFrom(byFunction((s) => s.cold));
    this.#duration.readFrom(byFunction((s) => s.duration));
    this.#scheduling.readFrom(byFunction((s) => s.scheduling));
    this.#queueWait.readFrom(byFunction((s) => s.queueWait));
    perFunction('baton_dp_queue_depth', 'Invocations waiting for a sandbox.', (fn) => fn.queued);
    perFunction(
      'baton_dp_executing',
      'Invocations being served by a sandbox.',
      (fn) => fn.executing,
    );
    perFunction(
      'baton_dp_sandboxes',
      'Ready sandboxes this data plane routes to.',
      (fn) => fn.endpoints.length,
    );
  }

  /**
   * Counts the invocation, its end-to-end time and whether it was a cold
   * start once its answer ends (or its client leaves): in the Prometheus
   * series and in the function's totals for the dashboard, the same way.
   */
  track(fn: FunctionState<unknown>, ex: Exchange, arrivedAt: number, cold: () => boolean): void {
    const s = this.#of(fn.name);
    ex.onClose(() => {
      const ms = performance.now() - arrivedAt;
      s.duration.observe(ms / 1000);
      const status = ex.status;
      const outcome = !ex.finished
        ? 'client_gone'
        : status < 400
          ? 'success'
          : status < 500
            ? 'client_error'
            : 'server_error';
      s.outcome[outcome].inc();
      const t = fn.totals;
      t.invocations++;
      t.durationMs += ms;
      if (outcome === 'server_error') t.failures++;
      if (cold()) {
        s.cold.inc();
        t.coldStarts++;
      }
    });
  }

  /** The invocation is sent to a sandbox at `now`; `queuedAt` when it waited for one. */
  dispatched(fn: string, arrivedAt: number, queuedAt: number | undefined, now: number): void {
    const s = this.#of(fn);
    s.scheduling.observe((now - arrivedAt) / 1000);
    if (queuedAt !== undefined) s.queueWait.observe((now - queuedAt) / 1000);
  }

  /** Drops a deleted function's series. */
  forget(fn: string): void {
    this.#series.delete(fn);
  }

  #of(fn: string): Series {
    let s = this.#series.get(fn);
    if (s === undefined) {
      const count = () => this.#invocations.series();
      s = {
        outcome: {
          success: count(),
          client_error: count(),
          server_error: count(),
          client_gone: count(),
        },
        cold: this.#coldStarts.series(),
        duration: this.#duration.series(),
        scheduling: this.#scheduling.series(),
        queueWait: this.#queueWait.series(),
      };
      this.#series.set(fn, s);
    }
    return s;
  }
}

const OUTCOMES: Outcome[] = ['success', 'client_error', 'server_error', 'client_gone'];
