import type { Logger } from '../../shared/logger.js';
import { InvalidConfigError } from '../../shared/errors.js';
import { PortPool } from '../ports.js';
import { ContainerdRuntime, type OciRuntime } from './containerd/containerd-runtime.js';
import { PooledIsolateRuntime } from './isolate/pooled-isolate-runtime.js';
import { PerRequestIsolateRuntime } from './isolate/per-request-isolate-runtime.js';
import { ProcessRuntime, type IsolationMode } from './process/process-runtime.js';
import { SimulatedRuntime } from './simulated/simulated-runtime.js';
import { RUNTIME_NAMES, type SandboxRuntime } from './sandbox-runtime.js';

export interface RuntimeOptions {
  name: string;
  host: string;
  logger: Logger;
  /** process: FIRST-LAST */
  portRange: string;
  /** simulated */
  sandboxDelayMs: number;
  /** simulated: port of the shared workload server (0 = any) */
  simulatedPort: number;
  readinessTimeoutMs: number;
  stopGraceMs: number;
  /** isolate runtimes: CPU time per request */
  isolateCpuLimitMs: number;
  /** isolate runtime: idle time before a standby sandbox gives up its isolate */
  isolateIdleMs: number;
  /** process runtime */
  isolation: IsolationMode;
  minCpuLimitMilli: number;
  minMemoryLimitMib: number;
  /** process and containerd: the least milli-CPU a sandbox is charged in placement */
  minCpuRequestMilli: number;
  /** process and containerd: creations at once (default 2 x cores) */
  creationConcurrency?: number;
  /** process runtime: started hosts; isolate runtimes: isolates made ahead per heap limit */
  prewarm: number;
  /** containerd runtime */
  containerd: {
    address: string;
    namespace: string;
    ociRuntime: OciRuntime;
    cniSubnet: string;
    cniBridge: string;
    cniPath: string | undefined;
  };
}

export function createRuntime(o: RuntimeOptions): SandboxRuntime {
  switch (o.name) {
    case 'process':
      return new ProcessRuntime({
        host: o.host,
        ports: PortPool.parse(o.portRange),
        logger: o.logger,
        readinessTimeoutMs: o.readinessTimeoutMs,
        stopGraceMs: o.stopGraceMs,
        isolation: o.isolation,
        minCpuLimitMilli: o.minCpuLimitMilli,
        minMemoryLimitMib: o.minMemoryLimitMib,
        minCpuRequestMilli: o.minCpuRequestMilli,
        ...(o.creationConcurrency === undefined
          ? {}
          : { creationConcurrency: o.creationConcurrency }),
        prewarm: o.prewarm,
      });
    case 'isolate':
      return new PooledIsolateRuntime({
        host: o.host,
        ports: PortPool.parse(o.portRange),
        logger: o.logger,
        cpuLimitMs: o.isolateCpuLimitMs,
        idleMs: o.isolateIdleMs,
        reserve: o.prewarm,
      });
    case 'isolate-per-request':
      return new PerRequestIsolateRuntime({
        host: o.host,
        ports: PortPool.parse(o.portRange),
        logger: o.logger,
        cpuLimitMs: o.isolateCpuLimitMs,
        reserve: o.prewarm,
      });
    case 'containerd':
      return new ContainerdRuntime({
        host: o.host,
        ports: PortPool.parse(o.portRange),
        logger: o.logger,
        readinessTimeoutMs: o.readinessTimeoutMs,
        stopGraceMs: o.stopGraceMs,
        minCpuLimitMilli: o.minCpuLimitMilli,
        minMemoryLimitMib: o.minMemoryLimitMib,
        minCpuRequestMilli: o.minCpuRequestMilli,
        ...(o.creationConcurrency === undefined
          ? {}
          : { creationConcurrency: o.creationConcurrency }),
        address: o.containerd.address,
        namespace: o.containerd.namespace,
        ociRuntime: o.containerd.ociRuntime,
        cniSubnet: o.containerd.cniSubnet,
        cniBridge: o.containerd.cniBridge,
        ...(o.containerd.cniPath === undefined ? {} : { cniPath: o.containerd.cniPath }),
      });
    case 'simulated':
      return new SimulatedRuntime({
        host: o.host,
        port: o.simulatedPort,
        delayMs: o.sandboxDelayMs,
        logger: o.logger,
      });
    default:
      throw new InvalidConfigError(
        `--runtime: unknown runtime "${o.name}" (expected one of ${RUNTIME_NAMES.join(', ')})`,
      );
  }
}
