/**
 * `baton up` as a supervisor: a daemon that keeps dying is restarted with
 * back-off for as long as it does, the healthy daemons are never stopped for
 * it, and `baton status` shows the restarts.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { isAlive, runBaton, startUp, waitForExit, type BatonUp } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { waitUntil } from '../helpers/baton-client.js';
import type { SupervisedDaemon } from '../../src/shared/supervision.js';
import { restartDelayMs } from '../../src/cli/up.js';

async function supervised(registration: string): Promise<SupervisedDaemon[]> {
  const s = JSON.parse((await httpRequest(`${registration}/v1/status`)).text) as {
    supervised?: SupervisedDaemon[];
  };
  return s.supervised ?? [];
}

describe('baton up supervises', () => {
  let b: BatonUp;
  before(async () => {
    b = await startUp(['--runtime', 'simulated']);
  });
  after(() => b.stop());

  it('backs off 0.5 s, doubling up to 30 s', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 6, 7, 20].map(restartDelayMs),
      [500, 1000, 2000, 4000, 16_000, 30_000, 30_000],
    );
  });

  it('restarts a daemon that keeps dying, for as long as it does, and keeps the others running', async () => {
    const others = (await supervised(b.registration))
      .filter((d) => d.name !== 'data-plane')
      .map((d) => d.pid!);
    assert.equal(others.length, 2, 'control plane and worker are reported');
    // More deaths in a row than the old limit (5 a minute), which stopped the whole cluster.
    for (let death = 1; death <= 6; death++) {
      let dp: SupervisedDaemon | undefined;
      await waitUntil(
        `the data plane to run (death ${death})`,
        async () => {
          dp = (await supervised(b.registration)).find((d) => d.name === 'data-plane');
          return dp?.state === 'running' && dp.pid !== null && isAlive(dp.pid);
        },
        30_000,
      );
      assert.equal(dp!.restarts, death - 1);
      process.kill(dp!.pid!, 'SIGKILL');
      assert.ok(await waitForExit(dp!.pid!, 5000));
    }
    await waitUntil('the sixth death to be reported', async () => {
      const dp = (await supervised(b.registration)).find((d) => d.name === 'data-plane');
      return dp?.restarts === 6;
    });
    assert.ok(isAlive(b.up.pid), 'baton up is still running');
    for (const pid of others) assert.ok(isAlive(pid), `daemon ${pid} was left alone`);
    const status = await runBaton(['status', '--cp', b.registration]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /daemons \(baton up\)/);
    assert.match(status.stdout, /data-plane\s+(running|restarting)\s+\S+\s+6\s+SIGKILL/);
    assert.match(b.up.output(), /data-plane exited \(SIGKILL\); restart 6 in 16000 ms/);
  });
});
