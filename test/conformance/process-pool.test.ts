/**
 * The process runtime's pre-warmed pool: started Node hosts become sandboxes
 * of built-in images and JS/TS modules on assignment, and the pool refills.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { imageDir } from '../helpers/processes.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/shared/logger.js';
import { PortPool } from '../../src/worker/ports.js';
import { ProcessRuntime } from '../../src/worker/runtimes/process/process-runtime.js';
import { spec } from '../helpers/specs.js';
import { httpRequest } from '../helpers/http.js';
import { until as waitUntil } from '../helpers/until.js';

const HELLO_TS = fileURLToPath(new URL('../../examples/hello-ts', import.meta.url));

const until = (what: string, cond: () => boolean, timeoutMs = 20_000) =>
  waitUntil(what, cond, timeoutMs, 20);

describe('process runtime pre-warmed pool', () => {
  let rt: ProcessRuntime;
  let isolated = false;
  before(async () => {
    rt = new ProcessRuntime({
      host: '127.0.0.1',
      ports: new PortPool(30200, 30299),
      logger: silentLogger(),
      stopGraceMs: 500,
      prewarm: 2,
    });
    const report = await rt.checkHost();
    assert.match(report.notes.join('\n'), /pre-warmed pool: 2/);
    isolated = report.notes.some((n) => n.includes('namespaces'));
    await until('two warm hosts', () => rt.warmHosts === 2);
  });
  after(() => rt.close());

  it('turns a warm host into a sandbox of a built-in image and refills the pool', async () => {
    const sb = await rt.create('pool-hello', spec({ name: 'pool-hello', image: 'hello' }));
    assert.equal(rt.isPrewarmed(sb.id), true);
    const res = await httpRequest(`http://${sb.host}:${sb.port}/`);
    assert.equal(res.status, 200);
    assert.match(res.text, /Hello from pool-hello \(sandbox pool-hello/);
    await until('the pool to refill', () => rt.warmHosts === 2);
    await rt.delete(sb.id);
  });

  it('serves a TypeScript module from a warm host where the host can read it', async () => {
    const sb = await rt.create('pool-ts', spec({ name: 'pool-ts', image: HELLO_TS }));
    // The example lives in Baton's own directory, which every pool host has, wherever it is.
    assert.equal(rt.isPrewarmed(sb.id), true);
    const res = await httpRequest(`http://${sb.host}:${sb.port}/?name=Ada`);
    assert.equal(res.status, 200);
    assert.match(res.text, /Hello, Ada!/);
    await rt.delete(sb.id);
  });

  it('starts a module below /tmp cold under bubblewrap (a warm host cannot see it)', async () => {
    const dir = imageDir('baton-pool-mod-');
    try {
      writeFileSync(join(dir, 'index.mjs'), 'export default () => new Response("from tmp");\n');
      await until('two warm hosts', () => rt.warmHosts === 2);
      const sb = await rt.create('pool-tmp', spec({ name: 'pool-tmp', image: dir }));
      assert.equal(rt.isPrewarmed(sb.id), !(isolated && dir.startsWith('/tmp/')));
      const res = await httpRequest(`http://${sb.host}:${sb.port}/`);
      assert.equal(res.text, 'from tmp');
      await rt.delete(sb.id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts cold when every warm host is taken', async () => {
    await until('two warm hosts', () => rt.warmHosts === 2);
    const created = await Promise.all(
      ['a', 'b', 'c'].map((x) =>
        rt.create(`pool-many-${x}`, spec({ name: `pool-many-${x}`, image: 'empty' })),
      ),
    );
    assert.equal(created.filter((s) => rt.isPrewarmed(s.id)).length, 2);
    for (const sb of created) {
      const res = await httpRequest(`http://${sb.host}:${sb.port}/`);
      assert.match(res.text, /OK - EMPTY/);
    }
    await Promise.all(created.map((s) => rt.delete(s.id)));
  });
});
