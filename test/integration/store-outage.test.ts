/**
 * The Redis store going away under a running cluster (`baton up --store
 * redis`): registrations and deletions are refused with a retryable 503 and
 * leave nothing half done, warm functions keep serving, a control plane that
 * restarts meanwhile waits for the store instead of dying, and everything
 * works again once Redis is back. A Redis without durable writes is refused,
 * never reconfigured.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  isAlive,
  runBaton,
  startRedis,
  startUp,
  waitForExit,
  type BatonUp,
  type TestRedis,
} from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { invoke, waitUntil, putFunction } from '../helpers/baton-client.js';
import type { SupervisedDaemon } from '../../src/shared/supervision.js';

describe('a control plane whose Redis goes away', () => {
  let redis: TestRedis;
  let b: BatonUp;
  before(async () => {
    redis = await startRedis();
    b = await startUp(['--runtime', 'simulated', '--store', 'redis', '--redis-url', redis.url]);
  });
  after(async () => {
    await b.stop();
    await redis.stop();
  });

  it('refuses changes with 503 BATON_ERR_STORE, keeps serving, and recovers', async () => {
    assert.equal((await putFunction(b.registration, 'kept', { image: 'empty' })).status, 201);
    assert.equal((await invoke(b.proxy, 'kept')).status, 200);

    await redis.kill();
    const t0 = Date.now();
    const del = await httpRequest(`${b.registration}/v1/functions/kept`, { method: 'DELETE' });
    assert.equal(del.status, 503, del.text);
    assert.equal((JSON.parse(del.text) as { code: string }).code, 'BATON_ERR_STORE');
    const reg = await putFunction(b.registration, 'new-fn', { image: 'empty' });
    assert.equal(reg.status, 503, reg.text);
    assert.equal((JSON.parse(reg.text) as { code: string }).code, 'BATON_ERR_STORE');
    assert.ok(Date.now() - t0 < 10_000, 'refused without a long wait');
    // Nothing half done: the function is neither deleted nor stuck being deleted.
    assert.equal((await invoke(b.proxy, 'kept')).status, 200);
    const health = await httpRequest(`${b.registration}/health`);
    assert.equal(health.status, 503);
    assert.match(health.text, /store cannot be used/);
    const status = await runBaton(['status', '--cp', b.registration]);
    assert.match(status.stdout, /store redis: DOWN/);

    // A control plane that restarts while Redis is down waits for it.
    const cp = await supervised(b.registration, 'control-plane');
    process.kill(cp.pid!, 'SIGKILL');
    assert.ok(await waitForExit(cp.pid!, 5000));
    await waitUntil('the control plane to be back, waiting for its store', async () => {
      const res = await httpRequest(`${b.registration}/health`).catch(() => undefined);
      return res?.status === 503 && /loading state/.test(res.text);
    });
    assert.equal((await invoke(b.proxy, 'kept')).status, 200, 'the data plane keeps serving');

    await redis.restart();
    await waitUntil(
      'the control plane to load its state',
      async () => (await httpRequest(`${b.registration}/health`)).status === 200,
      30_000,
    );
    assert.equal((await putFunction(b.registration, 'new-fn', { image: 'empty' })).status, 201);
    assert.equal((await invoke(b.proxy, 'new-fn')).status, 200);
    const again = await httpRequest(`${b.registration}/v1/functions/kept`, { method: 'DELETE' });
    assert.equal(again.status, 200, again.text);
    for (const d of await supervisedAll(b.registration))
      if (d.name !== 'control-plane') assert.equal(d.restarts, 0, `${d.name} was restarted`);
    assert.ok(isAlive(b.up.pid));
  });
});

describe('a Redis without durable writes', () => {
  it('is refused at start-up with how to fix it, and left unchanged', async () => {
    const redis = await startRedis(false);
    try {
      const r = await runBaton([
        'control-plane',
        '--store',
        'redis',
        '--redis-url',
        redis.url,
        '--rpc-port',
        '0',
        '--registration-port',
        '0',
      ]);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /^baton control-plane: --redis-url: redis at redis:\/\/127\.0\.0\.1:\d+ runs with appendonly no and appendfsync everysec; .*set both in redis\.conf/,
      );
      assert.equal(await redis.config('appendonly'), 'no', 'its configuration is left alone');
    } finally {
      await redis.stop();
    }
  });
});

async function supervisedAll(registration: string): Promise<SupervisedDaemon[]> {
  const s = JSON.parse((await httpRequest(`${registration}/v1/status`)).text) as {
    supervised?: SupervisedDaemon[];
  };
  return s.supervised ?? [];
}

async function supervised(registration: string, name: string): Promise<SupervisedDaemon> {
  const d = (await supervisedAll(registration)).find((x) => x.name === name);
  assert.ok(d !== undefined, `${name} is supervised`);
  return d;
}
