import type { Logger } from '../../shared/logger.js';
import { InvalidConfigError } from '../../shared/errors.js';
import { PortPool } from '../ports.js';
import { ProcessRuntime } from './process.js';
import { SimulatedRuntime } from './simulated.js';
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
