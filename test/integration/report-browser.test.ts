/**
 * `baton report` draws two runs on one page, and the page renders in
 * headless Chromium with its plots: the DOM Chromium builds has every
 * series, and the screenshot it paints has both runs' colours in it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import { runBaton, tempDir } from '../helpers/processes.js';
import { writeResultDir } from '../helpers/replay-results.js';

const CHROMIUM = process.env.BATON_CHROMIUM ?? 'chromium';

/** A result directory of 10 functions x 30 invocations whose scheduling latency grows with `scale`. */
function writeRun(dir: string, label: string, scale: number): void {
  let rows = '';
  for (let f = 0; f < 10; f++)
    for (let i = 0; i < 30; i++) {
      const exec = 5 + f * 20;
      const sched = scale * (0.5 + ((i * 7 + f * 3) % 30) / 3);
      const t = f * 1000 + i * 150;
      rows += `${t},${t},fn-${f},200,${exec + sched},${exec},${sched},${i === 0 ? 'cold' : 'warm'},${exec},64,0,\n`;
    }
  let timeline = '';
  for (let s = 0; s <= 60; s++)
    timeline += `${s * 1000},${Math.min(10, s)},0,0,${Math.min(10, s)}\n`;
  writeResultDir(dir, label, rows, timeline);
}

function chromium(dir: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        `--user-data-dir=${join(dir, 'chromium-profile')}`,
        ...args,
      ],
      { timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout) => {
        if (err !== null)
          reject(
            new Error(
              `${CHROMIUM} failed (${err.message}); install the Debian package "chromium" (.ci/run does) or set BATON_CHROMIUM`,
            ),
          );
        else resolve(stdout);
      },
    );
  });
}

describe('the HTML report in headless Chromium', () => {
  let dir: string;
  before(() => {
    dir = tempDir('baton-browser-');
    writeRun(join(dir, 'fast'), 'fast run', 1);
    writeRun(join(dir, 'slow'), 'slow run', 20);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('renders the summary and every CDF and timeline series of two runs', async () => {
    const page = join(dir, 'report.html');
    const r = await runBaton([
      'report',
      join(dir, 'fast'),
      join(dir, 'slow'),
      '--out',
      page,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summaries = JSON.parse(r.stdout) as Array<{ label: string; sched_p50_ms: number }>;
    assert.deepEqual(
      summaries.map((s) => s.label),
      ['fast run', 'slow run'],
    );
    assert.ok(summaries[1]!.sched_p50_ms > summaries[0]!.sched_p50_ms * 10);
    assert.match(readFileSync(page, 'utf8'), /<svg /);

    const dom = await chromium(dir, ['--dump-dom', pathToFileURL(page).href]);
    assert.match(dom, /<table id="summary">/);
    assert.match(dom, /fast run/);
    // Slowdown: one line per run; scheduling: per invocation and per function mean; timeline: one per run.
    const series = [...dom.matchAll(/<polyline class="series"[^>]* points="([^"]+)"/g)];
    assert.equal(series.length, 8, 'two runs x (1 + 2 + 1) series');
    for (const [, points] of series) assert.ok(points!.split(' ').length >= 11);
    assert.equal([...dom.matchAll(/<svg /g)].length, 3);

    const shot = join(dir, 'report.png');
    await chromium(dir, [
      `--screenshot=${shot}`,
      '--window-size=900,1900',
      pathToFileURL(page).href,
    ]);
    const png = PNG.sync.read(readFileSync(shot));
    assert.equal(png.width, 900);
    const count = (rgb: [number, number, number]) => {
      let n = 0;
      for (let i = 0; i < png.data.length; i += 4)
        if (
          Math.abs(png.data[i]! - rgb[0]) < 24 &&
          Math.abs(png.data[i + 1]! - rgb[1]) < 24 &&
          Math.abs(png.data[i + 2]! - rgb[2]) < 24
        )
          n++;
      return n;
    };
    // The first run's lines are #1f77b4, the second's #d62728; each needs hundreds of painted pixels.
    assert.ok(count([0x1f, 0x77, 0xb4]) > 500, 'the first run is drawn');
    assert.ok(count([0xd6, 0x27, 0x28]) > 500, 'the second run is drawn');
  });
});
