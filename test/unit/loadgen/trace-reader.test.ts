/** The InVitro trace reader: the azure-100 sample, windows, seeded samples, malformed files. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTrace, TraceFormatError } from '../../../src/loadgen/trace-reader.js';

// A copy of ../shared/traces/azure-100 (CC BY 4.0, see its README), so the
// tests do not depend on where the repository is cloned.
const AZURE = fileURLToPath(new URL('../../fixtures/azure-100', import.meta.url));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('trace reader', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  /** A copy of azure-100 with `file` edited by `edit`. */
  const corrupted = (file: string, edit: (text: string) => string): string => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-trace-'));
    dirs.push(dir);
    cpSync(AZURE, dir, { recursive: true });
    const path = join(dir, file);
    rmSync(path);
    writeFileSync(path, edit(readFileSync(join(AZURE, file), 'utf8')));
    return dir;
  };

  it('reads the whole azure-100 sample: 100 functions, 480 minutes, every invocation', () => {
    const t = readTrace(AZURE);
    assert.equal(t.functions.length, 100);
    assert.equal(t.minutes, 480);
    assert.equal(t.firstMinuteLabel, '480');
    assert.equal(sum(t.functions.map((f) => sum(f.perMinute))), 339_657);
    const f = t.functions[0]!;
    assert.equal(f.durationPercentiles.length, 7);
    assert.equal(f.memoryPercentiles.length, 8);
    assert.equal(f.deployment.image, 'trace');
  });

  it('keeps exactly the minutes of the window', () => {
    const all = readTrace(AZURE);
    const w = readTrace(AZURE, { startMinute: 10, minutes: 3 });
    assert.equal(w.firstMinuteLabel, '490');
    assert.equal(w.minutes, 3);
    w.functions.forEach((f, i) =>
      assert.deepEqual(f.perMinute, all.functions[i]!.perMinute.slice(10, 13)),
    );
  });

  it('samples functions reproducibly from the seed', () => {
    const a = readTrace(AZURE, { functions: 10, seed: 7, minutes: 1 });
    const b = readTrace(AZURE, { functions: 10, seed: 7, minutes: 1 });
    const c = readTrace(AZURE, { functions: 10, seed: 8, minutes: 1 });
    assert.equal(new Set(a.functions.map((f) => f.hash)).size, 10);
    assert.deepEqual(
      a.functions.map((f) => f.hash),
      b.functions.map((f) => f.hash),
    );
    assert.notDeepEqual(
      a.functions.map((f) => f.hash),
      c.functions.map((f) => f.hash),
    );
  });

  it('rejects windows and samples the trace cannot give', () => {
    assert.throws(() => readTrace(AZURE, { startMinute: 480 }), /--start-minute: 480 is outside/);
    assert.throws(
      () => readTrace(AZURE, { startMinute: 470, minutes: 20 }),
      /--minutes: 20 from minute 470/,
    );
    assert.throws(
      () => readTrace(AZURE, { functions: 101 }),
      /--functions: 101 is not between 1 and/,
    );
  });

  it('names file, line and column of a malformed count', () => {
    const dir = corrupted('invocations.csv', (text) => {
      const lines = text.split('\n');
      const cells = lines[2]!.split(',');
      cells[5] = 'x'; // column 6: minute 481
      lines[2] = cells.join(',');
      return lines.join('\n');
    });
    assert.throws(
      () => readTrace(dir),
      (err: unknown) =>
        err instanceof TraceFormatError &&
        err.message ===
          `${join(dir, 'invocations.csv')}:3:6: 481 "x" is not a non-negative integer`,
    );
  });

  it('names a missing column and a function missing from another file', () => {
    const noImage = corrupted('dirigent.csv', (text) =>
      text.replace('HashFunction,Image,', 'HashFunction,Picture,'),
    );
    assert.throws(() => readTrace(noImage), /dirigent\.csv:1: no column "Image" in the header/);
    const noDuration = corrupted('durations.csv', (text) =>
      text
        .split('\n')
        .filter((_, i) => i !== 1)
        .join('\n'),
    );
    assert.throws(
      () => readTrace(noDuration),
      /invocations\.csv:\d+: function [0-9a-f]+ has no row in durations\.csv/,
    );
    const negative = corrupted('durations.csv', (text) => {
      const lines = text.split('\n');
      lines[1] = lines[1]!.replace(/,(\d+),(\d+),/, ',-5,$2,');
      return lines.join('\n');
    });
    assert.throws(
      () => readTrace(negative),
      /durations\.csv:2:4: Average "-5" is not a non-negative number/,
    );
  });
});
