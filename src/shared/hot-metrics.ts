/**
 * Counters and histograms for a request path: a labelled series is a plain
 * object whose update is an addition (a histogram's, a bucket search and
 * three), read into the Prometheus text only at scrape time. prom-client's
 * own labelled children hash their labels on every update, which cost the
 * data plane a tenth of its CPU per warm request (docs/benchmarks.md).
 *
 * They register in a prom-client Registry as metrics of their own (the
 * registry asks each metric for `get()`), so they appear beside prom-client's
 * in the same exposition. Left out: exemplars, a series' own timestamp.
 */
import type { Registry } from 'prom-client';

type Labels<L extends string> = Record<L, string>;

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

abstract class HotMetric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly #series = new Map<string, { labels: Labels<L>; s: S }>();

  constructor(registry: Registry, name: string, help: string) {
    this.name = name;
    this.help = help;
    // The registry needs only name, help and get(); prom-client's types name its own classes.
    registry.registerMetric(this as never);
  }

  /** The series of `labels`, made on first use. Keep it: updating it costs no look-up. */
  series(labels: Labels<L>): S {
    const key = seriesKey(labels);
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, s: this.fresh() };
      this.#series.set(key, entry);
    }
    return entry.s;
  }

  /** Drops the series of `labels` (what it counted is gone from the exposition). */
  remove(labels: Labels<L>): void {
    this.#series.delete(seriesKey(labels));
  }

  reset(): void {
    this.#series.clear();
  }

  get(): Promise<Exposed> {
    const values: MetricValue[] = [];
    for (const { labels, s } of this.#series.values()) this.expose(labels, s, values);
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
  protected abstract expose(labels: Labels<L>, s: S, out: MetricValue[]): void;
}

export interface CounterSeries {
  inc(): void;
}

class Count implements CounterSeries {
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
  protected expose(labels: Labels<L>, s: Count, out: MetricValue[]): void {
    out.push({ labels, value: s.n });
  }
}

export interface HistogramSeries {
  /** One observation, in the histogram's unit (seconds for latencies). */
  observe(v: number): void;
}

class HistogramCounts implements HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }
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

/**
 * The same for the same labels in any order, and different for any other:
 * each name and value prefixed with its length, names sorted. Made for every
 * series of a data plane's every new function (eight of them), where the
 * JSON of sorted entries it replaced cost 15 µs per function.
 */
function seriesKey(labels: Record<string, string>): string {
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  let key = '';
  for (const name of names) {
    const value = labels[name]!;
    key += `${name.length}:${name}${value.length}:${value}`;
  }
  return key;
}
