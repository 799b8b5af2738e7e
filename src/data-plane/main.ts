/** `baton data-plane`: reads options and wires the data plane together. */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { createLogger } from '../shared/logger.js';
import { runDaemon } from '../shared/daemon.js';
import {
  COMMON_FLAGS,
  addressOption,
  compileOptions,
  formatHelp,
  logLevelOption,
  num,
  parseFlags,
  portOption,
  splitAddress,
  type FlagSpecs,
} from '../shared/options.js';
import { loadBalancerFactory } from './load-balancer/create-load-balancer.js';
import { LOAD_BALANCER_NAMES } from './load-balancer/load-balancer.js';
import {
  DataPlane,
  DEFAULT_MAX_QUEUE_PER_FUNCTION,
  DEFAULT_METRICS_INTERVAL_MS,
} from './data-plane.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
} from './listener.js';

/** Longest the data plane waits for the control plane's function table before announcing readiness. */
const SYNC_WAIT_MS = 5_000;

export const DATA_PLANE_FLAGS: FlagSpecs = {
  host: {
    type: 'string',
    description: 'address to listen on and advertise',
    defaultText: '127.0.0.1',
    valueName: 'ADDR',
  },
  'proxy-port': {
    type: 'string',
    description: 'invocation port (HTTP/1.1 and h2c)',
    defaultText: '8080',
    valueName: 'PORT',
  },
  'rpc-port': {
    type: 'string',
    description: 'internal RPC port (the control plane calls it)',
    defaultText: '8081',
    valueName: 'PORT',
  },
  'cp-address': {
    type: 'string',
    description: "control plane's internal RPC address",
    defaultText: '127.0.0.1:9090',
    valueName: 'HOST:PORT',
  },
  name: {
    type: 'string',
    description: 'data plane id',
    defaultText: 'HOST-PROXYPORT',
    valueName: 'ID',
  },
  'load-balancer': {
    type: 'string',
    description: `policy: ${LOAD_BALANCER_NAMES.join(', ')}`,
    defaultText: 'least-loaded',
    valueName: 'POLICY',
  },
  'metrics-interval-ms': {
    type: 'string',
    description: 'period of in-flight reports while busy',
    defaultText: String(DEFAULT_METRICS_INTERVAL_MS),
    valueName: 'MS',
  },
  'max-queue': {
    type: 'string',
    description: 'most requests waiting per function',
    defaultText: String(DEFAULT_MAX_QUEUE_PER_FUNCTION),
    valueName: 'N',
  },
  'headers-timeout-ms': {
    type: 'string',
    description: "longest a client may take to send a request's headers (or its first bytes)",
    defaultText: String(DEFAULT_HEADERS_TIMEOUT_MS),
    valueName: 'MS',
  },
  'idle-timeout-ms': {
    type: 'string',
    description: 'a client connection with no request in flight is closed after this',
    defaultText: String(DEFAULT_IDLE_TIMEOUT_MS),
    valueName: 'MS',
  },
  'max-concurrent-streams': {
    type: 'string',
    description: 'requests one HTTP/2 connection may have in flight at once',
    defaultText: String(DEFAULT_MAX_CONCURRENT_STREAMS),
    valueName: 'N',
  },
  ...COMMON_FLAGS,
};

const schema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  'proxy-port': portOption(8080),
  'rpc-port': portOption(8081),
  'cp-address': addressOption('127.0.0.1:9090'),
  name: z.string().min(1).optional(),
  'load-balancer': z.string().default('least-loaded'),
  'metrics-interval-ms': num(z.number().int().min(10)).default(DEFAULT_METRICS_INTERVAL_MS),
  'max-queue': num(z.number().int().min(1)).default(DEFAULT_MAX_QUEUE_PER_FUNCTION),
  'headers-timeout-ms': num(z.number().int().min(100)).default(DEFAULT_HEADERS_TIMEOUT_MS),
  'idle-timeout-ms': num(z.number().int().min(100)).default(DEFAULT_IDLE_TIMEOUT_MS),
  'max-concurrent-streams': num(
    z
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1),
  ).default(DEFAULT_MAX_CONCURRENT_STREAMS),
  'log-level': logLevelOption,
});

export const DATA_PLANE_USAGE = 'baton data-plane [options]';
export const DATA_PLANE_SUMMARY =
  'Run a data plane: the invocation proxy with per-function queues and load balancing.';

export async function runDataPlane(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, DATA_PLANE_FLAGS);
  if (flags.values.help === true) {
    process.stdout.write(formatHelp(DATA_PLANE_USAGE, DATA_PLANE_SUMMARY, DATA_PLANE_FLAGS));
    return;
  }
  await runDaemon('data-plane', async () => {
    const o = compileOptions(schema, flags.values);
    const loadBalancer = loadBalancerFactory(o['load-balancer']);
    const logger = createLogger({
      component: 'data-plane',
      level: o['log-level'],
      ...(o.name === undefined ? {} : { node: o.name }),
    });
    const dp = await DataPlane.start({
      ...(o.name === undefined ? {} : { id: o.name }),
      host: o.host,
      proxyPort: o['proxy-port'],
      rpcPort: o['rpc-port'],
      controlPlane: splitAddress(o['cp-address']),
      loadBalancer,
      metricsIntervalMs: o['metrics-interval-ms'],
      maxQueuePerFunction: o['max-queue'],
      headersTimeoutMs: o['headers-timeout-ms'],
      idleTimeoutMs: o['idle-timeout-ms'],
      maxConcurrentStreams: o['max-concurrent-streams'],
      logger,
    });
    // Announce readiness once the function table arrived, so nothing is a 404 by accident.
    const synced = await Promise.race([
      dp.synced.then(() => true),
      sleep(SYNC_WAIT_MS).then(() => false),
    ]);
    if (!synced)
      logger.warn(
        { controlPlane: o['cp-address'], waitedMs: SYNC_WAIT_MS },
        'no function table from the control plane yet; serving anyway',
      );
    const proxy = `http://${o.host}:${dp.record.proxyPort}`;
    logger.info(
      { proxy, rpc: `${o.host}:${dp.record.rpcPort}`, loadBalancer: o['load-balancer'] },
      'data plane ready',
    );
    return {
      summary: `invoke ${proxy} (HTTP/1.1 and h2c), rpc ${o.host}:${dp.record.rpcPort}, control plane ${o['cp-address']}`,
      addresses: {
        proxy,
        proxyPort: dp.record.proxyPort,
        rpcPort: dp.record.rpcPort,
        id: dp.record.id,
      },
      close: () => dp.close(),
    };
  });
}
