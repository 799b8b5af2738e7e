/** The simulated runtime's own worker options, and its constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { intOption, portSpec, type OptionValues } from '../../../shared/option-specs.js';
import type { SimulatedRuntimeOptions } from './simulated-runtime.js';
import { DEFAULT_SIMULATED_DELAY_MS } from './simulated-defaults.js';

export const SIMULATED_OPTIONS = {
  'sandbox-delay-ms': intOption(
    DEFAULT_SIMULATED_DELAY_MS,
    'simulated runtime: time one creation takes',
    'MS',
    0,
    600_000,
  ),
  'simulated-port': portSpec(0, "simulated runtime: shared workload server's port (0 = any)"),
};

export function simulatedRuntimeOptions(
  v: OptionValues<typeof SIMULATED_OPTIONS>,
  host: string,
  logger: Logger,
): SimulatedRuntimeOptions {
  return { host, port: v['simulated-port'], delayMs: v['sandbox-delay-ms'], logger };
}
