/**
 * `baton up` as a supervisor: a daemon that keeps dying is restarted with
 * back-off for as long as it does, the healthy daemons are never stopped for
 * it, and `baton status` shows the restarts. Every daemon runs with the
 * Node.js flags `--node-flags` gives.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('baton up --node-flags', () => {
  it('runs every daemon with the flags given, e.g. profiles written as they stop', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-node-flags-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const b = await startUp([
      '--runtime',
      'simulated',
      `--node-flags=--cpu-prof --cpu-prof-dir=${dir}`,
    ]);
    let daemons: number[];
    try {
      daemons = (await supervised(b.registration)).map((d) => d.pid!);
      assert.equal(daemons.length, 3, 'control plane, data plane and worker are reported');
      for (const pid of daemons) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        assert.ok(argv.includes('--cpu-prof'), `process ${pid} (${argv.join(' ')})`);
      }
    } finally {
      await b.stop();
    }
    // Node names a profile CPU.date.time.PID.thread.seq.cpuprofile.
    const written = readdirSync(dir).map((f) => Number(f.split('.')[3]));
    for (const pid of daemons)
      assert.ok(written.includes(pid), `no profile from ${pid}: ${written.join(' ')}`);
  });

  it('refuses a word that is not a flag, before starting anything', async () => {
    const r = await runBaton(['up', '--node-flags=--cpu-prof cpu-prof-dir']);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'baton up: --node-flags: "cpu-prof-dir" is not a Node.js flag (they start with --)\n',
    );
  });
});
