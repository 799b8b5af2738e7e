/**
 * Counters and histograms for a request path: a labelled series is a plain
 * object whose update is an addition (a histogram's, a bucket search and
 * three), read into the Prometheus text only at scrape time. prom-client's
 * own labelled children hash their labels on every update, which cost the
 * data plane a tenth of its CPU per warm request (docs/benchmarks.md).
 *
 * A metric keeps no series itself: their owner makes them (`series()`),
 * keeps them where it keeps what they count (the data plane: beside each
 * function) and tells the metric where to find them with their labels at
 * scrape time (`readFrom`). A map of series per metric, keyed by their
 * labels, cost the data plane 53 µs for each function's first request
 * (eight series, eight keys made and looked up; docs/benchmarks.md).
 *
 * They register in a prom-client Registry as metrics of their own (the
 * registry asks each metric for `get()`), so they appear beside prom-client's
 * in the same exposition. Left out: exemplars, a series' own timestamp.
 */
import type { Registry } from 'prom-client';

export type Labels<L extends string> = Record<L, string>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface Exposed {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** A metric's series with their labels, as read at scrape time. */
export type SeriesSource<L extends string, S> = () => Iterable<readonly [Labels<L>, S]>;

abstract class HotMetric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  #source: SeriesSource<L, S> = () => [];

  constructor(registry: Registry, name: string, help: string) {
    this.name = name;
    this.help = help;
    // The registry needs only name, help and get(); prom-client's types name its own classes.
    registry.registerMetric(this as never);
  }

  /** A new series, at zero: kept by the caller, updated with no look-up, exposed by way of readFrom. */
  series(): S {
    return this.fresh();
  }

  /** Where the exposition finds the series and their labels (what is not there is not exposed). */
  readFrom(source: SeriesSource<L, S>): void {
    this.#source = source;
  }

  /** Every series the source holds back to zero (prom-client's `Registry.resetMetrics()` calls it). */
  reset(): void {
    for (const [, s] of this.#source()) this.zero(s);
  }

  get(): Promise<Exposed> {
    const values: MetricValue[] = [];
    for (const [labels, s] of this.#source()) this.expose(labels, s, values);
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: 'sum',
    });
  }

  protected abstract readonly type: 'counter' | 'histogram';
  protected abstract fresh(): S;
  protected abstract zero(s: S): void;
  protected abstract expose(labels: Labels<L>, s: S, out: MetricValue[]): void;
}

export class Count {
  n = 0;
  inc(): void {
    this.n++;
  }
}

export class HotCounter<L extends string> extends HotMetric<L, Count> {
  protected readonly type = 'counter';
  protected fresh(): Count {
    return new Count();
  }
  protected zero(s: Count): void {
    s.n = 0;
  }
  protected expose(labels: Labels<L>, s: Count, out: MetricValue[]): void {
    out.push({ labels, value: s.n });
  }
}

export class HistogramCounts {
  /** A plain array: a typed one is an ArrayBuffer of its own, slower to make and to collect. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Array<number>(bounds.length).fill(0);
  }
  /** One observation, in the histogram's unit (seconds for latencies). */
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++)
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
  }
}

export class HotHistogram<L extends string> extends HotMetric<L, HistogramCounts> {
  protected readonly type = 'histogram';
  readonly #bounds: readonly number[];

  constructor(registry: Registry, name: string, help: string, bounds: readonly number[]) {
    super(registry, name, help);
    this.#bounds = bounds;
  }

  protected fresh(): HistogramCounts {
    return new HistogramCounts(this.#bounds);
  }

  protected zero(s: HistogramCounts): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }

  protected expose(labels: Labels<L>, s: HistogramCounts, out: MetricValue[]): void {
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += s.counts[i]!;
      out.push({
        metricName: `${this.name}_bucket`,
        labels: { le: this.#bounds[i]!, ...labels },
        value: cumulative,
      });
    }
    out.push({
      metricName: `${this.name}_bucket`,
      labels: { le: '+Inf', ...labels },
      value: s.count,
    });
    out.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
    out.push({ metricName: `${this.name}_count`, labels, value: s.count });
  }
}
