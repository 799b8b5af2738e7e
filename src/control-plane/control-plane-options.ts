/** `baton control-plane`'s options, each defined once (see OptionSpec); `baton up` passes some on. */
import { z } from 'zod';
import {
  CLUSTER_TOKEN_OPTIONS,
  TLS_OPTIONS,
  COMMON_OPTIONS,
  enumOption,
  intOption,
  portSpec,
  stringOption,
} from '../shared/option-specs.js';
import { STORE_KINDS } from '../store/store.js';
import { PLACEMENT_POLICY_NAMES } from './placement/placement-policy.js';
import { AUTOSCALER_NAMES } from './autoscaler/autoscaler.js';
import { DEFAULT_AUTOSCALING_TICK_MS } from './autoscaler/kpa.js';

// The defaults live here, not beside the code that applies them: `baton
// control-plane --help` and its option errors load this module and not the
// control plane (main.ts imports it only once the options are good).
export const DEFAULT_WORKER_TIMEOUT_MS = 15_000;
export const DEFAULT_CP_HEARTBEAT_INTERVAL_MS = 5_000;
export const DEFAULT_LEASE_TTL_S = 2;
export const DEFAULT_ASYNC_MAX_QUEUED = 100_000;
export const DEFAULT_ASYNC_RESULT_TTL_MS = 24 * 3600_000;

export const CONTROL_PLANE_OPTIONS = {
  host: stringOption('127.0.0.1', 'address to listen on and advertise', 'ADDR'),
  'registration-port': portSpec(9091, 'HTTP port: registration, JSON API, /health, /metrics'),
  'rpc-port': portSpec(9090, 'internal RPC port (workers and data planes call it)'),
  store: enumOption(
    STORE_KINDS,
    'embedded',
    `cluster store: ${STORE_KINDS.join(' or ')}`,
    'KIND',
    'store',
  ),
  'data-dir': stringOption('./.baton', 'directory of the embedded store', 'DIR'),
  'redis-url': stringOption(
    'redis://127.0.0.1:6379',
    'Redis for --store redis',
    'URL',
    z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  ),
  'etcd-endpoints': stringOption(
    'http://127.0.0.1:2379',
    'etcd for --store etcd, comma-separated (replicas elect their leader there)',
    'URL[,...]',
    z
      .string()
      .regex(
        /^https?:\/\/[^\s,/]+(,https?:\/\/[^\s,/]+)*$/,
        'must be http://HOST:PORT, or several separated by commas',
      ),
  ),
  'replica-id': stringOption(
    undefined,
    "this replica's name in the election and in status (default: HOST-PID)",
    'ID',
    z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, . _ -'),
  ),
  'lease-ttl-s': intOption(
    DEFAULT_LEASE_TTL_S,
    "seconds a silent leader keeps its lease (a dead leader's process is noticed sooner)",
    'S',
    1,
    60,
  ),
  placement: enumOption(
    PLACEMENT_POLICY_NAMES,
    'least-allocated',
    `placement policy: ${PLACEMENT_POLICY_NAMES.join(', ')}`,
    'POLICY',
    'policy',
  ),
  autoscaler: enumOption(
    AUTOSCALER_NAMES,
    'kpa',
    `autoscaler: ${AUTOSCALER_NAMES.join(', ')}`,
    'NAME',
    'autoscaler',
  ),
  'autoscaling-tick-ms': intOption(
    DEFAULT_AUTOSCALING_TICK_MS,
    'period of autoscaling decisions',
    'MS',
    10,
    600_000,
  ),
  'worker-timeout-ms': intOption(
    DEFAULT_WORKER_TIMEOUT_MS,
    'a worker or data plane silent this long is failed',
    'MS',
    100,
  ),
  'async-max-queued': intOption(
    DEFAULT_ASYNC_MAX_QUEUED,
    'asynchronous invocations waiting or running at most; more are refused with 503',
    'N',
    1,
  ),
  'async-result-ttl-s': intOption(
    DEFAULT_ASYNC_RESULT_TTL_MS / 1000,
    "how long an asynchronous invocation's result is kept once it finished",
    'S',
    1,
  ),
  'heartbeat-interval-ms': intOption(
    DEFAULT_CP_HEARTBEAT_INTERVAL_MS,
    'heartbeat period asked of workers and data planes',
    'MS',
    10,
  ),
  'api-token-file': stringOption(
    undefined,
    'file holding the token the registration and admin API asks of callers, mode 600 (default: $BATON_TOKEN; required beyond loopback)',
    'FILE',
  ),
  'front-address': stringOption(
    undefined,
    'HOST:PORT of a front load balancer to return on registration',
    'ADDR',
    z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be HOST:PORT'),
  ),
  ...CLUSTER_TOKEN_OPTIONS,
  ...TLS_OPTIONS,
  ...COMMON_OPTIONS,
};
