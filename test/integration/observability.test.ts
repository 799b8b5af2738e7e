/**
 * Operating a running cluster: every daemon's Prometheus metrics (parsed,
 * and checked line by line against the text format), the live dashboard in
 * headless Chromium (functions appear, numbers move), and daemon logs read
 * back for a person.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import puppeteer, { type Browser } from 'puppeteer-core';
import { request } from 'undici';
import { runBaton, startUp, tempDir, type BatonUp } from '../helpers/processes.js';
import { waitUntil } from '../helpers/baton-client.js';

const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_MISSING =
  spawnSync(CHROMIUM, ['--version']).error === undefined
    ? false
    : `${CHROMIUM} is not installed (apt-get install chromium, or set BATON_CHROMIUM)`;

/** One sample line of the text format: name, optional labels, a value. */
const SAMPLE_LINE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)( -?\d+)?$/;

type Scrape = ReturnType<typeof parsePrometheus> & { text: string };

async function scrape(url: string): Promise<Scrape> {
  const res = await request(url);
  assert.equal(res.statusCode, 200, url);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = await res.body.text();
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') families.add(meta[2]!);
      continue;
    }
    assert.match(line, SAMPLE_LINE, `${url}: not a sample line`);
  }
  const parsed = parsePrometheus(text);
  assert.equal(parsed.length, families.size, 'every family parsed');
  return Object.assign(parsed, { text });
}

function family(all: ReturnType<typeof parsePrometheus>, name: string) {
  const f = all.find((m) => m.name === name);
  assert.ok(f, `${name} is exposed`);
  return f;
}

describe('observing a running cluster', () => {
  let b: BatonUp;
  let env: Record<string, string>;
  before(async () => {
    b = await startUp();
    env = { BATON_CP: b.registration, BATON_DP: b.proxy, BATON_DATA_DIR: b.dataDir };
    assert.equal((await runBaton(['deploy', 'obs-hello', '--image', 'hello'], env)).code, 0);
  });
  after(() => b.stop());

  it('serves Prometheus text on every daemon, with per-function series after one invocation', async () => {
    assert.equal((await runBaton(['invoke', 'obs-hello'], env)).code, 0);
    const targets = (await (
      await request(`${b.registration}/v1/prometheus-targets`)
    ).body.json()) as Array<{
      targets: string[];
      labels: { job: string };
    }>;
    const jobs = Object.fromEntries(targets.map((t) => [t.labels.job, t.targets]));
    assert.deepEqual(Object.keys(jobs).sort(), [
      'baton-control-plane',
      'baton-data-plane',
      'baton-worker',
    ]);

    const cp = await scrape(`${b.registration}/metrics`);
    const sandboxes = family(cp, 'baton_cp_sandboxes');
    assert.ok(
      sandboxes.metrics.some(
        (m) => m.labels?.function === 'obs-hello' && m.labels.state === 'ready' && m.value === '1',
      ),
    );
    assert.equal(family(cp, 'baton_cp_leader').metrics[0]?.value, '1');
    assert.equal(family(cp, 'baton_cp_store_call_seconds').type, 'HISTOGRAM');
    // The registration above was a store call; failed calls are a series from the start.
    // (Read from the text: the parser drops a histogram's labels and counts.)
    const storeCount = (outcome: string) =>
      Number(
        new RegExp(
          `^baton_cp_store_call_seconds_count\\{outcome="${outcome}"\\} (\\d+)$`,
          'm',
        ).exec(cp.text)?.[1],
      );
    assert.ok(storeCount('ok') >= 1, cp.text);
    assert.equal(storeCount('error'), 0);
    family(cp, 'process_cpu_seconds_total');

    const dp = await scrape(`http://${jobs['baton-data-plane']![0]!}/metrics`);
    const ok = family(dp, 'baton_dp_invocations_total').metrics.find(
      (m) => m.labels?.function === 'obs-hello' && m.labels.outcome === 'success',
    );
    assert.equal(ok?.value, '1');
    const cold = family(dp, 'baton_dp_cold_starts_total').metrics.find(
      (m) => m.labels?.function === 'obs-hello',
    );
    assert.equal(cold?.value, '1');
    const e2e = family(dp, 'baton_dp_invocation_duration_seconds');
    assert.equal(e2e.type, 'HISTOGRAM');
    // (The parser drops a labelled histogram's count: read its sample line.)
    assert.match(
      dp.text,
      /^baton_dp_invocation_duration_seconds_count\{function="obs-hello"\} 1$/m,
    );
    // Every outcome is there from the first invocation, at 0 until it happens.
    assert.match(
      dp.text,
      /^baton_dp_invocations_total\{function="obs-hello",outcome="client_error"\} 0$/m,
    );
    const worker = await scrape(`http://${jobs['baton-worker']![0]!}/metrics`);
    const made = family(worker, 'baton_worker_sandbox_creations_total').metrics.find(
      (m) => m.labels?.outcome === 'ok',
    );
    assert.equal(made?.value, '1');
    assert.ok(
      family(worker, 'baton_worker_sandboxes').metrics.some(
        (m) => m.labels?.function === 'obs-hello' && m.value === '1',
      ),
    );

    // A deleted function's series leave the exposition.
    assert.equal((await runBaton(['deploy', 'obs-gone', '--image', 'hello'], env)).code, 0);
    assert.equal((await runBaton(['invoke', 'obs-gone'], env)).code, 0);
    const dpUrl = `http://${jobs['baton-data-plane']![0]!}/metrics`;
    assert.match((await scrape(dpUrl)).text, /function="obs-gone"/);
    assert.equal((await runBaton(['rm', 'obs-gone'], env)).code, 0);
    await waitUntil(
      "the deleted function's series to leave",
      async () => !(await scrape(dpUrl)).text.includes('function="obs-gone"'),
      5000,
    );
  });

  it(
    'the dashboard shows the functions and its numbers move, in headless Chromium',
    { skip: CHROMIUM_MISSING },
    async () => {
      const dir = tempDir('baton-ui-');
      let browser: Browser | undefined;
      try {
        browser = await puppeteer.launch({
          executablePath: CHROMIUM,
          headless: true,
          userDataDir: join(dir, 'profile'),
          args: ['--no-sandbox', '--disable-gpu'],
        });
        const page = await browser.newPage();
        await page.setViewport({ width: 1400, height: 800 });
        await page.goto(`${b.registration}/ui`);
        // Run in the page (strings: this file is compiled without the DOM's types).
        const rowCell = (col: number) =>
          `[...document.querySelectorAll('#functions tr')].find((tr) => tr.firstElementChild?.textContent === 'obs-hello')?.children[${col}]?.textContent ?? null`;
        const cellOf = (col: number) => page.evaluate(rowCell(col)) as Promise<string | null>;
        const textOf = (id: string) =>
          page.evaluate(`document.getElementById('${id}').textContent`) as Promise<string>;
        await page.waitForFunction(`${rowCell(0)} === 'obs-hello'`, { timeout: 15_000 });
        assert.match(await textOf('workers'), /worker-1/);
        assert.match(
          await textOf('dataplanes'),
          new RegExp(new URL(b.proxy).host.replace(/\./g, '\\.')),
        );
        const before = Number(await cellOf(6));
        // Bounded load: 60 invocations over about 3 s, while the page polls every second.
        for (let i = 0; i < 60; i++) {
          await request(`${b.proxy}/function/obs-hello/`).then((r) => r.body.dump());
          await new Promise((r) => setTimeout(r, 50));
        }
        await page.waitForFunction(
          `Number(${rowCell(6)}) >= ${before + 60} && Number(${rowCell(2)}) > 0`,
          { timeout: 15_000 },
        );
        assert.ok(Number(await cellOf(3)) > 0, 'a mean latency is shown');
        assert.equal(await textOf('error'), '');
        const shot = process.env.BATON_DASHBOARD_SCREENSHOT;
        if (shot !== undefined) await page.screenshot({ path: shot, fullPage: true });
      } finally {
        await browser?.close();
        spawnSync('rm', ['-rf', dir]);
      }
    },
  );

  it("prints a daemon's JSON log for a person, and names the daemons when asked for another", async () => {
    // A client that leaves mid-body is not a failure of the control plane's (it was logged as one).
    await new Promise<void>((resolve) => {
      const u = new URL(b.registration);
      const s = connect(Number(u.port), u.hostname, () => {
        s.write(
          'PUT /v1/functions/cut-off HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ima',
        );
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 200);
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    const log = await runBaton(['logs', '--daemon', 'control-plane', '--tail', '50'], env);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: /m);
    assert.match(log.stdout, /INFO: ready: registration http:\/\/127\.0\.0\.1:\d+/);
    assert.doesNotMatch(log.stdout, /^\{"level"/m, 'no raw JSON');
    assert.doesNotMatch(log.stdout, /request failed/);
    const wrong = await runBaton(['logs', '--daemon', 'nope'], env);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /there are: control-plane, data-plane, worker-1\n$/);
  });
});
