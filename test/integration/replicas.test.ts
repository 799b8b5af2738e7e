/**
 * Control-plane replicas (`baton up --control-planes 3`, a local etcd):
 * who leads is visible, a follower forwards registrations, a SIGKILLed
 * leader is replaced with nothing lost or doubled and warm requests never
 * failing, and a paused leader that wakes up after it was replaced leaves
 * with nothing it tried taking effect (its store writes are fenced, see the
 * store conformance suite; its calls carry an old epoch, which workers and
 * data planes refuse).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ETCD_MISSING,
  HAPROXY_MISSING,
  isAlive,
  runBaton,
  startUp,
  type BatonUp,
} from '../helpers/processes.js';
import { getFunction, invoke, putFunction, waitUntil } from '../helpers/baton-client.js';
import { rawRpcCall } from '../helpers/raw-rpc.js';
import { EPOCH_HEADER } from '../../src/rpc/epoch.js';
import { CLUSTER_TOKEN_FILE, bearer } from '../../src/shared/secrets.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Replica {
  id: string;
  pid: number;
  registration: string;
  role: 'leader' | 'follower';
}

async function replicas(cp: string): Promise<Replica[]> {
  const res = await runBaton(['status', '--json', '--cp', cp]);
  assert.equal(res.code, 0, res.stderr);
  const status = JSON.parse(res.stdout) as { controlPlanes?: Replica[] };
  return status.controlPlanes ?? [];
}

/** The leader as `cp` sees it; undefined when it cannot tell within a second (its leader is paused). */
async function leaderVia(cp: string): Promise<Replica | undefined> {
  try {
    const res = await fetch(`${cp}/v1/status`, { signal: AbortSignal.timeout(1000) });
    const status = (await res.json()) as { controlPlanes?: Replica[] };
    return status.controlPlanes?.find((r) => r.role === 'leader');
  } catch {
    return undefined;
  }
}

describe(
  'control-plane replicas (and two data planes behind HAProxy)',
  {
    skip: ETCD_MISSING || HAPROXY_MISSING,
  },
  () => {
    let cluster: BatonUp;
    before(async () => {
      cluster = await startUp([
        '--control-planes',
        '3',
        '--data-planes',
        '2',
        '--runtime',
        'simulated',
        '--workers',
        '2',
        '--lease-ttl-s',
        '1',
        '--heartbeat-interval-ms',
        '300',
        '--worker-timeout-ms',
        '1500',
      ]);
    });
    after(() => cluster.stop());

    it('names the leader in baton status --json, and a follower forwards registrations to it', async () => {
      const all = await replicas(cluster.registration);
      assert.deepEqual(
        all.map((r) => [r.id, r.role]),
        [
          ['control-plane-1', 'leader'],
          ['control-plane-2', 'follower'],
          ['control-plane-3', 'follower'],
        ],
      );
      for (const r of all) assert.ok(isAlive(r.pid), `${r.id}'s pid is a live process`);
      const follower = all[1]!.registration;
      assert.equal((await putFunction(follower, 'via-follower', { image: 'empty' })).status, 201);
      assert.equal((await getFunction(cluster.registration, 'via-follower'))?.spec.image, 'empty');
      assert.equal((await invoke(cluster.proxy, 'via-follower')).status, 200);
    });

    it('replaces a SIGKILLed leader: registrations and cold starts go on, nothing lost or doubled, warm requests never fail', async () => {
      assert.equal(
        (await putFunction(cluster.registration, 'steady', { image: 'empty', minScale: 2 })).status,
        201,
      );
      await waitUntil(
        'steady to have 2 sandboxes',
        async () => (await getFunction(cluster.registration, 'steady'))?.sandboxes === 2,
      );
      const before = await replicas(cluster.registration);
      const leader = before.find((r) => r.role === 'leader')!;
      const follower = before.find((r) => r.role === 'follower')!.registration;

      // Warm requests all along, bounded in count.
      let stop = false;
      const warm: number[] = [];
      const load = (async () => {
        for (let i = 0; i < 2000 && !stop; i++) {
          warm.push((await invoke(cluster.proxy, 'steady')).status);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();

      process.kill(leader.pid, 'SIGKILL');
      await waitUntil('a registration through a follower to succeed', async () =>
        putFunction(follower, 'after-failover', { image: 'empty' }).then(
          (r) => r.status === 201,
          () => false,
        ),
      );
      const cold = await invoke(cluster.proxy, 'after-failover');
      assert.equal(cold.status, 200, cold.text);
      stop = true;
      await load;

      const now = await leaderVia(follower);
      assert.ok(now !== undefined && now.id !== leader.id, 'another replica leads');
      assert.ok(warm.length > 0);
      assert.deepEqual(
        warm.filter((s) => s !== 200),
        [],
        'no warm request failed',
      );
      const steady = await getFunction(follower, 'steady');
      assert.equal(steady?.sandboxes, 2, 'the sandboxes were adopted, not doubled');
      const after = await getFunction(follower, 'after-failover');
      assert.equal(after?.sandboxes, 1);
      assert.ok(await getFunction(follower, 'via-follower'), 'no function lost');
      // baton up brings the killed replica back, as a follower.
      await waitUntil('the killed replica to be back', async () =>
        (await replicas(follower)).some((r) => r.id === leader.id && r.role === 'follower'),
      );
    });

    it('refuses the writes and calls of a paused leader that was replaced, which then leaves', async () => {
      const before = await replicas(cluster.registration);
      const leader = before.find((r) => r.role === 'leader')!;
      const follower = before.find((r) => r.role === 'follower')!.registration;
      process.kill(leader.pid, 'SIGSTOP');
      try {
        await waitUntil('another replica to lead', async () => {
          const now = await leaderVia(follower);
          return now !== undefined && now.id !== leader.id;
        });
        assert.equal((await putFunction(follower, 'during-pause', { image: 'empty' })).status, 201);
        // Past the worker time-out: woken up, the old leader sees every worker as silent.
        await new Promise((r) => setTimeout(r, 2000));
      } finally {
        process.kill(leader.pid, 'SIGCONT');
      }
      await waitUntil('the deposed leader to exit', () => Promise.resolve(!isAlive(leader.pid)));
      assert.match(cluster.up.output(), new RegExp(`${leader.id} exited \\(code 75\\)`));
      // Nothing it tried on waking (every worker and the data plane looked silent to it) took effect.
      const now = (await leaderVia(follower))!;
      const status = (await (await fetch(`${now.registration}/v1/status`)).json()) as {
        epoch: number;
        workers: Array<{ address: string }>;
        dataPlanes: Array<{ rpc: string }>;
      };
      assert.equal(status.dataPlanes.length, 2, 'both data planes still known');
      assert.equal(status.workers.length, 2, 'both workers still known');
      assert.equal((await getFunction(now.registration, 'steady'))?.sandboxes, 2);
      assert.equal((await invoke(cluster.proxy, 'steady')).status, 200);
      assert.equal((await invoke(cluster.proxy, 'during-pause')).status, 200);
      // Workers and data planes refuse a call that carries an older epoch than the leader's.
      const worker = status.workers[0]!.address;
      const dp = status.dataPlanes[0]!.rpc;
      const drain = { ids: [], timeoutMs: 0 };
      const token = readFileSync(join(cluster.dataDir, CLUSTER_TOKEN_FILE), 'utf8').trim();
      assert.equal(await rpc(worker, '/worker/listSandboxes', {}, status.epoch, token), 'ok');
      assert.equal(await rpc(dp, '/data-plane/drainSandboxes', drain, status.epoch, token), 'ok');
      for (const [address, path, body] of [
        [worker, '/worker/listSandboxes', {}],
        [dp, '/data-plane/drainSandboxes', drain],
      ] as const) {
        const stale = await rpc(address, path, body, status.epoch - 1, token);
        assert.equal(stale, 'BATON_ERR_STALE_LEADER', `${path} from an older epoch`);
      }
    });
  },
);

/** One internal RPC call, as a control plane of `epoch` would send it: 'ok' or its error code. */
function rpc(
  address: string,
  path: string,
  body: unknown,
  epoch: number,
  clusterToken: string,
): Promise<string> {
  return rawRpcCall(address, path, body, {
    [EPOCH_HEADER]: String(epoch),
    authorization: bearer(clusterToken),
  });
}
