/**
 * The request-path counters and histograms: what they add up to must read
 * back from a prom-client Registry exactly as prom-client's own would
 * (cumulative buckets, `+Inf`, `_sum`, `_count`), and a series its owner
 * dropped must leave the exposition; `Registry.resetMetrics()` zeroes them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/shared/hot-metrics.js';

function line(text: string, prefix: string): number | undefined {
  const l = text.split('\n').find((x) => x.startsWith(prefix));
  return l === undefined ? undefined : Number(l.slice(prefix.length).trim());
}

/** A registry holding one prom-client counter, `plain_total`. */
function withPlainCounter(): { r: Registry; other: Counter } {
  const r = new Registry();
  const other = new Counter({
    name: 'plain_total',
    help: 'A prom-client counter.',
    registers: [r],
  });
  return { r, other };
}

describe('hot metrics', () => {
  it('exposes the series its owner keeps, with their labels, with HELP and TYPE', async () => {
    const r = new Registry();
    const c = new HotCounter<'function' | 'outcome'>(r, 'x_total', 'Things counted.');
    const kept = new Map([
      ['f', c.series()],
      ['g', c.series()],
    ]);
    c.readFrom(function* () {
      for (const [fn, s] of kept) yield [{ function: fn, outcome: 'success' }, s];
    });
    kept.get('f')!.inc();
    kept.get('f')!.inc();
    kept.get('g')!.inc();
    const text = await r.metrics();
    assert.match(text, /# HELP x_total Things counted\./);
    assert.match(text, /# TYPE x_total counter/);
    assert.equal(line(text, 'x_total{function="f",outcome="success"}'), 2);
    assert.equal(line(text, 'x_total{function="g",outcome="success"}'), 1);
  });

  it('keeps cumulative buckets, +Inf, sum and count like prom-client', async () => {
    const r = new Registry();
    const h = new HotHistogram<'function'>(r, 'lat_seconds', 'Latency.', [0.01, 0.1, 1]);
    const s = h.series();
    h.readFrom(() => [[{ function: 'f' }, s]]);
    for (const v of [0.005, 0.01, 0.05, 0.5, 2]) s.observe(v);
    const text = await r.metrics();
    assert.match(text, /# TYPE lat_seconds histogram/);
    assert.equal(
      line(text, 'lat_seconds_bucket{le="0.01",function="f"}'),
      2,
      'upper bound inclusive',
    );
    assert.equal(line(text, 'lat_seconds_bucket{le="0.1",function="f"}'), 3);
    assert.equal(line(text, 'lat_seconds_bucket{le="1",function="f"}'), 4);
    assert.equal(line(text, 'lat_seconds_bucket{le="+Inf",function="f"}'), 5);
    assert.equal(line(text, 'lat_seconds_count{function="f"}'), 5);
    assert.ok(Math.abs(line(text, 'lat_seconds_sum{function="f"}')! - 2.565) < 1e-9);
  });

  it('exposes nothing its owner dropped, and sits beside prom-client metrics in one registry', async () => {
    const { r, other } = withPlainCounter();
    other.inc(7);
    const c = new HotCounter<'function'>(r, 'gone_total', 'Removed later.');
    const kept = new Map([
      ['f', c.series()],
      ['g', c.series()],
    ]);
    c.readFrom(() => [...kept].map(([fn, s]) => [{ function: fn }, s] as const));
    kept.get('f')!.inc();
    kept.get('g')!.inc();
    kept.delete('f');
    const text = await r.metrics();
    assert.equal(line(text, 'gone_total{function="f"}'), undefined);
    assert.equal(line(text, 'gone_total{function="g"}'), 1);
    assert.equal(line(text, 'plain_total'), 7);
  });

  it('goes back to zero with the registry, beside prom-client metrics', async () => {
    const { r, other } = withPlainCounter();
    const c = new HotCounter<'function'>(r, 'n_total', 'Counted.');
    const h = new HotHistogram<'function'>(r, 'd_seconds', 'Latency.', [0.01, 0.1]);
    const count = c.series();
    const hist = h.series();
    c.readFrom(() => [[{ function: 'f' }, count] as const]);
    h.readFrom(() => [[{ function: 'f' }, hist] as const]);
    other.inc(3);
    count.inc();
    hist.observe(0.005);
    hist.observe(0.5);
    r.resetMetrics();
    let text = await r.metrics();
    assert.equal(line(text, 'plain_total'), 0);
    assert.equal(line(text, 'n_total{function="f"}'), 0);
    assert.equal(line(text, 'd_seconds_bucket{le="0.01",function="f"}'), 0);
    assert.equal(line(text, 'd_seconds_bucket{le="+Inf",function="f"}'), 0);
    assert.equal(line(text, 'd_seconds_sum{function="f"}'), 0);
    assert.equal(line(text, 'd_seconds_count{function="f"}'), 0);
    // And counts on from there.
    count.inc();
    hist.observe(0.05);
    text = await r.metrics();
    assert.equal(line(text, 'n_total{function="f"}'), 1);
    assert.equal(line(text, 'd_seconds_bucket{le="0.01",function="f"}'), 0);
    assert.equal(line(text, 'd_seconds_bucket{le="0.1",function="f"}'), 1);
  });
});
