/**
 * The data plane wired together from its checked options: loaded by main.ts
 * only once those are good, so `--help` and option errors answer without
 * loading the data plane.
 */
import { tcpTransport } from '../rpc/transport.js';
import { withClusterToken } from '../rpc/cluster-token.js';
import { loadClusterToken, loadTls } from '../shared/secrets.js';
import { waitAtMost } from '../shared/time.js';
import { createLogger } from '../shared/logger.js';
import type { RunningDaemon } from '../shared/daemon.js';
import type { OptionValues } from '../shared/option-specs.js';
import { splitAddresses } from '../shared/options.js';
import { loadBalancerFactory } from './load-balancer/create-load-balancer.js';
import { DataPlane } from './data-plane.js';
import type { DATA_PLANE_OPTIONS } from './data-plane-options.js';

/** Longest the data plane waits for the control plane's function table before announcing readiness. */
const SYNC_WAIT_MS = 5_000;

export async function startDataPlane(
  o: OptionValues<typeof DATA_PLANE_OPTIONS>,
): Promise<RunningDaemon> {
  const transport = withClusterToken(tcpTransport, loadClusterToken(o['cluster-token-file']));
  const loadBalancer = loadBalancerFactory(o['load-balancer']);
  const tls = loadTls(o['tls-cert-file'], o['tls-key-file']);
  const logger = createLogger({
    component: 'data-plane',
    level: o['log-level'],
    ...(o.name === undefined ? {} : { node: o.name }),
  });
  const dp = await DataPlane.start({
    transport,
    ...(o.name === undefined ? {} : { id: o.name }),
    host: o.host,
    proxyPort: o['proxy-port'],
    rpcPort: o['rpc-port'],
    controlPlanes: splitAddresses(o['cp-address']),
    loadBalancer,
    metricsIntervalMs: o['metrics-interval-ms'],
    maxQueuePerFunction: o['max-queue'],
    headersTimeoutMs: o['headers-timeout-ms'],
    idleTimeoutMs: o['idle-timeout-ms'],
    maxConcurrentStreams: o['max-concurrent-streams'],
    processMetrics: true,
    ...(tls === undefined ? {} : { tls }),
    metricsPort: o['metrics-port'],
    asyncReadPort: o['async-read-port'],
    asyncMode: o.async,
    logger,
  });
  // Announce readiness once the function table arrived, so nothing is a 404 by accident.
  if (!(await waitAtMost(dp.synced, SYNC_WAIT_MS)))
    logger.warn(
      { controlPlane: o['cp-address'], waitedMs: SYNC_WAIT_MS },
      'no function table from the control plane yet; serving anyway',
    );
  const proxy = `${tls === undefined ? 'http' : 'https'}://${o.host}:${dp.record.proxyPort}`;
  logger.info(
    { proxy, rpc: `${o.host}:${dp.record.rpcPort}`, loadBalancer: o['load-balancer'] },
    'data plane ready',
  );
  return {
    summary: `invoke ${proxy} (${tls === undefined ? 'HTTP/1.1 and h2c' : 'TLS: HTTP/1.1 and h2'}), rpc ${o.host}:${dp.record.rpcPort}, metrics http://${o.host}:${dp.record.metricsPort}/metrics, async results ${o.host}:${dp.asyncReadPort}${o.async ? ' (async mode)' : ''}, control plane ${o['cp-address']}`,
    addresses: {
      proxy,
      proxyPort: dp.record.proxyPort,
      rpcPort: dp.record.rpcPort,
      metricsPort: dp.record.metricsPort ?? null,
      asyncReadPort: dp.asyncReadPort ?? null,
      id: dp.record.id,
    },
    close: () => dp.close(),
  };
}
