/**
 * The three daemons started separately, as in a cluster: a worker's failure
 * is detected by its dropped connection (its process died) or its missed
 * heartbeats (it hangs), and its sandboxes are replaced elsewhere; the
 * control plane restarts without disturbing warm functions; bad options fail
 * at start-up with one line naming the option.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import {
  runBaton,
  startBaton,
  tempDir,
  waitForExit,
  isAlive,
  pidsListeningOn,
  type Started,
} from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { getFunction, invoke, waitUntil, putFunction } from '../helpers/baton-client.js';
import { removeLocalFence } from '../../src/worker/runtimes/process/isolation/local-fence.js';
import { SANDBOX_UID_BASE } from '../../src/worker/runtimes/process/isolation/users.js';

describe('separate daemons', () => {
  const dir = tempDir('baton-daemons-');
  let cp: Started;
  let dp: Started;
  const workers: Started[] = [];
  let registration = '';
  let proxy = '';
  let cpRpc = '';
  const cpArgs = (httpPort: number, rpcPort: number) => [
    'control-plane',
    '--registration-port',
    String(httpPort),
    '--rpc-port',
    String(rpcPort),
    '--data-dir',
    dir,
    '--worker-timeout-ms',
    '2000',
    '--heartbeat-interval-ms',
    '300',
    '--log-level',
    'warn',
  ];

  before(async () => {
    cp = await startBaton(cpArgs(0, 0));
    const a = cp.ready.addresses as { registration: string; rpcPort: number };
    registration = a.registration;
    cpRpc = `127.0.0.1:${a.rpcPort}`;
    dp = await startBaton([
      'data-plane',
      '--proxy-port',
      '0',
      '--rpc-port',
      '0',
      '--metrics-port',
      '0',
      '--cp-address',
      cpRpc,
      '--log-level',
      'warn',
    ]);
    proxy = String((dp.ready.addresses as { proxy: string }).proxy);
    for (const name of ['w-a', 'w-b', 'w-c']) {
      workers.push(
        await startBaton([
          'worker',
          '--rpc-port',
          '0',
          '--metrics-port',
          '0',
          '--cp-address',
          cpRpc,
          '--name',
          name,
          '--port-range',
          { 'w-a': '31200-31299', 'w-b': '31300-31399', 'w-c': '31400-31499' }[name]!, // below the ephemeral range
          '--log-level',
          'warn',
        ]),
      );
    }
    await waitUntil('workers and data plane registered', async () => {
      const s = JSON.parse((await httpRequest(`${registration}/v1/status`)).text) as {
        workers: unknown[];
        dataPlanes: unknown[];
      };
      return s.workers.length === 3 && s.dataPlanes.length === 1;
    });
  });
  after(async () => {
    for (const w of workers) await w.stop();
    await dp.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
    // A worker killed with SIGKILL could not remove its sandboxes' network fence.
    for (const first of [31200, 31300, 31400])
      removeLocalFence(SANDBOX_UID_BASE + first, SANDBOX_UID_BASE + first + 99);
  });

  it('replaces the sandboxes of a worker whose process dies, noticed by its connection', async () => {
    const put = await putFunction(registration, 'survivor', { image: 'hello' });
    assert.equal(put.status, 201);
    const first = await invoke(proxy, 'survivor');
    assert.equal(first.status, 200);
    const info = await getFunction(registration, 'survivor');
    const sandboxPidList = pidsListeningOn(
      Number((info!.sandboxList[0]!.address ?? '').split(':').at(-1)),
    );
    assert.ok(sandboxPidList.length > 0);
    const hostWorker = info!.sandboxList[0]!.worker;
    const victim = workers.find((w) => (w.ready.addresses as { id: string }).id === hostWorker)!;
    process.kill(victim.pid, 'SIGKILL');
    assert.ok(await waitForExit(victim.pid, 5000));
    // The sandbox notices its worker is gone and exits: nothing is orphaned.
    for (const pid of sandboxPidList)
      assert.ok(await waitForExit(pid, 5000), `sandbox process ${pid} outlived its worker`);
    await waitUntil(
      'the sandbox to be replaced on the other worker',
      async () => {
        const f = await getFunction(registration, 'survivor');
        return f?.sandboxes === 1 && f.sandboxList[0]?.worker !== hostWorker;
      },
      15_000,
    );
    const again = await invoke(proxy, 'survivor');
    assert.equal(again.status, 200);
    const s = JSON.parse((await httpRequest(`${registration}/v1/status`)).text) as {
      workers: Array<{ id: string }>;
    };
    assert.deepEqual(
      s.workers.map((w) => w.id).sort(),
      workers
        .filter((w) => w !== victim)
        .map((w) => String(w.ready.addresses.id))
        .sort(),
    );
    // Its dropped connection and refused port told, not the heartbeat time-out.
    assert.match(
      cp.output(),
      new RegExp(`"worker":"${hostWorker}".*its RPC port refuses connections`),
    );
    workers.splice(workers.indexOf(victim), 1);
  });

  it('replaces the sandboxes of a worker that hangs, noticed by its missed heartbeats', async () => {
    assert.equal((await putFunction(registration, 'outlasts', { image: 'hello' })).status, 201);
    assert.equal((await invoke(proxy, 'outlasts')).status, 200);
    const hostWorker = (await getFunction(registration, 'outlasts'))!.sandboxList[0]!.worker;
    const hung = workers.find((w) => (w.ready.addresses as { id: string }).id === hostWorker)!;
    process.kill(hung.pid, 'SIGSTOP');
    try {
      await waitUntil(
        'the sandbox to be replaced on the other worker',
        async () => {
          const f = await getFunction(registration, 'outlasts');
          return f?.sandboxes === 1 && f.sandboxList[0]?.worker !== hostWorker;
        },
        15_000,
      );
      assert.equal((await invoke(proxy, 'outlasts')).status, 200);
      assert.match(cp.output(), new RegExp(`"worker":"${hostWorker}".*no heartbeat for`));
    } finally {
      process.kill(hung.pid, 'SIGCONT');
    }
    // Awake again, it registers again.
    await waitUntil('the hung worker to be back', async () => {
      const st = JSON.parse((await httpRequest(`${registration}/v1/status`)).text) as {
        workers: Array<{ id: string }>;
      };
      return st.workers.some((w) => w.id === hostWorker);
    });
  });

  it('keeps warm functions serving while the control plane restarts, then adopts their sandboxes', async () => {
    const put = await putFunction(registration, 'steady', { image: 'hello' });
    assert.equal(put.status, 201);
    assert.equal((await invoke(proxy, 'steady')).status, 200);
    const before = await getFunction(registration, 'steady');
    const { httpPort, rpcPort } = cp.ready.addresses as { httpPort: number; rpcPort: number };
    await cp.stop();
    // Warm invocations do not need the control plane.
    for (let i = 0; i < 5; i++) assert.equal((await invoke(proxy, 'steady')).status, 200);
    cp = await startBaton(cpArgs(httpPort, rpcPort));
    await waitUntil(
      'the sandbox to be adopted',
      async () => (await getFunction(registration, 'steady'))?.sandboxes === 1,
      15_000,
    );
    const after = await getFunction(registration, 'steady');
    assert.equal(
      after?.sandboxList[0]?.id,
      before?.sandboxList[0]?.id,
      'the same sandbox is reused',
    );
    assert.equal((await invoke(proxy, 'steady')).status, 200);
  });
});

describe('start-up errors', () => {
  const cases: Array<[string[], number, RegExp]> = [
    [
      ['control-plane', '--placement', 'best-fit'],
      2,
      /^baton control-plane: --placement: unknown policy "best-fit" \(expected one of least-allocated, round-robin, random\)\n$/,
    ],
    [
      ['control-plane', '--registration-port', '99999'],
      2,
      /^baton control-plane: --registration-port: /,
    ],
    [['control-plane', '--store', 'mongo'], 2, /^baton control-plane: --store: /],
    [
      // Beyond loopback the registration API asks a token; nothing is bound before that is known.
      ['control-plane', '--host', '10.255.255.1'],
      2,
      /^baton control-plane: --api-token-file: the registration API would listen on 10\.255\.255\.1, beyond loopback, with no token/,
    ],
    [
      ['control-plane', '--store', 'etcd', '--etcd-endpoints', 'etcd:2379'],
      2,
      /^baton control-plane: --etcd-endpoints: must be http:\/\/HOST:PORT/,
    ],
    [
      ['up', '--control-planes', '2', '--store', 'redis'],
      2,
      /^baton up: --control-planes: replicas elect their leader on etcd .* use --store etcd\n$/,
    ],
    [
      ['data-plane', '--cp-address', '127.0.0.1:9090,nowhere'],
      2,
      /^baton data-plane: --cp-address: must be HOST:PORT, or several separated by commas\n$/,
    ],
    [
      ['worker', '--runtime', 'docker', '--rpc-port', '0'],
      2,
      /^baton worker: --runtime: unknown runtime "docker" \(expected one of process, isolate, isolate-per-request, containerd, simulated\)\n$/,
    ],
    [
      ['worker', '--count', '3', '--rpc-port', '0'],
      2,
      /^baton worker: --count: 3 workers in one process is only for --runtime simulated\n$/,
    ],
    [
      ['worker', '--runtime', 'simulated', '--count', '2', '--simulated-port', '9999'],
      2,
      /^baton worker: --simulated-port: each of the --count workers needs its own workload server/,
    ],
    [
      ['worker', '--runtime', 'isolate', '--isolate-idle-ms', '0'],
      2,
      /^baton worker: --isolate-idle-ms: /,
    ],
    [
      ['worker', '--port-range', '30000-20000'],
      2,
      /^baton worker: --port-range: 30000-20000 is not a valid port range\n$/,
    ],
    [
      ['data-plane', '--load-balancer', 'fastest'],
      2,
      /^baton data-plane: --load-balancer: unknown policy "fastest"/,
    ],
    [
      ['data-plane', '--cp-address', 'nowhere'],
      2,
      /^baton data-plane: --cp-address: must be HOST:PORT, or several separated by commas\n$/,
    ],
    [['data-plane', '--bogus'], 2, /^baton data-plane: unknown option '--bogus' \(see --help\)\n$/],
    [
      ['data-plane', '--proxy-prot', '0'],
      2,
      /^baton data-plane: unknown option '--proxy-prot'; did you mean --proxy-port\? \(see --help\)\n$/,
    ],
    [['up', '--workers', '0'], 2, /^baton up: --workers: /],
    [['nonsense'], 2, /^baton: unknown command "nonsense"/],
  ];
  for (const [args, code, stderr] of cases) {
    it(`baton ${args.join(' ')} -> exit ${code}`, async () => {
      const r = await runBaton(args);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, stderr);
    });
  }

  it('names the port when it is taken', async () => {
    const first = await startBaton([
      'data-plane',
      '--proxy-port',
      '0',
      '--rpc-port',
      '0',
      '--metrics-port',
      '0',
      '--cp-address',
      '127.0.0.1:1',
      '--log-level',
      'silent',
    ]);
    try {
      const port = String((first.ready.addresses as { proxyPort: number }).proxyPort);
      const r = await runBaton([
        'data-plane',
        '--proxy-port',
        port,
        '--rpc-port',
        '0',
        '--cp-address',
        '127.0.0.1:1',
        '--log-level',
        'silent',
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`EADDRINUSE.*${port}`));
    } finally {
      await first.stop();
      assert.equal(isAlive(first.pid), false);
    }
  });
});
