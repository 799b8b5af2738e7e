/**
 * `baton worker`'s options, each defined once (see OptionSpec): the daemon's
 * own, and those of its runtimes (shared, then each runtime's from its
 * folder). `baton up` passes some on.
 */
import {
  CLUSTER_TOKEN_OPTIONS,
  COMMON_OPTIONS,
  addressListSpec,
  enumOption,
  intOption,
  portSpec,
  stringOption,
} from '../shared/option-specs.js';
import { RUNTIME_NAMES } from '../shared/runtime-names.js';
import { SHARED_RUNTIME_OPTIONS } from './runtimes/runtime-options.js';
import { RUNTIME_OPTIONS } from './runtimes/create-runtime.js';

export const WORKER_OPTIONS = {
  host: stringOption(
    '127.0.0.1',
    'address to listen on and advertise (sandboxes listen here too)',
    'ADDR',
  ),
  'rpc-port': portSpec(10010, 'internal RPC port (the control plane calls it)'),
  'metrics-port': portSpec(
    10011,
    'Prometheus metrics port (GET /metrics), one for all the workers of the process',
  ),
  'cp-address': addressListSpec(
    '127.0.0.1:9090',
    "control plane's internal RPC address (each replica's, comma-separated)",
  ),
  name: { ...stringOption(undefined, 'worker id', 'ID'), defaultText: 'HOST-RPCPORT' },
  count: intOption(
    1,
    'simulated runtime: workers in this process (ids NAME-1..NAME-N, RPC ports PORT..PORT+N-1)',
    'N',
    1,
    1000,
  ),
  runtime: enumOption(
    RUNTIME_NAMES,
    'process',
    `sandbox runtime: ${RUNTIME_NAMES.join(', ')}`,
    'NAME',
    'runtime',
  ),
  'cpu-capacity': intOption(
    undefined,
    'schedulable milli-CPU',
    'MILLI',
    1,
    Number.MAX_SAFE_INTEGER,
    'cores x 1000',
  ),
  'memory-capacity': intOption(
    undefined,
    'schedulable MiB',
    'MIB',
    1,
    Number.MAX_SAFE_INTEGER,
    'total memory',
  ),
  'heartbeat-interval-ms': intOption(
    undefined,
    'heartbeat period (default: as the control plane asks)',
    'MS',
    10,
  ),
  ...SHARED_RUNTIME_OPTIONS,
  ...RUNTIME_OPTIONS,
  ...CLUSTER_TOKEN_OPTIONS,
  ...COMMON_OPTIONS,
};
