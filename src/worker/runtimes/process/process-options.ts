/** The process runtime's own worker option, and its constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { ISOLATION_MODES } from '../../../shared/runtime-names.js';
import { enumOption, type OptionValues } from '../../../shared/option-specs.js';
import {
  hostPortOptions,
  startedSandboxOptions,
  type SHARED_RUNTIME_OPTIONS,
} from '../runtime-options.js';
import type { ProcessRuntimeOptions } from './process-runtime.js';

export const PROCESS_OPTIONS = {
  isolation: enumOption(
    ISOLATION_MODES,
    'auto',
    'process runtime: auto (namespaces and cgroup limits where the host has them), strict (refuse to start without), none',
    'MODE',
    'isolation mode',
  ),
};

export function processRuntimeOptions(
  v: OptionValues<typeof SHARED_RUNTIME_OPTIONS & typeof PROCESS_OPTIONS>,
  host: string,
  logger: Logger,
): ProcessRuntimeOptions {
  return {
    ...hostPortOptions(v, host, logger),
    ...startedSandboxOptions(v),
    isolation: v.isolation,
    prewarm: v.prewarm,
  };
}
