/** Trace schedules: exact counts per minute, inter-arrival distributions, percentile sampling. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { mean } from '../../../src/loadgen/stats.js';
import { imageTag } from '../../../src/loadgen/rps.js';
import { functionNameSchema } from '../../../src/shared/function-spec.js';
import { readTrace } from '../../../src/loadgen/trace-reader.js';
import {
  IAT_DISTRIBUTIONS,
  arrivalsInMinute,
  buildSchedule,
  samplePercentiles,
  type IatDistribution,
} from '../../../src/loadgen/trace-schedule.js';

// A copy of ../shared/traces/azure-100 (CC BY 4.0, see its README), so the
// tests do not depend on where the repository is cloned.
const AZURE = fileURLToPath(new URL('../../fixtures/azure-100', import.meta.url));
const gaps = (xs: number[]) => xs.slice(1).map((x, i) => x - xs[i]!);

describe('trace schedule', () => {
  const trace = readTrace(AZURE, { startMinute: 30, minutes: 5, functions: 30, seed: 3 });

  for (const iat of IAT_DISTRIBUTIONS) {
    it(`${iat}: sends exactly the trace's count of each function in each minute, in time order`, () => {
      const s = buildSchedule(trace, iat, 1);
      const counts = trace.functions.map(() => new Array<number>(trace.minutes).fill(0));
      for (const inv of s) counts[inv.fn]![Math.floor(inv.atMs / 60_000)]!++;
      assert.deepEqual(
        counts,
        trace.functions.map((f) => f.perMinute),
      );
      assert.ok(s.every((inv, i) => i === 0 || inv.atMs >= s[i - 1]!.atMs));
      assert.ok(s.every((inv) => inv.atMs >= 0 && inv.atMs < trace.minutes * 60_000));
      assert.ok(
        s.every((inv) => Number.isInteger(inv.execMs) && inv.execMs >= 1 && inv.memoryMib >= 1),
      );
    });
  }

  it('is reproducible from its seed', () => {
    assert.deepEqual(
      buildSchedule(trace, 'exponential', 9),
      buildSchedule(trace, 'exponential', 9),
    );
    assert.notDeepEqual(
      buildSchedule(trace, 'exponential', 9),
      buildSchedule(trace, 'exponential', 10),
    );
  });

  const cases: Array<[IatDistribution, number, number]> = [
    // distribution, lowest and highest coefficient of variation of the gaps
    ['equidistant', 0, 1e-9],
    ['uniform', 0.8, 1.2],
    ['exponential', 0.8, 1.2],
  ];
  for (const [iat, cvLow, cvHigh] of cases) {
    it(`${iat}: 600 arrivals in a minute have a mean gap of 100 ms and the right spread`, () => {
      const at = arrivalsInMinute(600, iat, xoroshiro128plus(42));
      assert.equal(at.length, 600);
      assert.ok(at.every((t) => t >= 0 && t < 60_000));
      const g = gaps(at);
      const m = mean(g);
      assert.ok(Math.abs(m - 100) < 10, `mean gap ${m} ms`);
      const cv = Math.sqrt(mean(g.map((x) => (x - m) ** 2))) / m;
      assert.ok(cv >= cvLow && cv <= cvHigh, `coefficient of variation ${cv}`);
    });
  }

  it('samples between percentile points, with their distribution', () => {
    const rng = xoroshiro128plus(5);
    const xs = Array.from({ length: 20_000 }, () =>
      samplePercentiles([10, 20, 1000], [0, 50, 100], rng),
    );
    assert.ok(xs.every((x) => x >= 10 && x <= 1000));
    const below20 = xs.filter((x) => x <= 20).length / xs.length;
    assert.ok(Math.abs(below20 - 0.5) < 0.02, `share at or below the median: ${below20}`);
    assert.ok(Math.abs(mean(xs.filter((x) => x <= 20)) - 15) < 0.5);
  });

  it('rejects an unknown distribution', () => {
    assert.throws(
      () => buildSchedule(trace, 'poisson' as IatDistribution, 1),
      /--iat: unknown distribution "poisson"/,
    );
  });
});

describe('RPS function names from image references', () => {
  it('keeps the last path segment, made a valid function name part', () => {
    assert.equal(imageTag('empty'), 'empty');
    assert.equal(imageTag('docker.io/vhiveease/relay:latest'), 'relay-latest');
    assert.equal(imageTag('ghcr.io/X/Y/Trace_Func-Go:v1.2'), 'trace-func-go-v1-2');
    assert.equal(imageTag('/srv/functions/hello-ts/'), 'hello-ts');
    assert.equal(imageTag('::'), 'image');
    assert.equal(imageTag('a'.repeat(40)).length, 24);
    for (const image of ['docker.io/vhiveease/relay:latest', 'Hello World!', ':::'])
      assert.doesNotThrow(() => functionNameSchema.parse(`rps-cold-${imageTag(image)}-999`));
  });
});
