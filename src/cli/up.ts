/**
 * `baton up`: one control plane (or several replicas, with an etcd), one
 * data plane (or several, behind HAProxy: `baton front`) and N workers on
 * this machine, each its own process, under a Supervisor (supervisor.ts): a
 * daemon that dies is restarted with back-off for as long as it dies, and
 * only Ctrl-C or SIGTERM stops the cluster. This file turns the options into
 * each daemon's arguments (up-options.ts: what it passes on as given) and
 * prints where to register and invoke.
 */
import {
  API_TOKEN_FILE,
  CLUSTER_TOKEN_FILE,
  ensureSecretFile,
  isLoopback,
  loadApiToken,
  loadClusterToken,
  loadTls,
} from '../shared/secrets.js';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidConfigError, errorMessage } from '../shared/errors.js';
import type { ReadyMessage } from '../shared/daemon.js';
import { compileSpecs, readFlags } from '../shared/options.js';
import { forwardArgs, type OptionValues } from '../shared/option-specs.js';
import { freePort } from '../shared/port-probe.js';
import { Supervisor } from './supervisor.js';
import { announce } from './up-announce.js';
import { groupPortRange, workerCapacity, workerGroups, type WorkerGroup } from './up-workers.js';
import { splitPortRange } from '../worker/ports.js';
import {
  CP_FORWARDED,
  DP_FORWARDED,
  MAX_SIMULATED_WORKERS,
  MAX_WORKERS,
  UP_OPTIONS,
  WORKER_FORWARDED,
  nodeFlags,
} from './up-options.js';

export { restartDelayMs } from './supervisor.js';
export { SIMULATED_WORKERS_PER_PROCESS } from './up-workers.js';

type UpOptions = OptionValues<typeof UP_OPTIONS>;

export async function runUp(argv: string[]): Promise<void> {
  const flags = readFlags(
    argv,
    UP_OPTIONS,
    'baton up [options]',
    'Run Baton on this machine: a control plane, a data plane and workers.',
  );
  if (flags === undefined) return;
  const o = compileSpecs(UP_OPTIONS, flags);
  if (o.runtime !== 'simulated' && o.workers > MAX_WORKERS)
    throw new InvalidConfigError(
      `--workers: at most ${MAX_WORKERS} with the ${o.runtime} runtime (a process each); simulated workers share processes, up to ${MAX_SIMULATED_WORKERS}`,
    );
  if (o['control-planes'] > 1 && o.store === 'redis')
    throw new InvalidConfigError(
      '--control-planes: replicas elect their leader on etcd and keep the store there; use --store etcd',
    );
  const dataDir = resolve(o['data-dir']);
  const logDir = join(dataDir, 'logs');
  let dataDirMode: number;
  try {
    // Its store, logs and cluster token are the operator's alone (sandboxes run as other users).
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    mkdirSync(logDir, { recursive: true });
    dataDirMode = statSync(dataDir).mode & 0o777;
  } catch (err) {
    throw new InvalidConfigError(`--data-dir: cannot create ${logDir}: ${errorMessage(err)}`);
  }
  // Every daemon's internal RPC is authenticated with this token (rpc/cluster-token.ts).
  const tokenFile = o['cluster-token-file'] ?? ensureSecretFile(dataDir, CLUSTER_TOKEN_FILE);
  loadClusterToken(tokenFile);
  const rpcAuth = ['--cluster-token-file', tokenFile];
  // The registration and admin API asks a token beyond loopback (or when given one).
  const apiTokenFile =
    o['api-token-file'] ??
    (isLoopback(o.host) ? undefined : ensureSecretFile(dataDir, API_TOKEN_FILE));
  loadApiToken(apiTokenFile, o.host, {});
  const apiAuth = apiTokenFile === undefined ? [] : ['--api-token-file', apiTokenFile];
  const tls = tlsArgs(o);
  const portShares = splitPortRange(o['port-range'], o.workers, '--workers');
  const supervisor = new Supervisor(logDir, nodeFlags(o['node-flags']));

  const shutdown = async (code: number) => {
    await supervisor.stopAll();
    process.exit(code);
  };
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    process.stderr.write('baton up: stopping (Ctrl-C again to force)\n');
    void shutdown(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const etcd = await startEtcdIfNeeded(o, supervisor, dataDir);
    // Several data planes are reached through HAProxy on --proxy-port (baton front).
    const fronted = o['data-planes'] > 1;
    const frontPort = fronted && o['proxy-port'] === 0 ? await freePort(o.host) : o['proxy-port'];
    const frontAddress = fronted ? `${o.host}:${frontPort}` : undefined;
    const replicas = o['control-planes'];
    const cpSups = Array.from({ length: replicas }, (_, i) =>
      supervisor.add(replicas === 1 ? 'control-plane' : `control-plane-${i + 1}`, 'control-plane', [
        ...controlPlaneArgs(o, dataDir, i, etcd, frontAddress),
        ...rpcAuth,
        ...apiAuth,
        ...tls,
      ]),
    );
    // One after the other: the first to campaign leads, so control-plane-1 starts as the leader.
    const cps: ReadyMessage[] = [];
    for (const cpSup of cpSups) {
      const cp = await supervisor.start(cpSup);
      cps.push(cp);
      // A restarted daemon must come back on the ports it got.
      cpSup.args = replaceFlags(cpSup.args, {
        '--rpc-port': cp.addresses.rpcPort,
        '--registration-port': cp.addresses.httpPort,
      });
    }
    const cp = cps[0]!;
    const cpRpc = cps.map((c) => `${o.host}:${String(c.addresses.rpcPort)}`).join(',');
    const dps = o['data-planes'];
    const dpSups = Array.from({ length: dps }, (_, i) =>
      supervisor.add(dps === 1 ? 'data-plane' : `data-plane-${i + 1}`, 'data-plane', [
        ...dataPlaneArgs(o, cpRpc, i, fronted),
        ...rpcAuth,
        ...tls,
      ]),
    );
    const workerSups = workerGroups(o).map((g) =>
      supervisor.add(g.name, 'worker', [
        ...workerArgs(o, cpRpc, g, groupPortRange(portShares, g), frontPort),
        ...rpcAuth,
      ]),
    );
    const started = await Promise.all([...dpSups, ...workerSups].map((s) => supervisor.start(s)));
    dpSups.forEach((dpSup, i) => {
      dpSup.args = replaceFlags(dpSup.args, {
        '--proxy-port': started[i]!.addresses.proxyPort,
        '--rpc-port': started[i]!.addresses.rpcPort,
        '--metrics-port': started[i]!.addresses.metricsPort,
        '--async-read-port': started[i]!.addresses.asyncReadPort,
      });
    });
    for (const w of workerSups)
      w.args = replaceFlags(w.args, {
        ...(w.args.includes('--count') ? {} : { '--rpc-port': w.ready!.addresses.rpcPort }),
        '--metrics-port': w.ready!.addresses.metricsPort,
      });
    let proxy = String(started[0]!.addresses.proxy);
    if (fronted) {
      const registrations = cps.map((c) => String(c.addresses.registration)).join(',');
      const front = supervisor.add('front', 'front', [
        'front',
        ...common(o),
        '--port',
        String(frontPort),
        '--cp',
        registrations,
        '--data-dir',
        dataDir,
        ...apiAuth,
      ]);
      proxy = String((await supervisor.start(front)).addresses.proxy);
    }
    // What the workers' runtimes could not give on this host, said where it is seen.
    const warnings = [
      ...new Set(
        workerSups.flatMap((w) => (w.ready?.addresses.warnings as string[] | undefined) ?? []),
      ),
    ];
    if ((dataDirMode & 0o077) !== 0)
      warnings.push(
        `--data-dir ${dataDir} may be read by other users (mode ${dataDirMode.toString(8)}): chmod 700 it`,
      );
    announce(o, supervisor.daemons, {
      warnings,
      apiTokenFile,
      registration: String(cp.addresses.registration),
      proxy,
      cpRpc,
      etcd,
      dataDir,
      logDir,
    });
  } catch (err) {
    process.stderr.write(`baton up: ${errorMessage(err)}\n`);
    await shutdown(1);
  }
}

/** TLS for the control planes' API and the data plane's proxy, checked before anything starts. */
function tlsArgs(o: UpOptions): string[] {
  const [cert, key] = [o['tls-cert-file'], o['tls-key-file']];
  if (loadTls(cert, key) === undefined) return [];
  if (o['data-planes'] > 1)
    throw new InvalidConfigError(
      '--tls-cert-file: TLS with several data planes (behind HAProxy) is not supported yet; use one',
    );
  return ['--tls-cert-file', resolve(cert!), '--tls-key-file', resolve(key!)];
}

function common(o: UpOptions): string[] {
  return ['--host', o.host, '--log-level', o['log-level']];
}

/**
 * With replicas (or `--store etcd`), the etcd they elect their leader on and
 * keep the store in: the one given, else one `baton etcd` started here.
 * Resolves with its endpoints; undefined without etcd.
 */
async function startEtcdIfNeeded(
  o: UpOptions,
  supervisor: Supervisor,
  dataDir: string,
): Promise<string | undefined> {
  if (o['control-planes'] === 1 && o.store !== 'etcd') return undefined;
  if (o['etcd-endpoints'] !== undefined) return o['etcd-endpoints'];
  const port = o['etcd-port'];
  const sup = supervisor.add('etcd', 'etcd', [
    'etcd',
    ...common(o),
    '--client-port',
    String(port),
    '--peer-port',
    String(port === 0 ? 0 : port + 1),
    '--data-dir',
    join(dataDir, 'etcd'),
  ]);
  const ready = await supervisor.start(sup);
  // A restarted etcd must come back on the ports it got.
  sup.args = replaceFlags(sup.args, {
    '--client-port': ready.addresses.clientPort,
    '--peer-port': ready.addresses.peerPort,
  });
  return String(ready.addresses.endpoint);
}

/** Replica `i`'s ports: the given ones + 2i (9090/9091, 9092/9093, ...), or any (0). */
function controlPlaneArgs(
  o: UpOptions,
  dataDir: string,
  i: number,
  etcd: string | undefined,
  frontAddress: string | undefined,
): string[] {
  const port = (first: number) => String(first === 0 ? 0 : first + 2 * i);
  return [
    'control-plane',
    ...common(o),
    '--registration-port',
    port(o['registration-port']),
    '--rpc-port',
    port(o['cp-rpc-port']),
    '--data-dir',
    dataDir,
    ...(etcd === undefined
      ? ['--store', o.store]
      : [
          '--store',
          'etcd',
          '--etcd-endpoints',
          etcd,
          '--replica-id',
          o['control-planes'] === 1 ? 'control-plane' : `control-plane-${i + 1}`,
        ]),
    ...(frontAddress === undefined ? [] : ['--front-address', frontAddress]),
    ...forwardArgs(o, ['redis-url', ...CP_FORWARDED]),
  ];
}

/** Data plane `i`: behind the front, on any free proxy port; RPC on --dp-rpc-port + i (or any). */
function dataPlaneArgs(o: UpOptions, cpRpc: string, i: number, fronted: boolean): string[] {
  return [
    'data-plane',
    ...common(o),
    '--cp-address',
    cpRpc,
    '--proxy-port',
    fronted ? '0' : String(o['proxy-port']),
    '--rpc-port',
    String(o['dp-rpc-port'] === 0 ? 0 : o['dp-rpc-port'] + i),
    // Any free port: `baton status`, the dashboard and /v1/prometheus-targets name it.
    '--metrics-port',
    '0',
    // Dirigent's async read side, on any free port (several data planes share the host).
    '--async-read-port',
    '0',
    ...forwardArgs(o, DP_FORWARDED),
  ];
}

function workerArgs(
  o: UpOptions,
  cpRpc: string,
  g: WorkerGroup,
  portRange: string,
  /** Where invocations arrive (the front's or the one data plane's port; 0 when not known yet). */
  invokePort: number,
): string[] {
  const capacity = workerCapacity(o);
  // Process sandboxes may connect to no port of this host but this one (functions call functions).
  const localPorts =
    o.runtime === 'process' && invokePort !== 0
      ? ['--sandbox-local-ports', String(invokePort)]
      : [];
  return [
    'worker',
    ...common(o),
    '--cp-address',
    cpRpc,
    '--runtime',
    o.runtime,
    '--name',
    g.name,
    '--rpc-port',
    String(o['worker-rpc-port'] === 0 ? 0 : o['worker-rpc-port'] + g.first),
    '--port-range',
    portRange,
    '--metrics-port',
    '0',
    ...(g.count > 1 ? ['--count', String(g.count)] : []),
    ...localPorts,
    ...forwardArgs({ 'cpu-capacity': capacity.cpuMilli, 'memory-capacity': capacity.memoryMib }, [
      'cpu-capacity',
      'memory-capacity',
    ]),
    ...forwardArgs(o, WORKER_FORWARDED),
  ];
}

/** `args` with the given flags' values replaced (or added). */
function replaceFlags(args: string[], values: Record<string, unknown>): string[] {
  const out = [...args];
  for (const [flag, value] of Object.entries(values)) {
    const i = out.indexOf(flag);
    if (i < 0) out.push(flag, String(value));
    else out[i + 1] = String(value);
  }
  return out;
}
