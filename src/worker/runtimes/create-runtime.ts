/**
 * The runtime a worker runs, by name, built from the worker's option values
 * (each runtime compiles its own constructor options, in its folder).
 */
import type { Logger } from '../../shared/logger.js';
import type { OptionValues } from '../../shared/option-specs.js';
import { InvalidConfigError } from '../../shared/errors.js';
import type { SHARED_RUNTIME_OPTIONS } from './runtime-options.js';
import { CONTAINERD_OPTIONS, containerdRuntimeOptions } from './containerd/containerd-options.js';
import { ISOLATE_OPTIONS, isolateRuntimeOptions } from './isolate/isolate-options.js';
import { PROCESS_OPTIONS, processRuntimeOptions } from './process/process-options.js';
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

/**
 * Throws InvalidConfigError for an unknown name or a bad option of the
 * runtime. Loads only the named runtime's code: a simulated worker does not
 * load the containerd client, nor a process worker the isolates' bundler.
 */
export async function createRuntime(
  name: string,
  values: RuntimeOptionValues,
  host: string,
  logger: Logger,
): Promise<SandboxRuntime> {
  switch (name) {
    case 'process': {
      const o = processRuntimeOptions(values, host, logger);
      return new (await import('./process/process-runtime.js')).ProcessRuntime(o);
    }
    case 'isolate': {
      const o = isolateRuntimeOptions(values, host, logger);
      return new (await import('./isolate/pooled-isolate-runtime.js')).PooledIsolateRuntime(o);
    }
    case 'isolate-per-request': {
      const o = isolateRuntimeOptions(values, host, logger);
      const m = await import('./isolate/per-request-isolate-runtime.js');
      return new m.PerRequestIsolateRuntime(o);
    }
    case 'containerd': {
      const o = containerdRuntimeOptions(values, host, logger);
      return new (await import('./containerd/containerd-runtime.js')).ContainerdRuntime(o);
    }
    case 'simulated': {
      const o = simulatedRuntimeOptions(values, host, logger);
      return new (await import('./simulated/simulated-runtime.js')).SimulatedRuntime(o);
    }
    default:
      throw new InvalidConfigError(
        `--runtime: unknown runtime "${name}" (expected one of ${RUNTIME_NAMES.join(', ')})`,
      );
  }
}
