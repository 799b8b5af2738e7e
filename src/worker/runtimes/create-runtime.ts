/**
 * The runtime a worker runs, by name, built from the worker's option values
 * (each runtime compiles its own constructor options, in its folder).
 */
import type { Logger } from '../../shared/logger.js';
import type { OptionValues } from '../../shared/option-specs.js';
import { InvalidConfigError } from '../../shared/errors.js';
import type { SHARED_RUNTIME_OPTIONS } from './runtime-options.js';
import { ContainerdRuntime } from './containerd/containerd-runtime.js';
import { CONTAINERD_OPTIONS, containerdRuntimeOptions } from './containerd/containerd-options.js';
import { PooledIsolateRuntime } from './isolate/pooled-isolate-runtime.js';
import { PerRequestIsolateRuntime } from './isolate/per-request-isolate-runtime.js';
import { ISOLATE_OPTIONS, isolateRuntimeOptions } from './isolate/isolate-options.js';
import { ProcessRuntime } from './process/process-runtime.js';
import { PROCESS_OPTIONS, processRuntimeOptions } from './process/process-options.js';
import { SimulatedRuntime } from './simulated/simulated-runtime.js';
import { SIMULATED_OPTIONS, simulatedRuntimeOptions } from './simulated/simulated-options.js';
import { RUNTIME_NAMES, type SandboxRuntime } from './sandbox-runtime.js';

/** Every runtime's worker options. */
export const RUNTIME_OPTIONS = {
  ...PROCESS_OPTIONS,
  ...ISOLATE_OPTIONS,
  ...CONTAINERD_OPTIONS,
  ...SIMULATED_OPTIONS,
};

export type RuntimeOptionValues = OptionValues<
  typeof SHARED_RUNTIME_OPTIONS & typeof RUNTIME_OPTIONS
>;

/** Throws InvalidConfigError for an unknown name or a bad option of the runtime. */
export function createRuntime(
  name: string,
  values: RuntimeOptionValues,
  host: string,
  logger: Logger,
): SandboxRuntime {
  switch (name) {
    case 'process':
      return new ProcessRuntime(processRuntimeOptions(values, host, logger));
    case 'isolate':
      return new PooledIsolateRuntime(isolateRuntimeOptions(values, host, logger));
    case 'isolate-per-request':
      return new PerRequestIsolateRuntime(isolateRuntimeOptions(values, host, logger));
    case 'containerd':
      return new ContainerdRuntime(containerdRuntimeOptions(values, host, logger));
    case 'simulated':
      return new SimulatedRuntime(simulatedRuntimeOptions(values, host, logger));
    default:
      throw new InvalidConfigError(
        `--runtime: unknown runtime "${name}" (expected one of ${RUNTIME_NAMES.join(', ')})`,
      );
  }
}
