/** The process runtime's own worker option, and its constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { ISOLATION_MODES } from '../../../shared/runtime-names.js';
import { z } from 'zod';
import { enumOption, option, type OptionValues } from '../../../shared/option-specs.js';
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
  'sandbox-local-ports': option(
    z
      .string()
      .regex(/^(\d{1,5}(,\d{1,5})*)?$/, 'must be ports separated by commas')
      .default('')
      .transform((v) => (v === '' ? [] : v.split(',').map(Number)))
      .refine((ports) => ports.every((p) => p >= 1 && p <= 65535), 'ports are 1-65535')
      .refine((ports) => ports.length <= 12, 'at most 12 ports'),
    "process runtime, as root: this host's ports sandboxes may connect to (all others are refused; DNS's 53 always open); baton up gives the invocation port",
    { valueName: 'PORT[,...]', defaultText: 'none' },
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
    sandboxLocalPorts: v['sandbox-local-ports'],
  };
}
