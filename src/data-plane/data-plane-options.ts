/** `baton data-plane`'s options, each defined once (see OptionSpec); `baton up` passes some on. */
import {
  CLUSTER_TOKEN_OPTIONS,
  TLS_OPTIONS,
  COMMON_OPTIONS,
  addressListSpec,
  booleanOption,
  enumOption,
  intOption,
  portSpec,
  stringOption,
} from '../shared/option-specs.js';
import { LOAD_BALANCER_NAMES } from './load-balancer/load-balancer.js';

// The defaults live here, not beside the code that applies them: `baton
// data-plane --help` and its option errors load this module and not the data
// plane (main.ts imports it only once the options are good).
export const DEFAULT_METRICS_INTERVAL_MS = 2_000;
export const DEFAULT_MAX_QUEUE_PER_FUNCTION = 100_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Above the 60 s idle time-out of common load balancers, so they close first. */
export const DEFAULT_IDLE_TIMEOUT_MS = 65_000;
export const DEFAULT_MAX_CONCURRENT_STREAMS = 1000;

export const DATA_PLANE_OPTIONS = {
  host: stringOption('127.0.0.1', 'address to listen on and advertise', 'ADDR'),
  'proxy-port': portSpec(8080, 'invocation port (HTTP/1.1 and h2c)'),
  'rpc-port': portSpec(8081, 'internal RPC port (the control plane calls it)'),
  'metrics-port': portSpec(8083, 'Prometheus metrics port (GET /metrics)'),
  'async-read-port': portSpec(
    8082,
    "Dirigent's async read side: POST an invocation id, get its answer (204 until done)",
  ),
  async: booleanOption(
    "Dirigent's async mode: every request is asynchronous, answered 200 with its id",
  ),
  'cp-address': addressListSpec(
    '127.0.0.1:9090',
    "control plane's internal RPC address (each replica's, comma-separated)",
  ),
  name: stringOption(undefined, 'data plane id (default: HOST-PROXYPORT)', 'ID'),
  'load-balancer': enumOption(
    LOAD_BALANCER_NAMES,
    'least-loaded',
    `policy: ${LOAD_BALANCER_NAMES.join(', ')}`,
    'POLICY',
    'policy',
  ),
  'metrics-interval-ms': intOption(
    DEFAULT_METRICS_INTERVAL_MS,
    'period of in-flight reports while busy',
    'MS',
    10,
  ),
  'max-queue': intOption(
    DEFAULT_MAX_QUEUE_PER_FUNCTION,
    'most requests waiting per function',
    'N',
    1,
  ),
  'headers-timeout-ms': intOption(
    DEFAULT_HEADERS_TIMEOUT_MS,
    "longest a client may take to send a request's headers (or its first bytes)",
    'MS',
    100,
  ),
  'idle-timeout-ms': intOption(
    DEFAULT_IDLE_TIMEOUT_MS,
    'a client connection with no request in flight is closed after this',
    'MS',
    100,
  ),
  'max-concurrent-streams': intOption(
    DEFAULT_MAX_CONCURRENT_STREAMS,
    'requests one HTTP/2 connection may have in flight at once',
    'N',
    1,
    2 ** 31 - 1,
  ),
  ...CLUSTER_TOKEN_OPTIONS,
  ...TLS_OPTIONS,
  ...COMMON_OPTIONS,
};
