/**
 * `baton up`'s options: its own (ports, where things go, how many workers of
 * which runtime), and the daemons' options it passes on as given, taken from
 * their definitions so that help, validation and defaults are theirs.
 */
import { CONTROL_PLANE_OPTIONS } from '../control-plane/control-plane-options.js';
import { DATA_PLANE_OPTIONS } from '../data-plane/data-plane-options.js';
import { WORKER_OPTIONS } from '../worker/worker-options.js';
import {
  COMMON_OPTIONS,
  DEFAULT_DATA_DIR,
  TLS_OPTIONS,
  booleanOption,
  enumOption,
  forwarded,
  intOption,
  portSpec,
  stringOption,
} from '../shared/option-specs.js';
import { InvalidConfigError } from '../shared/errors.js';
import { RUNTIME_NAMES } from '../shared/runtime-names.js';
import { STORE_KINDS } from '../store/store.js';
import { DEFAULT_PORT_RANGE } from '../worker/ports.js';

/** Workers `baton up` runs: one process each (simulated ones share processes, so more of them). */
export const MAX_WORKERS = 1000;
export const MAX_SIMULATED_WORKERS = 10_000;

/** Control-plane options `baton up` passes on as given. */
export const CP_FORWARDED = [
  'placement',
  'worker-timeout-ms',
  'heartbeat-interval-ms',
  'autoscaling-tick-ms',
  'lease-ttl-s',
  'async-max-queued',
  'async-result-ttl-s',
] as const;
/** Data-plane options `baton up` passes on as given. */
export const DP_FORWARDED = [
  'load-balancer',
  'max-queue',
  'metrics-interval-ms',
  'headers-timeout-ms',
  'idle-timeout-ms',
  'max-concurrent-streams',
] as const;
/** Worker options `baton up` passes on as given. */
export const WORKER_FORWARDED = [
  'isolation',
  'prewarm',
  'readiness-timeout-ms',
  'stop-grace-ms',
  'min-cpu-limit-milli',
  'min-memory-limit-mib',
  'min-cpu-request-milli',
  'creation-concurrency',
  'isolate-cpu-limit-ms',
  'isolate-idle-ms',
  'containerd-address',
  'containerd-namespace',
  'oci-runtime',
  'container-user',
  'cni-subnet',
  'cni-bridge',
  'cni-path',
  'sandbox-delay-ms',
] as const;

export const UP_OPTIONS = {
  'registration-port': portSpec(9091, 'control plane HTTP port (registration, API)'),
  'proxy-port': portSpec(8080, 'data plane invocation port'),
  'data-dir': stringOption(DEFAULT_DATA_DIR, 'store, logs and the cluster token', 'DIR'),
  'api-token-file': stringOption(
    undefined,
    'the token the registration and admin API asks (default beyond loopback: DATA_DIR/api-token, made if missing; on loopback: none)',
    'FILE',
  ),
  'cluster-token-file': stringOption(
    undefined,
    "the cluster's token for internal RPC (default: DATA_DIR/cluster-token, made if missing)",
    'FILE',
  ),
  runtime: enumOption(
    RUNTIME_NAMES,
    'process',
    `sandbox runtime: ${RUNTIME_NAMES.join(', ')}`,
    'NAME',
    'runtime',
  ),
  workers: intOption(
    1,
    `number of workers (simulated: up to ${MAX_SIMULATED_WORKERS}, others up to ${MAX_WORKERS})`,
    'N',
    1,
    MAX_SIMULATED_WORKERS,
  ),
  'control-planes': intOption(
    1,
    'control-plane replicas; more than one elect a leader on etcd (--store etcd)',
    'N',
    1,
    7,
  ),
  'data-planes': intOption(
    1,
    'data planes; more than one are reached through HAProxy on --proxy-port',
    'N',
    1,
    16,
  ),
  'etcd-endpoints': stringOption(
    undefined,
    'an etcd to use for --store etcd instead of starting one (comma-separated URLs)',
    'URL[,...]',
  ),
  'etcd-port': portSpec(9379, 'client port of the etcd baton up starts (peer port: +1)'),
  host: stringOption('127.0.0.1', 'address every daemon listens on', 'ADDR'),
  'cp-rpc-port': portSpec(9090, 'control plane internal RPC port (0 = any free port)'),
  'dp-rpc-port': portSpec(8081, 'data plane internal RPC port (0 = any)'),
  'worker-rpc-port': portSpec(10010, 'first worker RPC port, then +1 each (0 = any)'),
  'port-range': stringOption(
    DEFAULT_PORT_RANGE,
    'sandbox ports, split between workers',
    'FIRST-LAST',
  ),
  store: enumOption(
    STORE_KINDS,
    'embedded',
    `cluster store: ${STORE_KINDS.join(' or ')}`,
    'KIND',
    'store',
  ),
  'redis-url': stringOption(undefined, 'Redis for --store redis', 'URL'),
  'cpu-capacity': intOption(
    undefined,
    'schedulable milli-CPU per worker',
    'MILLI',
    1,
    Number.MAX_SAFE_INTEGER,
    "this machine's cores x 1000, shared by the workers (simulated: each its own)",
  ),
  'memory-capacity': intOption(
    undefined,
    'schedulable MiB per worker',
    'MIB',
    1,
    Number.MAX_SAFE_INTEGER,
    "this machine's memory, shared by the workers (simulated: each its own)",
  ),
  'node-flags': stringOption(
    undefined,
    'Node.js flags for every daemon it starts, given with =: --node-flags="--cpu-prof --cpu-prof-dir=DIR" profiles them (written as they stop); a value with spaces in double quotes, as in NODE_OPTIONS',
    'FLAGS',
  ),
  ...forwarded(CONTROL_PLANE_OPTIONS, CP_FORWARDED, 'control plane: '),
  ...forwarded(DATA_PLANE_OPTIONS, DP_FORWARDED, 'data plane: '),
  ...forwarded(WORKER_OPTIONS, WORKER_FORWARDED),
  ...TLS_OPTIONS,
  json: booleanOption('print the addresses as one JSON line when ready'),
  ...COMMON_OPTIONS,
};

/**
 * `--node-flags`: Node.js flags separated by spaces, quoted as NODE_OPTIONS
 * is (a value with spaces in double quotes, `\` escaping the character
 * after it). Node itself refuses flags it does not know; a word that is not
 * a flag, or an unclosed quote, is refused here.
 */
export function nodeFlags(value: string | undefined): string[] {
  const flags: string[] = [];
  let word: string | undefined;
  let quoted = false;
  const text = value ?? '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '\\' && i + 1 < text.length) word = `${word ?? ''}${text[++i]!}`;
    else if (c === '"') {
      quoted = !quoted;
      word ??= '';
    } else if (!quoted && /\s/.test(c)) {
      if (word !== undefined) flags.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (quoted) throw new InvalidConfigError('--node-flags: a double quote is not closed');
  if (word !== undefined) flags.push(word);
  const bad = flags.find((f) => !f.startsWith('-'));
  if (bad !== undefined)
    throw new InvalidConfigError(
      `--node-flags: "${bad}" is not a Node.js flag (they start with --)`,
    );
  return flags;
}
