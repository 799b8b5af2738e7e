/** `baton worker`: reads options and wires the worker daemon and its runtime together. */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { createLogger, type Logger } from '../shared/logger.js';
import { InvalidConfigError } from '../shared/errors.js';
import { WORKER_SHUTDOWN_TIMEOUT_MS, runDaemon } from '../shared/daemon.js';
import {
  COMMON_FLAGS,
  addressOption,
  compileOptions,
  formatHelp,
  logLevelOption,
  num,
  parseFlags,
  portOption,
  splitAddress,
  type FlagSpecs,
} from '../shared/options.js';
import { createRuntime } from './runtimes/create-runtime.js';
import { RUNTIME_NAMES } from './runtimes/sandbox-runtime.js';
import { DEFAULT_SIMULATED_DELAY_MS } from './runtimes/simulated/simulated-runtime.js';
import {
  DEFAULT_MIN_CPU_LIMIT_MILLI,
  DEFAULT_MIN_CPU_REQUEST_MILLI,
  DEFAULT_MIN_MEMORY_LIMIT_MIB,
  DEFAULT_READINESS_TIMEOUT_MS,
  DEFAULT_STOP_GRACE_MS,
} from './runtimes/limits.js';
import { DEFAULT_PREWARM, ISOLATION_MODES } from './runtimes/process/process-runtime.js';
import { DEFAULT_ISOLATE_CPU_LIMIT_MS } from './runtimes/isolate/isolate-runtime.js';
import { DEFAULT_ISOLATE_IDLE_MS } from './runtimes/isolate/pooled-isolate-runtime.js';
import {
  DEFAULT_CNI_BRIDGE,
  DEFAULT_CNI_SUBNET,
  DEFAULT_CONTAINERD_ADDRESS,
  DEFAULT_CONTAINERD_NAMESPACE,
  OCI_RUNTIMES,
} from './runtimes/containerd/containerd-runtime.js';
import { DEFAULT_PORT_RANGE } from './ports.js';
import { machineCpuMilli, machineMemoryMib } from '../shared/machine.js';
import { WorkerDaemon, DEFAULT_HEARTBEAT_INTERVAL_MS } from './daemon.js';

/** `baton image`, which works on the containerd runtime's images. */
export { runImage } from './image-command.js';

/** Longest the worker waits for its registration before announcing readiness. */
const REGISTER_WAIT_MS = 5_000;

export const WORKER_FLAGS: FlagSpecs = {
  host: {
    type: 'string',
    description: 'address to listen on and advertise (sandboxes listen here too)',
    defaultText: '127.0.0.1',
    valueName: 'ADDR',
  },
  'rpc-port': {
    type: 'string',
    description: 'internal RPC port (the control plane calls it)',
    defaultText: '10010',
    valueName: 'PORT',
  },
  'cp-address': {
    type: 'string',
    description: "control plane's internal RPC address",
    defaultText: '127.0.0.1:9090',
    valueName: 'HOST:PORT',
  },
  name: { type: 'string', description: 'worker id', defaultText: 'HOST-RPCPORT', valueName: 'ID' },
  count: {
    type: 'string',
    description:
      'simulated runtime: workers in this process (ids NAME-1..NAME-N, RPC ports PORT..PORT+N-1)',
    defaultText: '1',
    valueName: 'N',
  },
  runtime: {
    type: 'string',
    description: `sandbox runtime: ${RUNTIME_NAMES.join(' or ')}`,
    defaultText: 'process',
    valueName: 'NAME',
  },
  'port-range': {
    type: 'string',
    description: 'process, isolate and containerd runtimes: host ports for sandboxes',
    defaultText: DEFAULT_PORT_RANGE,
    valueName: 'FIRST-LAST',
  },
  'sandbox-delay-ms': {
    type: 'string',
    description: 'simulated runtime: time one creation takes',
    defaultText: String(DEFAULT_SIMULATED_DELAY_MS),
    valueName: 'MS',
  },
  'simulated-port': {
    type: 'string',
    description: "simulated runtime: shared workload server's port (0 = any)",
    defaultText: '0',
    valueName: 'PORT',
  },
  'cpu-capacity': {
    type: 'string',
    description: 'schedulable milli-CPU',
    defaultText: 'cores x 1000',
    valueName: 'MILLI',
  },
  'memory-capacity': {
    type: 'string',
    description: 'schedulable MiB',
    defaultText: 'total memory',
    valueName: 'MIB',
  },
  'readiness-timeout-ms': {
    type: 'string',
    description: 'process and containerd runtimes: longest wait for a sandbox to serve',
    defaultText: String(DEFAULT_READINESS_TIMEOUT_MS),
    valueName: 'MS',
  },
  'stop-grace-ms': {
    type: 'string',
    description: 'process and containerd runtimes: SIGTERM to SIGKILL delay',
    defaultText: String(DEFAULT_STOP_GRACE_MS),
    valueName: 'MS',
  },
  isolation: {
    type: 'string',
    description:
      'process runtime: auto (namespaces and cgroup limits where the host has them), strict (refuse to start without), none',
    defaultText: 'auto',
    valueName: 'MODE',
  },
  'min-cpu-limit-milli': {
    type: 'string',
    description:
      "process and containerd runtimes: a sandbox's CPU quota is its requested milli-CPU, at least this",
    defaultText: String(DEFAULT_MIN_CPU_LIMIT_MILLI),
    valueName: 'MILLI',
  },
  'min-memory-limit-mib': {
    type: 'string',
    description:
      "process and containerd runtimes: a sandbox's memory limit is its requested memory, at least this",
    defaultText: String(DEFAULT_MIN_MEMORY_LIMIT_MIB),
    valueName: 'MIB',
  },
  'min-cpu-request-milli': {
    type: 'string',
    description:
      'process and containerd runtimes: the least milli-CPU a sandbox is charged in placement (its memory limit is charged whole)',
    defaultText: String(DEFAULT_MIN_CPU_REQUEST_MILLI),
    valueName: 'MILLI',
  },
  'creation-concurrency': {
    type: 'string',
    description:
      'process and containerd runtimes: sandboxes created at once (more wait their turn)',
    defaultText: '2 x cores',
    valueName: 'N',
  },
  prewarm: {
    type: 'string',
    description:
      'process runtime: started Node hosts kept ready to become sandboxes; isolate runtimes: isolates made ahead per heap limit, the guest prelude loaded (0 = none)',
    defaultText: String(DEFAULT_PREWARM),
    valueName: 'N',
  },
  'isolate-cpu-limit-ms': {
    type: 'string',
    description: 'isolate runtimes: CPU time one request may use before its isolate is stopped',
    defaultText: String(DEFAULT_ISOLATE_CPU_LIMIT_MS),
    valueName: 'MS',
  },
  'isolate-idle-ms': {
    type: 'string',
    description:
      "isolate runtime: idle time after which a function's standby sandbox gives up its isolate (its next request makes a new one)",
    defaultText: String(DEFAULT_ISOLATE_IDLE_MS),
    valueName: 'MS',
  },
  'containerd-address': {
    type: 'string',
    description: "containerd runtime: containerd's socket",
    defaultText: DEFAULT_CONTAINERD_ADDRESS,
    valueName: 'PATH',
  },
  'containerd-namespace': {
    type: 'string',
    description: 'containerd runtime: containerd namespace for images and containers',
    defaultText: DEFAULT_CONTAINERD_NAMESPACE,
    valueName: 'NS',
  },
  'oci-runtime': {
    type: 'string',
    description: `containerd runtime: ${OCI_RUNTIMES.join(' or ')} (gVisor)`,
    defaultText: 'runc',
    valueName: 'NAME',
  },
  'cni-subnet': {
    type: 'string',
    description: "containerd runtime: the sandboxes' bridge network",
    defaultText: DEFAULT_CNI_SUBNET,
    valueName: 'CIDR',
  },
  'cni-bridge': {
    type: 'string',
    description: 'containerd runtime: name of the bridge interface',
    defaultText: DEFAULT_CNI_BRIDGE,
    valueName: 'NAME',
  },
  'cni-path': {
    type: 'string',
    description: 'containerd runtime: directory of the CNI plugins',
    defaultText: '/usr/lib/cni or /opt/cni/bin',
    valueName: 'DIR',
  },
  'heartbeat-interval-ms': {
    type: 'string',
    description: 'heartbeat period (default: as the control plane asks)',
    valueName: 'MS',
  },
  ...COMMON_FLAGS,
};

const schema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  'rpc-port': portOption(10010),
  'cp-address': addressOption('127.0.0.1:9090'),
  name: z.string().min(1).optional(),
  count: num(z.number().int().min(1).max(1000)).default(1),
  runtime: z.string().default('process'),
  'port-range': z.string().default(DEFAULT_PORT_RANGE),
  'sandbox-delay-ms': num(z.number().int().min(0).max(600_000)).default(DEFAULT_SIMULATED_DELAY_MS),
  'simulated-port': portOption(0),
  'cpu-capacity': num(z.number().int().min(1)).optional(),
  'memory-capacity': num(z.number().int().min(1)).optional(),
  'readiness-timeout-ms': num(z.number().int().min(10)).default(DEFAULT_READINESS_TIMEOUT_MS),
  'stop-grace-ms': num(z.number().int().min(0)).default(DEFAULT_STOP_GRACE_MS),
  isolation: z.enum(ISOLATION_MODES).default('auto'),
  'min-cpu-limit-milli': num(z.number().int().min(10)).default(DEFAULT_MIN_CPU_LIMIT_MILLI),
  'min-memory-limit-mib': num(z.number().int().min(16)).default(DEFAULT_MIN_MEMORY_LIMIT_MIB),
  'min-cpu-request-milli': num(z.number().int().min(0)).default(DEFAULT_MIN_CPU_REQUEST_MILLI),
  'creation-concurrency': num(z.number().int().min(1)).optional(),
  prewarm: num(z.number().int().min(0).max(64)).default(DEFAULT_PREWARM),
  'isolate-cpu-limit-ms': num(z.number().int().min(1)).default(DEFAULT_ISOLATE_CPU_LIMIT_MS),
  'isolate-idle-ms': num(z.number().int().min(1)).default(DEFAULT_ISOLATE_IDLE_MS),
  'containerd-address': z.string().min(1).default(DEFAULT_CONTAINERD_ADDRESS),
  'containerd-namespace': z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"')
    .default(DEFAULT_CONTAINERD_NAMESPACE),
  'oci-runtime': z.enum(OCI_RUNTIMES).default('runc'),
  'cni-subnet': z.string().default(DEFAULT_CNI_SUBNET),
  'cni-bridge': z.string().default(DEFAULT_CNI_BRIDGE),
  'cni-path': z.string().min(1).optional(),
  'heartbeat-interval-ms': num(z.number().int().min(10)).optional(),
  'log-level': logLevelOption,
});

export const WORKER_USAGE = 'baton worker [options]';
export const WORKER_SUMMARY =
  'Run a worker: creates, deletes and lists sandboxes for the control plane.';
export { DEFAULT_HEARTBEAT_INTERVAL_MS };

export async function runWorker(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, WORKER_FLAGS);
  if (flags.values.help === true) {
    process.stdout.write(formatHelp(WORKER_USAGE, WORKER_SUMMARY, WORKER_FLAGS));
    return;
  }
  await runDaemon(
    'worker',
    async () => {
      const o = compileOptions(schema, flags.values);
      const logger = createLogger({
        component: 'worker',
        level: o['log-level'],
        ...(o.name === undefined ? {} : { node: o.name }),
      });
      if (o.count > 1 && o.runtime !== 'simulated')
        throw new InvalidConfigError(
          `--count: ${o.count} workers in one process is only for --runtime simulated`,
        );
      if (o.count > 1 && o['simulated-port'] !== 0)
        throw new InvalidConfigError(
          '--simulated-port: each of the --count workers needs its own workload server; leave it at 0',
        );
      const workers: WorkerDaemon[] = [];
      const closeAll = () => Promise.all(workers.map((w) => w.close())).then(() => undefined);
      try {
        for (let i = 0; i < o.count; i++) {
          const id = o.count === 1 ? o.name : `${o.name ?? 'worker'}-${i + 1}`;
          const rpcPort = o['rpc-port'] === 0 ? 0 : o['rpc-port'] + i;
          workers.push(await startWorker(o, id, rpcPort, logger));
        }
      } catch (err) {
        await closeAll();
        throw err;
      }
      const registered = await Promise.race([
        Promise.all(workers.map((w) => w.registered)).then(() => true),
        sleep(REGISTER_WAIT_MS).then(() => false),
      ]);
      if (!registered)
        logger.warn(
          { controlPlane: o['cp-address'], waitedMs: REGISTER_WAIT_MS },
          'not registered with the control plane yet; will keep trying',
        );
      const rec = workers[0]!.record;
      const ids = workers.map((w) => w.record.id);
      logger.info(
        { workers: ids, rpc: `${rec.host}:${rec.rpcPort}`, runtime: o.runtime },
        'worker ready',
      );
      return {
        summary: `${o.count === 1 ? `worker ${rec.id}` : `${o.count} workers ${ids[0]}..${ids.at(-1)}`}, runtime ${o.runtime}, rpc ${rec.host}:${rec.rpcPort}, control plane ${o['cp-address']}`,
        addresses: {
          id: rec.id,
          ids,
          rpcPort: rec.rpcPort,
          rpcPorts: workers.map((w) => w.record.rpcPort),
        },
        close: closeAll,
      };
    },
    WORKER_SHUTDOWN_TIMEOUT_MS,
  );
}

type WorkerOptions = z.infer<typeof schema>;

async function startWorker(
  o: WorkerOptions,
  id: string | undefined,
  rpcPort: number,
  logger: Logger,
): Promise<WorkerDaemon> {
  const runtime = createRuntime({
    name: o.runtime,
    host: o.host,
    logger,
    portRange: o['port-range'],
    sandboxDelayMs: o['sandbox-delay-ms'],
    simulatedPort: o['simulated-port'],
    readinessTimeoutMs: o['readiness-timeout-ms'],
    stopGraceMs: o['stop-grace-ms'],
    isolateCpuLimitMs: o['isolate-cpu-limit-ms'],
    isolateIdleMs: o['isolate-idle-ms'],
    isolation: o.isolation,
    minCpuLimitMilli: o['min-cpu-limit-milli'],
    minMemoryLimitMib: o['min-memory-limit-mib'],
    minCpuRequestMilli: o['min-cpu-request-milli'],
    ...(o['creation-concurrency'] === undefined
      ? {}
      : { creationConcurrency: o['creation-concurrency'] }),
    prewarm: o.prewarm,
    containerd: {
      address: o['containerd-address'],
      namespace: o['containerd-namespace'],
      ociRuntime: o['oci-runtime'],
      cniSubnet: o['cni-subnet'],
      cniBridge: o['cni-bridge'],
      cniPath: o['cni-path'],
    },
  });
  return WorkerDaemon.start({
    ...(id === undefined ? {} : { id }),
    host: o.host,
    rpcPort,
    controlPlane: splitAddress(o['cp-address']),
    cpuCapacityMilli: o['cpu-capacity'] ?? machineCpuMilli(),
    memoryCapacityMib: o['memory-capacity'] ?? machineMemoryMib(),
    ...(o['heartbeat-interval-ms'] === undefined
      ? {}
      : { heartbeatIntervalMs: o['heartbeat-interval-ms'] }),
    runtime,
    logger,
  }).catch(async (err: unknown) => {
    await runtime.close();
    throw err;
  });
}
