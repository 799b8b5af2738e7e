/**
 * Dirigent (eth-easl/dirigent, Go) built from a local checkout and run on
 * this machine for `bench:compare`, as its own configuration files describe
 * it: Redis (append-only, fsync on every write: registrations are as durable
 * as Baton's), a control plane with persistence on, one data plane, and
 * `scalability_test` workers, whose fake sandboxes take 40 ms to create and
 * are served at port 80 of the worker's address by Baton's built-in workload
 * server (the same server Baton's simulated runtime answers from).
 *
 * Its quirks are met here, not by changing it: the control plane edits
 * /etc/haproxy/haproxy.cfg (a copy of Dirigent's own is mounted there, in
 * the run's mount namespace only); port 80 needs root; a worker flushes the iptables NAT table when it stops,
 * so `bench:compare` runs everything inside a network namespace of its own.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dirigentForm, registerMany } from '../../src/loadgen/dirigent-client.js';
import { H2cClient } from '../../src/loadgen/h2c-client.js';
import { addPidByRole } from './bench.js';

export const DIRIGENT_PORTS = {
  rpc: 9090,
  registration: 9091,
  proxy: 8080,
  dpRpc: 8081,
  redis: 6390,
};
const WORKER_PORT_BASE = 10010;
const WORKER_SETTLE_MS = 3000;
const WORKLOAD_MAIN = fileURLToPath(new URL('./workload-server-main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Where `go` is: on the PATH, else Go's default install. */
export function goBinary(): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/local/go/bin'])
    if (dir !== '' && existsSync(join(dir, 'go'))) return join(dir, 'go');
  throw new Error('go not found (on the PATH or in /usr/local/go/bin): Dirigent is built with it');
}

/** Builds Dirigent's three daemons from `checkout` into `outDir`; returns `outDir`. */
export function buildDirigent(checkout: string, outDir: string): string {
  if (!existsSync(join(checkout, 'cmd', 'master_node')))
    throw new Error(`${checkout} is not a checkout of eth-easl/dirigent (no cmd/master_node)`);
  mkdirSync(outDir, { recursive: true });
  execFileSync(
    goBinary(),
    ['build', '-o', `${outDir}/`, './cmd/master_node', './cmd/data_plane', './cmd/worker_node'],
    { cwd: checkout, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  return outDir;
}

export interface RunningDirigent {
  registration: string;
  proxy: string;
  /** Each daemon's process id, by role (workers summed as `workers`). */
  pids: Map<string, number[]>;
  stop(): Promise<void>;
}

/** Starts Redis, Dirigent's control plane, data plane and `workers` fake workers; resolves once a function answers. */
export async function startDirigent(
  bin: string,
  workers: number,
  dir: string,
): Promise<RunningDirigent> {
  mkdirSync(dir, { recursive: true });
  const children: ChildProcess[] = [];
  const pids = new Map<string, number[]>();
  const run = (role: string, file: string, args: string[], cwd = dir) => {
    const log = openSync(join(dir, `${role}.log`), 'a');
    const child = spawn(file, args, { cwd, stdio: ['ignore', log, log] });
    children.push(child);
    addPidByRole(pids, role, child.pid!);
    return child;
  };
  const stop = async () => {
    for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  };
  try {
    const p = DIRIGENT_PORTS;
    run('redis', 'redis-server', [
      '--port',
      String(p.redis),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ]);
    await waitForPort(p.redis);
    run('workload', process.execPath, ['--import', 'tsx', WORKLOAD_MAIN, '127.0.0.1', '80'], REPO);
    await waitForPort(80);
    const redis = `redis:\n  address: "127.0.0.1:${p.redis}"\n  dockerAddress: "127.0.0.1:${p.redis}"\n  password: ""\n  db: 0\n  fullPersistence: true\n`;
    writeFileSync(
      join(dir, 'master.yaml'),
      `port: "${p.rpc}"\nreplicas: ""\nregistrationServer: "127.0.0.1:${p.registration}"\nregistrationServerReplicas: ""\nverbosity: "info"\ntraceOutputFolder: "${dir}/data"\nplacementPolicy: "random"\npersistence: true\nreconstruct: false\nloadBalancerAddress: ""\nremoveWorkerNode: false\nremoveDataplane: false\nprecreateSnapshots: false\nprofiler:\n  enable: false\n  mutex: false\n${redis}endpointPersistence: false\n`,
    );
    run('control-plane', join(bin, 'master_node'), ['--config', join(dir, 'master.yaml')]);
    await waitForPort(p.registration);
    writeFileSync(
      join(dir, 'dp.yaml'),
      `dataPlaneIp: "127.0.0.1"\ncontrolPlaneAddress: "127.0.0.1:${p.rpc}"\nportProxy: "${p.proxy}"\nportGRPC: "${p.dpRpc}"\nportProxyRead: "8082"\nverbosity: "info"\ntraceOutputFolder: "${dir}/data"\nloadBalancingPolicy: "random"\nasync: false\npersistRequests: false\nnumberRetries: 3\n${redis}`,
    );
    run('data-plane', join(bin, 'data_plane'), ['--config', join(dir, 'dp.yaml')]);
    await waitForPort(p.proxy);
    for (let i = 0; i < workers; i++) {
      const file = join(dir, `worker-${i}.yaml`);
      writeFileSync(
        file,
        `workerNodeIp: "127.0.0.1"\ncontrolPlaneAddress: "127.0.0.1:${p.rpc}"\nport: ${WORKER_PORT_BASE + i}\nverbosity: "info"\ncriType: "scalability_test"\ncriPath: "/run/containerd/containerd.sock"\ncniConfigPath: "configs/cni.conf"\nprefetchImage: false\n`,
      );
      run(`worker-${i}`, join(bin, 'worker_node'), ['--config', file]);
    }
    for (let i = 0; i < workers; i++) await waitForPort(WORKER_PORT_BASE + i);
    // Its control plane connects to a worker lazily, and crashes (nil pointer
    // in WorkerNode.CreateSandbox) when a sandbox is placed on a worker it has
    // not connected to yet: a registration must not race the workers' own.
    await new Promise((r) => setTimeout(r, WORKER_SETTLE_MS));
    const registration = `http://127.0.0.1:${p.registration}`;
    const proxy = `http://127.0.0.1:${p.proxy}`;
    await answers(registration, proxy);
    return { registration, proxy, pids, stop };
  } catch (err) {
    await stop();
    const logs = readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map(
        (f) => `--- ${f}\n${readFileSync(join(dir, f), 'utf8').split('\n').slice(-8).join('\n')}`,
      );
    throw new Error(`Dirigent did not start: ${String(err)}\n${logs.join('\n')}`, { cause: err });
  }
}

/**
 * Dirigent's control plane edits /etc/haproxy/haproxy.cfg, which must hold
 * its backends (its setup script copies configs/haproxy.cfg there). Here a
 * copy is bind-mounted over /etc/haproxy in this process's own mount
 * namespace (`ip netns exec` made one): the machine's file is not touched.
 */
export function mountDirigentHaproxyCfg(checkout: string, dir: string): void {
  const own = join(dir, 'haproxy');
  mkdirSync(own, { recursive: true });
  copyFileSync(join(checkout, 'configs', 'haproxy.cfg'), join(own, 'haproxy.cfg'));
  mkdirSync('/etc/haproxy', { recursive: true });
  execFileSync('mount', ['--bind', own, '/etc/haproxy']);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (30 s at most). */
export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end)
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Registers a probe function and invokes it until it answers 200 (workers registered, data plane told). */
async function answers(registration: string, proxy: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await registerMany(registration, [dirigentForm('compare-probe', 'empty')], 1);
      break;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  const client = new H2cClient(proxy, 1);
  try {
    for (;;) {
      const r = await client.request('compare-probe', { workload: 'empty' });
      if (r.status === 200) return;
      if (Date.now() > end)
        throw new Error(`the probe function answered ${r.status} ${r.error ?? ''} until the end`);
      await new Promise((r2) => setTimeout(r2, 300));
    }
  } finally {
    await client.close();
  }
}
