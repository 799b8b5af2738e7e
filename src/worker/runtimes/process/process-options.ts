/** The process runtime's own worker option, and its constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { ISOLATION_MODES } from '../../../shared/runtime-names.js';
import { enumOption, type OptionValues } from '../../../shared/options.js';
import { PortPool } from '../../ports.js';
import type { SHARED_RUNTIME_OPTIONS } from '../runtime-options.js';
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
    host,
    ports: PortPool.parse(v['port-range']),
    logger,
    readinessTimeoutMs: v['readiness-timeout-ms'],
    stopGraceMs: v['stop-grace-ms'],
    isolation: v.isolation,
    minCpuLimitMilli: v['min-cpu-limit-milli'],
    minMemoryLimitMib: v['min-memory-limit-mib'],
    minCpuRequestMilli: v['min-cpu-request-milli'],
    ...(v['creation-concurrency'] === undefined
      ? {}
      : { creationConcurrency: v['creation-concurrency'] }),
    prewarm: v.prewarm,
  };
}
