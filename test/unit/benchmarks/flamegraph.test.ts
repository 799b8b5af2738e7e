import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  flameGraphSvg,
  foldProfile,
  frameLabel,
  selfTimes,
  type CpuProfile,
} from '../../../benchmarks/lib/flamegraph.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({
  functionName,
  url,
  lineNumber,
});

/**
 * root ─ main (dist/data-plane/proxy.js:10) ─ parse (node_modules/zod/x.js:3)
 *      │                                    └ write (native)
 *      ├ (garbage collector)
 *      └ (idle)
 */
const PROFILE: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5, 6] },
    { id: 2, callFrame: frame('main', 'file:///w/dist/data-plane/proxy.js', 9), children: [3, 4] },
    { id: 3, callFrame: frame('parse', 'file:///w/node_modules/zod/x.js', 2) },
    { id: 4, callFrame: frame('write') },
    { id: 5, callFrame: frame('(garbage collector)') },
    { id: 6, callFrame: frame('(idle)') },
  ],
  startTime: 1_000,
  endTime: 2_000,
  // A sample counts the time to the next: main 100, parse 200, write 50, idle 300, gc 100, main 0 (last).
  samples: [2, 3, 4, 6, 5, 2],
  timeDeltas: [10, 100, 200, 50, 300, 100],
};

test('frames are named by function and the file that names them, Node and dependencies marked', () => {
  assert.equal(frameLabel(frame('f', 'file:///repo/dist/cli/up.js', 4)), 'f cli/up.js:5');
  assert.equal(frameLabel(frame('f', 'file:///repo/src/cli/up.ts', 0)), 'f cli/up.ts:1');
  assert.equal(
    frameLabel(frame('g', 'file:///repo/node_modules/undici/lib/core.js', 1)),
    'g npm:undici/lib/core.js:2',
  );
  assert.equal(
    frameLabel(frame('h', 'node:internal/streams/readable', 9)),
    'h node:internal/streams/readable:10',
  );
  assert.equal(frameLabel(frame('', 'file:///elsewhere/tool.mjs', 0)), '(anonymous) tool.mjs:1');
  assert.equal(frameLabel(frame('(program)')), '(program)');
  // ';' separates frames in a folded stack: never inside one.
  assert.equal(frameLabel(frame('a;b')), 'a,b');
});

test('folding gives each stack the time to the next sample, and leaves idle time out', () => {
  const folded = foldProfile(PROFILE);
  assert.deepEqual([...folded].sort(), [
    ['(garbage collector)', 100],
    ['main data-plane/proxy.js:10', 100],
    ['main data-plane/proxy.js:10;parse npm:zod/x.js:3', 200],
    ['main data-plane/proxy.js:10;write', 50],
  ]);
  assert.deepEqual(selfTimes(folded), [
    ['parse npm:zod/x.js:3', 200],
    ['(garbage collector)', 100],
    ['main data-plane/proxy.js:10', 100],
    ['write', 50],
  ]);
});

test('a window keeps only the samples taken inside it', () => {
  // Sample times: 1010, 1110, 1310, 1360, 1660, 1760.
  const folded = foldProfile(PROFILE, { fromUs: 1100, toUs: 1400 });
  assert.deepEqual([...folded].sort(), [
    ['main data-plane/proxy.js:10;parse npm:zod/x.js:3', 200],
    ['main data-plane/proxy.js:10;write', 50],
  ]);
});

test('the flame graph draws each frame as wide as its share, callers below callees', () => {
  const svg = flameGraphSvg(foldProfile(PROFILE), {
    title: 'data plane <warm> & "fast"',
    width: 470,
  });
  // Titles are escaped; the document is one <svg>.
  assert.match(svg, /data plane &lt;warm&gt; &amp; &quot;fast&quot;/);
  assert.equal(svg.match(/<svg /g)?.length, 1);
  const rects = [
    ...svg.matchAll(/<title>([^<]*)<\/title><rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"/g),
  ].map((m) => ({
    name: m[1]!.replace(/ \(.*$/, ''),
    x: Number(m[2]),
    y: Number(m[3]),
    w: Number(m[4]),
  }));
  const byName = new Map(rects.map((r) => [r.name, r]));
  // 450 px for 450 µs of samples (470 less 10 px each side).
  assert.equal(byName.get('all')!.w, 450);
  assert.equal(byName.get('main data-plane/proxy.js:10')!.w, 350);
  assert.equal(byName.get('parse npm:zod/x.js:3')!.w, 200);
  assert.equal(byName.get('write')!.w, 50);
  assert.equal(byName.get('(garbage collector)')!.w, 100);
  // A callee sits one row above its caller, and starts within it.
  const main = byName.get('main data-plane/proxy.js:10')!;
  const parse = byName.get('parse npm:zod/x.js:3')!;
  assert.equal(parse.y, main.y - 17);
  assert.ok(parse.x >= main.x && parse.x + parse.w <= main.x + main.w + 0.1);
  assert.ok(!svg.includes('(idle)'));
  assert.match(svg, /<title>parse npm:zod\/x.js:3 \(0\.2 ms, 44\.44 %\)<\/title>/);
});

test('frames below the smallest share drawn are left out, with their callees', () => {
  const folded = new Map([
    ['big', 9_990],
    ['big;tiny', 5],
    ['small', 5],
  ]);
  const svg = flameGraphSvg(folded, { title: 't', minShare: 0.001 });
  assert.match(svg, /<title>big /);
  assert.ok(!svg.includes('<title>small'));
  assert.ok(!svg.includes('<title>tiny'));
});
