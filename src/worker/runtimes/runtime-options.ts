/**
 * Worker options that more than one runtime reads: sandbox ports, readiness
 * and stopping, cgroup limits and placement floors, creation concurrency, and
 * what is made ahead. Each runtime's own options are in its folder, with the
 * function that compiles its constructor options from the worker's values.
 */
import type { Logger } from '../../shared/logger.js';
import { intOption, stringOption, type OptionValues } from '../../shared/option-specs.js';
import { DEFAULT_PORT_RANGE, PortPool } from '../ports.js';
import {
  DEFAULT_MIN_CPU_LIMIT_MILLI,
  DEFAULT_MIN_CPU_REQUEST_MILLI,
  DEFAULT_MIN_MEMORY_LIMIT_MIB,
  DEFAULT_READINESS_TIMEOUT_MS,
  DEFAULT_STOP_GRACE_MS,
} from './limits.js';

/** Started pool hosts (process) or isolates per heap limit (isolates) made ahead. */
export const DEFAULT_PREWARM = 2;

export const SHARED_RUNTIME_OPTIONS = {
  'port-range': stringOption(
    DEFAULT_PORT_RANGE,
    'process, isolate and containerd runtimes: host ports for sandboxes; simulated: its workload server (a share each with --count)',
    'FIRST-LAST',
  ),
  'readiness-timeout-ms': intOption(
    DEFAULT_READINESS_TIMEOUT_MS,
    'process and containerd runtimes: longest wait for a sandbox to serve',
    'MS',
    10,
  ),
  'stop-grace-ms': intOption(
    DEFAULT_STOP_GRACE_MS,
    'process and containerd runtimes: SIGTERM to SIGKILL delay',
    'MS',
  ),
  'min-cpu-limit-milli': intOption(
    DEFAULT_MIN_CPU_LIMIT_MILLI,
    "process and containerd runtimes: a sandbox's CPU quota is its requested milli-CPU, at least this",
    'MILLI',
    10,
  ),
  'min-memory-limit-mib': intOption(
    DEFAULT_MIN_MEMORY_LIMIT_MIB,
    "process and containerd runtimes: a sandbox's memory limit is its requested memory, at least this",
    'MIB',
    16,
  ),
  'min-cpu-request-milli': intOption(
    DEFAULT_MIN_CPU_REQUEST_MILLI,
    'process and containerd runtimes: the least milli-CPU a sandbox is charged in placement (its memory limit is charged whole)',
    'MILLI',
  ),
  'creation-concurrency': intOption(
    undefined,
    'process and containerd runtimes: sandboxes created at once (more wait their turn)',
    'N',
    1,
    Number.MAX_SAFE_INTEGER,
    '2 x cores',
  ),
  prewarm: intOption(
    DEFAULT_PREWARM,
    'process runtime: started Node hosts kept ready to become sandboxes; isolate runtimes: isolates made ahead per heap limit, the guest prelude loaded (0 = none)',
    'N',
    0,
    64,
  ),
};

type SharedValues = OptionValues<typeof SHARED_RUNTIME_OPTIONS>;

/** What every runtime whose sandboxes listen on host ports takes. */
export function hostPortOptions(v: SharedValues, host: string, logger: Logger) {
  return { host, ports: PortPool.parse(v['port-range']), logger };
}

/** What the runtimes that start a process or container per sandbox take: readiness, stopping, limits, floors, concurrency. */
export function startedSandboxOptions(v: SharedValues) {
  return {
    readinessTimeoutMs: v['readiness-timeout-ms'],
    stopGraceMs: v['stop-grace-ms'],
    minCpuLimitMilli: v['min-cpu-limit-milli'],
    minMemoryLimitMib: v['min-memory-limit-mib'],
    minCpuRequestMilli: v['min-cpu-request-milli'],
    ...(v['creation-concurrency'] === undefined
      ? {}
      : { creationConcurrency: v['creation-concurrency'] }),
  };
}
