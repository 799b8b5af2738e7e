/** The isolate runtimes' own worker options, and their constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { intOption, type OptionValues } from '../../../shared/option-specs.js';
import { hostPortOptions, type SHARED_RUNTIME_OPTIONS } from '../runtime-options.js';
import { DEFAULT_ISOLATE_CPU_LIMIT_MS, DEFAULT_ISOLATE_IDLE_MS } from './isolate-defaults.js';
import type { PooledIsolateRuntimeOptions } from './pooled-isolate-runtime.js';

export const ISOLATE_OPTIONS = {
  'isolate-cpu-limit-ms': intOption(
    DEFAULT_ISOLATE_CPU_LIMIT_MS,
    'isolate runtimes: CPU time one request may use before its isolate is stopped',
    'MS',
    1,
  ),
  'isolate-idle-ms': intOption(
    DEFAULT_ISOLATE_IDLE_MS,
    "isolate runtime: idle time after which a function's standby sandbox gives up its isolate (its next request makes a new one)",
    'MS',
    1,
  ),
};

export function isolateRuntimeOptions(
  v: OptionValues<typeof SHARED_RUNTIME_OPTIONS & typeof ISOLATE_OPTIONS>,
  host: string,
  logger: Logger,
): PooledIsolateRuntimeOptions {
  return {
    ...hostPortOptions(v, host, logger),
    cpuLimitMs: v['isolate-cpu-limit-ms'],
    idleMs: v['isolate-idle-ms'],
    reserve: v.prewarm,
  };
}
