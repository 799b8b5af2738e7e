/**
 * Several data planes behind HAProxy (`baton up --data-planes 2`, `baton
 * front`): one port for HTTP/1.1 and h2c, the registration reply names the
 * front, and a SIGKILLed data plane costs only the requests it held.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { HAPROXY_MISSING, startUp, type BatonUp } from '../helpers/processes.js';
import { invoke, invokeH2, putFunction, waitUntil } from '../helpers/baton-client.js';

describe('data planes behind HAProxy', { skip: HAPROXY_MISSING }, () => {
  let cluster: BatonUp;
  before(async () => {
    cluster = await startUp(['--data-planes', '2', '--runtime', 'simulated', '--workers', '2']);
  });
  after(() => cluster.stop());

  it('serves HTTP/1.1 and h2c on one port, and registration names the front', async () => {
    const put = await putFunction(cluster.registration, 'fronted', {
      image: 'empty',
      minScale: 2,
      concurrency: 8,
    });
    assert.equal(put.status, 201);
    assert.equal((JSON.parse(put.text) as { invoke: string }).invoke, new URL(cluster.proxy).host);
    assert.equal((await invoke(cluster.proxy, 'fronted')).status, 200);
    assert.equal((await invokeH2(cluster.proxy, 'fronted')).status, 200);
  });

  it('loses only the requests a SIGKILLed data plane held', async () => {
    const status = (await (await fetch(`${cluster.registration}/v1/status`)).json()) as {
      supervised: Array<{ name: string; pid: number | null }>;
      dataPlanes: unknown[];
    };
    assert.equal(status.dataPlanes.length, 2);
    const victim = status.supervised.find((d) => d.name === 'data-plane-1')!.pid!;
    const agent = new Agent({ connections: 8, keepAliveTimeout: 60_000 });
    const results: Array<{ sentAt: number; ok: boolean }> = [];
    const t0 = Date.now();
    const loop = async () => {
      // Bounded in count and time.
      for (let i = 0; i < 2000 && Date.now() - t0 < 4000; i++) {
        const sentAt = Date.now();
        try {
          const r = await request(`${cluster.proxy}/`, {
            headers: { host: 'fronted' },
            dispatcher: agent,
            headersTimeout: 3000,
            bodyTimeout: 3000,
          });
          await r.body.text();
          results.push({ sentAt, ok: r.statusCode === 200 });
        } catch {
          results.push({ sentAt, ok: false });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    await Promise.all(loops);
    await agent.close();
    const after = results.filter((r) => r.sentAt >= killedAt + 1000);
    assert.ok(after.length > 0, 'requests were sent after the kill');
    assert.deepEqual(
      after.filter((r) => !r.ok),
      [],
      'no request sent a second after the kill failed',
    );
    // baton up brings it back, and HAProxy takes it again.
    await waitUntil('the data plane to be back', async () => {
      const s = (await (await fetch(`${cluster.registration}/v1/status`)).json()) as {
        dataPlanes: unknown[];
      };
      return s.dataPlanes.length === 2;
    });
  });
});
