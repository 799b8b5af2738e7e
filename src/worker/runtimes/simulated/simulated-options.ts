/** The simulated runtime's own worker options, and its constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { intOption, portSpec, type OptionValues } from '../../../shared/option-specs.js';
import type { SimulatedRuntimeOptions } from './simulated-runtime.js';
import { DEFAULT_SIMULATED_DELAY_MS } from './simulated-defaults.js';
import type { SHARED_RUNTIME_OPTIONS } from '../runtime-options.js';
import { parsePortRange } from '../../ports.js';

export const SIMULATED_OPTIONS = {
  'sandbox-delay-ms': intOption(
    DEFAULT_SIMULATED_DELAY_MS,
    'simulated runtime: time one creation takes',
    'MS',
    0,
    600_000,
  ),
  'simulated-port': portSpec(
    0,
    "simulated runtime: shared workload server's port (0 = the first free one of --port-range)",
  ),
};

export function simulatedRuntimeOptions(
  v: OptionValues<typeof SIMULATED_OPTIONS & Pick<typeof SHARED_RUNTIME_OPTIONS, 'port-range'>>,
  host: string,
  logger: Logger,
): SimulatedRuntimeOptions {
  return {
    host,
    port: v['simulated-port'],
    ports: parsePortRange(v['port-range']),
    delayMs: v['sandbox-delay-ms'],
    logger,
  };
}
