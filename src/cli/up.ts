/**
 * `baton up`: one control plane, one data plane and N workers on this
 * machine, each its own process, supervised: a daemon that dies is restarted
 * with back-off (0.5 s doubling to 30 s while it keeps failing) for as long
 * as it fails; the others keep running. Restarts are printed here and sent
 * to the control plane, whose status (`baton status`) shows them. Daemon
 * logs go to `<data-dir>/logs/<daemon>.log`; warnings and errors are echoed
 * here. Only Ctrl-C or SIGTERM stops the cluster: workers first (their
 * sandboxes with them), then the data plane, then the control plane.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { InvalidConfigError, errorMessage } from '../shared/errors.js';
import {
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  WORKER_SHUTDOWN_TIMEOUT_MS,
  type ReadyMessage,
} from '../shared/daemon.js';
import type { SupervisedDaemon, SupervisorReport } from '../shared/supervision.js';
import {
  COMMON_FLAGS,
  compileOptions,
  formatHelp,
  logLevelOption,
  num,
  parseFlags,
  portOption,
  type FlagSpecs,
} from '../shared/options.js';
import {
  DEFAULT_CONTAINERD_ADDRESS,
  ISOLATION_MODES,
  OCI_RUNTIMES,
  RUNTIME_NAMES,
} from '../shared/runtime-names.js';
import { STORE_KINDS } from '../store/store.js';
import { DEFAULT_PORT_RANGE, PortPool } from '../worker/ports.js';
import { machineCpuMilli, machineMemoryMib } from '../shared/machine.js';
import { spawnBaton } from './spawn-baton.js';

const UP_FLAGS: FlagSpecs = {
  'registration-port': {
    type: 'string',
    description: 'control plane HTTP port (registration, API)',
    defaultText: '9091',
    valueName: 'PORT',
  },
  'proxy-port': {
    type: 'string',
    description: 'data plane invocation port',
    defaultText: '8080',
    valueName: 'PORT',
  },
  'data-dir': {
    type: 'string',
    description: 'store and logs',
    defaultText: './.baton',
    valueName: 'DIR',
  },
  runtime: {
    type: 'string',
    description: `sandbox runtime: ${RUNTIME_NAMES.join(', ')}`,
    defaultText: 'process',
    valueName: 'NAME',
  },
  workers: { type: 'string', description: 'number of workers', defaultText: '1', valueName: 'N' },
  host: {
    type: 'string',
    description: 'address every daemon listens on',
    defaultText: '127.0.0.1',
    valueName: 'ADDR',
  },
  'cp-rpc-port': {
    type: 'string',
    description: 'control plane internal RPC port (0 = any free port)',
    defaultText: '9090',
    valueName: 'PORT',
  },
  'dp-rpc-port': {
    type: 'string',
    description: 'data plane internal RPC port (0 = any)',
    defaultText: '8081',
    valueName: 'PORT',
  },
  'worker-rpc-port': {
    type: 'string',
    description: 'first worker RPC port, then +1 each (0 = any)',
    defaultText: '10010',
    valueName: 'PORT',
  },
  'port-range': {
    type: 'string',
    description: 'sandbox ports, split between workers',
    defaultText: DEFAULT_PORT_RANGE,
    valueName: 'FIRST-LAST',
  },
  store: {
    type: 'string',
    description: `cluster store: ${STORE_KINDS.join(' or ')}`,
    defaultText: 'embedded',
    valueName: 'KIND',
  },
  'redis-url': { type: 'string', description: 'Redis for --store redis', valueName: 'URL' },
  placement: {
    type: 'string',
    description: 'placement policy',
    defaultText: 'least-allocated',
    valueName: 'POLICY',
  },
  'load-balancer': {
    type: 'string',
    description: 'load-balancing policy',
    defaultText: 'least-loaded',
    valueName: 'POLICY',
  },
  'headers-timeout-ms': {
    type: 'string',
    description: "data plane: longest a client may take to send a request's headers",
    defaultText: '10000',
    valueName: 'MS',
  },
  'idle-timeout-ms': {
    type: 'string',
    description: 'data plane: idle client connections are closed after this',
    defaultText: '65000',
    valueName: 'MS',
  },
  'max-concurrent-streams': {
    type: 'string',
    description: 'data plane: requests one HTTP/2 connection may have in flight',
    defaultText: '1000',
    valueName: 'N',
  },
  prewarm: {
    type: 'string',
    description:
      'process runtime: pre-warmed Node hosts per worker; isolate runtimes: isolates made ahead per heap limit',
    defaultText: '2',
    valueName: 'N',
  },
  isolation: {
    type: 'string',
    description: 'process runtime: auto, strict or none (see baton worker --help)',
    defaultText: 'auto',
    valueName: 'MODE',
  },
  'isolate-cpu-limit-ms': {
    type: 'string',
    description: 'isolate runtimes: CPU time one request may use (see baton worker --help)',
    defaultText: '30000',
    valueName: 'MS',
  },
  'isolate-idle-ms': {
    type: 'string',
    description: 'isolate runtime: idle time before a standby sandbox gives up its isolate',
    defaultText: '60000',
    valueName: 'MS',
  },
  'containerd-address': {
    type: 'string',
    description: "containerd runtime: containerd's socket",
    defaultText: DEFAULT_CONTAINERD_ADDRESS,
    valueName: 'PATH',
  },
  'oci-runtime': {
    type: 'string',
    description: 'containerd runtime: runc or runsc (gVisor)',
    defaultText: 'runc',
    valueName: 'NAME',
  },
  'sandbox-delay-ms': {
    type: 'string',
    description: 'simulated runtime: creation time',
    defaultText: '40',
    valueName: 'MS',
  },
  'cpu-capacity': {
    type: 'string',
    description: 'schedulable milli-CPU per worker',
    defaultText: "this machine's cores x 1000, shared by the workers (simulated: each its own)",
    valueName: 'MILLI',
  },
  'memory-capacity': {
    type: 'string',
    description: 'schedulable MiB per worker',
    defaultText: "this machine's memory, shared by the workers (simulated: each its own)",
    valueName: 'MIB',
  },
  'worker-timeout-ms': {
    type: 'string',
    description: 'silence after which a worker is failed',
    defaultText: '15000',
    valueName: 'MS',
  },
  json: { type: 'boolean', description: 'print the addresses as one JSON line when ready' },
  ...COMMON_FLAGS,
};

const schema = z.object({
  'registration-port': portOption(9091),
  'proxy-port': portOption(8080),
  'data-dir': z.string().min(1).default('./.baton'),
  runtime: z.enum(RUNTIME_NAMES).default('process'),
  workers: num(z.number().int().min(1).max(1000)).default(1),
  host: z.string().min(1).default('127.0.0.1'),
  'cp-rpc-port': portOption(9090),
  'dp-rpc-port': portOption(8081),
  'worker-rpc-port': portOption(10010),
  'port-range': z.string().default(DEFAULT_PORT_RANGE),
  store: z.enum(STORE_KINDS).default('embedded'),
  'redis-url': z.string().optional(),
  placement: z.string().optional(),
  'load-balancer': z.string().optional(),
  'headers-timeout-ms': num(z.number().int().min(100)).optional(),
  'idle-timeout-ms': num(z.number().int().min(100)).optional(),
  'max-concurrent-streams': num(z.number().int().min(1)).optional(),
  'sandbox-delay-ms': num(z.number().int().min(0)).optional(),
  isolation: z.enum(ISOLATION_MODES).optional(),
  prewarm: num(z.number().int().min(0).max(64)).optional(),
  'isolate-cpu-limit-ms': num(z.number().int().min(1)).optional(),
  'isolate-idle-ms': num(z.number().int().min(1)).optional(),
  'containerd-address': z.string().min(1).optional(),
  'oci-runtime': z.enum(OCI_RUNTIMES).optional(),
  'cpu-capacity': num(z.number().int().min(1)).optional(),
  'memory-capacity': num(z.number().int().min(1)).optional(),
  'worker-timeout-ms': num(z.number().int().min(100)).optional(),
  json: z.boolean().default(false),
  'log-level': logLevelOption,
});

const READY_TIMEOUT_MS = 60_000;
/** Simulated workers that share one process in `baton up`. */
export const SIMULATED_WORKERS_PER_PROCESS = 25;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** A daemon that ran this long before it died starts its back-off afresh. */
const STABLE_RUN_MS = 60_000;

interface Supervised {
  name: string;
  args: string[];
  child: ChildProcess | undefined;
  ready: ReadyMessage | undefined;
  /** Restarts in all. */
  restarts: number;
  /** Failures since it last ran for STABLE_RUN_MS: sets the back-off. */
  failures: number;
  readyAt: number | undefined;
  lastExit: string | null;
  log: WriteStream;
  stopping: boolean;
}

/** The wait before restarting a daemon after its `failures`-th failure in a row. */
export function restartDelayMs(failures: number): number {
  return Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** Math.max(0, failures - 1));
}

export async function runUp(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, UP_FLAGS);
  if (flags.values.help === true) {
    process.stdout.write(
      formatHelp(
        'baton up [options]',
        'Run Baton on this machine: a control plane, a data plane and workers.',
        UP_FLAGS,
      ),
    );
    return;
  }
  const o = compileOptions(schema, flags.values);
  const dataDir = resolve(o['data-dir']);
  const logDir = join(dataDir, 'logs');
  try {
    mkdirSync(logDir, { recursive: true });
  } catch (err) {
    throw new InvalidConfigError(`--data-dir: cannot create ${logDir}: ${errorMessage(err)}`);
  }
  const ranges = splitPortRange(o['port-range'], o.workers);
  const common = ['--host', o.host, '--log-level', o['log-level']];
  const all: Supervised[] = [];
  let shuttingDown = false;

  const supervise = (name: string, args: string[]): Supervised => {
    const s: Supervised = {
      name,
      args,
      child: undefined,
      ready: undefined,
      restarts: 0,
      failures: 0,
      readyAt: undefined,
      lastExit: null,
      log: createWriteStream(join(logDir, `${name}.log`), { flags: 'a' }),
      stopping: false,
    };
    all.push(s);
    return s;
  };

  /** Tells the control plane (if it runs) how every supervised daemon is doing. */
  const report = () => {
    const cp = all.find((s) => s.name === 'control-plane')?.child;
    if (cp === undefined || !cp.connected || shuttingDown) return;
    const daemons: SupervisedDaemon[] = all.map((s) => ({
      name: s.name,
      pid: s.ready === undefined ? null : (s.child?.pid ?? null),
      state: s.ready === undefined ? 'restarting' : 'running',
      restarts: s.restarts,
      lastExit: s.lastExit,
      since: s.readyAt === undefined ? null : new Date(s.readyAt).toISOString(),
    }));
    // One that is going away gets the next report once it is back.
    cp.send({ type: 'baton-supervisor', daemons } satisfies SupervisorReport, () => undefined);
  };

  const start = (s: Supervised): Promise<ReadyMessage> => {
    const spawned = spawnBaton(s.args, {
      readyTimeoutMs: READY_TIMEOUT_MS,
      onStdout: (chunk) => s.log.write(chunk),
      onStderr: (chunk) => {
        s.log.write(chunk);
        // Once stopping, the daemons' complaints about each other are expected: keep them in the logs only.
        if (!shuttingDown)
          for (const line of chunk.toString().split('\n')) echoIfNotable(s.name, line);
      },
    });
    s.child = spawned.child;
    s.ready = undefined;
    s.readyAt = undefined;
    spawned.child.once('exit', (code, signal) => {
      if (s.ready === undefined || s.stopping || shuttingDown) return;
      onCrash(s, signal ?? `code ${code}`);
    });
    return spawned.ready.then((m) => {
      s.ready = m;
      s.readyAt = Date.now();
      if (s.restarts > 0) process.stderr.write(`baton up: ${s.name} is back (pid ${m.pid})\n`);
      report();
      return m;
    });
  };

  /** Restarts a daemon that died (or failed to start again), after its back-off; never gives up. */
  const onCrash = (s: Supervised, how: string) => {
    const ranFor = s.readyAt === undefined ? 0 : Date.now() - s.readyAt;
    s.failures = ranFor >= STABLE_RUN_MS ? 1 : s.failures + 1;
    s.restarts++;
    s.lastExit = how;
    s.ready = undefined;
    s.readyAt = undefined;
    const delay = restartDelayMs(s.failures);
    process.stderr.write(
      `baton up: ${s.name} exited (${how}); restart ${s.restarts} in ${delay} ms (see ${join(logDir, `${s.name}.log`)})\n`,
    );
    report();
    setTimeout(() => {
      if (shuttingDown) return;
      start(s).catch((err: unknown) => {
        if (shuttingDown) return;
        process.stderr.write(`baton up: ${errorMessage(err)}\n`);
        onCrash(s, 'failed to start');
      });
    }, delay);
  };

  const stopOne = (s: Supervised): Promise<void> => {
    s.stopping = true;
    const child = s.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve();
    return new Promise((done) => {
      // A little past the daemon's own limit: a worker stopping its sandboxes takes longest.
      const limit = s.name.startsWith('worker')
        ? WORKER_SHUTDOWN_TIMEOUT_MS
        : DEFAULT_SHUTDOWN_TIMEOUT_MS;
      const kill = setTimeout(() => child.kill('SIGKILL'), limit + 5_000);
      child.once('exit', () => {
        clearTimeout(kill);
        done();
      });
      child.kill('SIGTERM');
    });
  };

  const shutdown = async (code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    const workers = all.filter((s) => s.name.startsWith('worker'));
    await Promise.all(workers.map(stopOne));
    await Promise.all(all.filter((s) => s.name === 'data-plane').map(stopOne));
    await Promise.all(all.filter((s) => s.name === 'control-plane').map(stopOne));
    for (const s of all) s.log.end();
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
    const cpArgs = [
      'control-plane',
      ...common,
      '--registration-port',
      String(o['registration-port']),
      '--rpc-port',
      String(o['cp-rpc-port']),
      '--data-dir',
      dataDir,
      '--store',
      o.store,
    ];
    if (o['redis-url'] !== undefined) cpArgs.push('--redis-url', o['redis-url']);
    if (o.placement !== undefined) cpArgs.push('--placement', o.placement);
    if (o['worker-timeout-ms'] !== undefined)
      cpArgs.push('--worker-timeout-ms', String(o['worker-timeout-ms']));
    const cp = await start(supervise('control-plane', cpArgs));
    const cpRpc = `${o.host}:${String(cp.addresses.rpcPort)}`;
    // A restarted control plane must come back on the same ports.
    all[0]!.args = replaceFlag(
      replaceFlag(cpArgs, '--rpc-port', String(cp.addresses.rpcPort)),
      '--registration-port',
      String(cp.addresses.httpPort),
    );

    const dpArgs = [
      'data-plane',
      ...common,
      '--cp-address',
      cpRpc,
      '--proxy-port',
      String(o['proxy-port']),
      '--rpc-port',
      String(o['dp-rpc-port']),
    ];
    if (o['load-balancer'] !== undefined) dpArgs.push('--load-balancer', o['load-balancer']);
    for (const flag of ['headers-timeout-ms', 'idle-timeout-ms', 'max-concurrent-streams'] as const)
      if (o[flag] !== undefined) dpArgs.push(`--${flag}`, String(o[flag]));
    const dpSup = supervise('data-plane', dpArgs);
    // Simulated workers do almost nothing each; a process per worker would
    // spend the machine on 100 idle V8 heaps and cold JIT. They share
    // processes, SIMULATED_WORKERS_PER_PROCESS at a time, each still its own
    // worker (id, RPC port, registration, heartbeats, workload server).
    const perProcess = o.runtime === 'simulated' ? SIMULATED_WORKERS_PER_PROCESS : 1;
    const groups = Math.ceil(o.workers / perProcess);
    const workerSups = Array.from({ length: groups }, (_, g) => {
      const first = g * perProcess;
      const count = Math.min(perProcess, o.workers - first);
      const name = count === 1 ? `worker-${first + 1}` : `workers-${g + 1}`;
      const args = [
        'worker',
        ...common,
        '--cp-address',
        cpRpc,
        '--runtime',
        o.runtime,
        '--name',
        name,
        '--rpc-port',
        String(o['worker-rpc-port'] === 0 ? 0 : o['worker-rpc-port'] + first),
        '--port-range',
        ranges[g]!,
      ];
      if (count > 1) args.push('--count', String(count));
      if (o['sandbox-delay-ms'] !== undefined)
        args.push('--sandbox-delay-ms', String(o['sandbox-delay-ms']));
      if (o.isolation !== undefined) args.push('--isolation', o.isolation);
      if (o.prewarm !== undefined) args.push('--prewarm', String(o.prewarm));
      for (const flag of ['isolate-cpu-limit-ms', 'isolate-idle-ms'] as const)
        if (o[flag] !== undefined) args.push(`--${flag}`, String(o[flag]));
      const capacity = workerCapacity(o);
      if (capacity.cpuMilli !== undefined) args.push('--cpu-capacity', String(capacity.cpuMilli));
      if (capacity.memoryMib !== undefined)
        args.push('--memory-capacity', String(capacity.memoryMib));
      if (o['containerd-address'] !== undefined)
        args.push('--containerd-address', o['containerd-address']);
      if (o['oci-runtime'] !== undefined) args.push('--oci-runtime', o['oci-runtime']);
      return supervise(name, args);
    });
    const [dp] = await Promise.all([start(dpSup), ...workerSups.map(start)]);
    dpSup.args = replaceFlag(
      replaceFlag(dpArgs, '--proxy-port', String(dp.addresses.proxyPort)),
      '--rpc-port',
      String(dp.addresses.rpcPort),
    );
    for (const w of workerSups)
      if (!w.args.includes('--count'))
        w.args = replaceFlag(w.args, '--rpc-port', String(w.ready!.addresses.rpcPort));

    const registration = String(cp.addresses.registration);
    const proxy = String(dp.addresses.proxy);
    const pids = all.map((s) => s.child?.pid).filter((p): p is number => p !== undefined);
    const summary = {
      registration,
      proxy,
      cpRpc,
      workers: o.workers,
      runtime: o.runtime,
      dataDir,
      logs: logDir,
      pid: process.pid,
      pids,
    };
    if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else {
      process.stdout.write(
        `Baton is up.\n` +
          `  register:  POST ${registration}/registerService (Dirigent form) or PUT ${registration}/v1/functions/NAME (JSON)\n` +
          `  invoke:    ${proxy} with 'Host: NAME', or ${proxy}/function/NAME/\n` +
          `  workers:   ${o.workers} x ${o.runtime} runtime\n` +
          `  store:     ${o.store === 'embedded' ? join(dataDir, 'store') : (o['redis-url'] ?? 'redis')}, logs in ${logDir}\n` +
          `Try: baton deploy hello --image hello && baton invoke hello    (Ctrl-C stops everything)\n`,
      );
    }
    process.send?.({
      type: 'baton-ready',
      daemon: 'up',
      pid: process.pid,
      addresses: summary,
    } satisfies ReadyMessage);
  } catch (err) {
    process.stderr.write(`baton up: ${errorMessage(err)}\n`);
    await shutdown(1);
  }
}

/**
 * Each worker's schedulable capacity: as given, else, for runtimes whose
 * sandboxes run on this machine, the machine's share of each worker (two
 * workers each offering the whole machine would admit twice what it can
 * run); simulated workers stand for machines of their own and keep theirs.
 */
function workerCapacity(o: {
  runtime: string;
  workers: number;
  'cpu-capacity'?: number | undefined;
  'memory-capacity'?: number | undefined;
}): { cpuMilli?: number; memoryMib?: number } {
  const shared = o.runtime !== 'simulated';
  const share = (total: number) => Math.max(1, Math.floor(total / o.workers));
  const cpu = o['cpu-capacity'] ?? (shared ? share(machineCpuMilli()) : undefined);
  const memory = o['memory-capacity'] ?? (shared ? share(machineMemoryMib()) : undefined);
  return {
    ...(cpu === undefined ? {} : { cpuMilli: cpu }),
    ...(memory === undefined ? {} : { memoryMib: memory }),
  };
}

function replaceFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  if (i < 0) return [...args, flag, value];
  const out = [...args];
  out[i + 1] = value;
  return out;
}

function splitPortRange(range: string, parts: number): string[] {
  let pool: PortPool;
  try {
    pool = PortPool.parse(range);
  } catch (err) {
    throw new InvalidConfigError(errorMessage(err));
  }
  const size = pool.last - pool.first + 1;
  const each = Math.floor(size / parts);
  if (each < 1)
    throw new InvalidConfigError(`--port-range: ${range} has fewer ports than --workers`);
  return Array.from(
    { length: parts },
    (_, i) => `${pool.first + i * each}-${pool.first + (i + 1) * each - 1}`,
  );
}

/** Echoes a daemon's warnings and errors (pino JSON lines, level >= 40) and non-JSON lines. */
function echoIfNotable(name: string, line: string): void {
  const t = line.trim();
  if (t.length === 0) return;
  if (!t.startsWith('{')) {
    process.stderr.write(`[${name}] ${t}\n`);
    return;
  }
  try {
    const j = JSON.parse(t) as Record<string, unknown>;
    const level = typeof j.level === 'number' ? j.level : 30;
    if (level < 40) return;
    const { level: _l, time: _t, pid: _p, component: _c, node: _n, msg, ...rest } = j;
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    process.stderr.write(`[${name}] ${level >= 50 ? 'error' : 'warn'}: ${String(msg)}${extra}\n`);
  } catch {
    process.stderr.write(`[${name}] ${t}\n`);
  }
}
