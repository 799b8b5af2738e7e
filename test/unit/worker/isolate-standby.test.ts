/**
 * Standby sandboxes of the pooled isolate runtime (the control plane's floor):
 * created without an isolate, the first request makes one (and says `cold`),
 * later requests share it, it is given up after the idle time, and a limit
 * kill leaves the sandbox serving with a new isolate. Real isolates.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../src/shared/logger.js';
import { SandboxStartError } from '../../../src/shared/errors.js';
import { PortPool } from '../../../src/worker/ports.js';
import { PooledIsolateRuntime } from '../../../src/worker/runtimes/isolate/pooled-isolate-runtime.js';
import type { CreatedSandbox } from '../../../src/worker/runtimes/sandbox-runtime.js';
import { spec } from '../../helpers/specs.js';
import { isolatesUnsupported } from '../../helpers/isolates.js';
import { httpRequest } from '../../helpers/http.js';

/** Counts the requests its isolate served; `/wait` answers after 300 ms, `/spin` never ends. */
const COUNTER = `let served = 0;
export default async (request) => {
  const path = new URL(request.url).pathname;
  if (path === '/spin') for (;;) {}
  served++;
  if (path === '/wait') await new Promise((resolve) => setTimeout(resolve, 300));
  return new Response(String(served), { headers: { 'x-baton-start': 'warm' } });
};
`;

const IDLE_MS = 400;

describe('isolate runtime: standby sandboxes', { skip: isolatesUnsupported }, () => {
  let rt: PooledIsolateRuntime;
  let dir: string;
  let counter: string;
  let seq = 0;
  const standby = (image: string): Promise<CreatedSandbox> =>
    rt.create(`sb-standby-${++seq}`, spec({ name: `standby-${seq}`, image }), undefined, {
      standby: true,
    });
  const get = (sb: CreatedSandbox, path = '/') =>
    httpRequest(`http://${sb.host}:${sb.port}${path}`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-standby-'));
    counter = join(dir, 'counter.mjs');
    writeFileSync(counter, COUNTER);
    rt = new PooledIsolateRuntime({
      host: '127.0.0.1',
      ports: new PortPool(31600, 31649),
      logger: silentLogger(),
      cpuLimitMs: 300,
      idleMs: IDLE_MS,
    });
    await rt.checkHost();
  });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes its isolate on the first request, keeps it while used, gives it up when idle', async () => {
    const sb = await standby(counter);
    const first = await get(sb);
    assert.deepEqual([first.status, first.text], [200, '1']);
    assert.equal(first.headers['x-baton-start'], 'cold', 'an isolate was made for it');
    const second = await get(sb);
    assert.equal(second.text, '2', 'the same isolate served again');
    assert.equal(second.headers['x-baton-start'], undefined, "the handler's own label is dropped");
    // Busy past the idle time: not given up while a request runs.
    const slow = get(sb, '/wait');
    await sleep(IDLE_MS / 2);
    assert.equal((await slow).text, '3');
    await sleep(IDLE_MS * 2.5);
    const later = await get(sb);
    assert.deepEqual([later.text, later.headers['x-baton-start']], ['1', 'cold']);
    assert.deepEqual(
      rt.list().map((s) => s.id),
      [sb.id],
      'the sandbox itself stays',
    );
    await rt.delete(sb.id);
  });

  it('answers requests that find no isolate each from one of their own; the first made stays', async () => {
    const sb = await standby(counter);
    const together = await Promise.all([get(sb, '/wait'), get(sb, '/wait'), get(sb, '/wait')]);
    for (const r of together) {
      assert.deepEqual([r.status, r.text, r.headers['x-baton-start']], [200, '1', 'cold']);
    }
    const next = await get(sb);
    assert.deepEqual([next.text, next.headers['x-baton-start']], ['2', undefined]);
    await rt.delete(sb.id);
  });

  it('after a limit kill it stays, unreported, and the next request makes a new isolate', async () => {
    const exits: string[] = [];
    rt.onExit((id) => exits.push(id));
    const sb = await standby(counter);
    assert.equal((await get(sb)).text, '1');
    const spun = await get(sb, '/spin');
    assert.equal(spun.status, 500);
    assert.match(spun.text, /CPU time limit of 300 ms/);
    const again = await get(sb);
    assert.deepEqual(
      [again.status, again.text, again.headers['x-baton-start']],
      [200, '1', 'cold'],
    );
    assert.deepEqual(exits, []);
    await rt.delete(sb.id);
  });

  it('still checks at creation that the handler loads', async () => {
    const broken = join(dir, 'broken.mjs');
    writeFileSync(broken, 'throw new Error("boom at import");\n');
    await assert.rejects(standby(broken), (err: Error) => {
      assert.ok(err instanceof SandboxStartError);
      assert.match(err.message, /boom at import/);
      return true;
    });
  });
});
