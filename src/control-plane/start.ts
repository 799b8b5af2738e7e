/**
 * The control plane's parts wired together from its checked options: loaded
 * by main.ts only once those are good, so `--help` and option errors answer
 * without loading the control plane.
 */
import { tcpTransport } from '../rpc/transport.js';
import { withClusterToken } from '../rpc/cluster-token.js';
import { loadApiToken, loadClusterToken, loadTls } from '../shared/secrets.js';
import { resolve } from 'node:path';
import { hostname } from 'node:os';
import type { EtcdStore } from '../store/etcd.js';
import type { ClusterStore } from '../store/store.js';
import { createLogger } from '../shared/logger.js';
import { systemClock } from '../shared/clock.js';
import { say, type RunningDaemon } from '../shared/daemon.js';
import type { OptionValues } from '../shared/option-specs.js';
import { createStore } from '../store/create-store.js';
import { createPlacementPolicy } from './placement/create-placement-policy.js';
import { KpaAutoscaler } from './autoscaler/kpa.js';
import { ControlPlane } from './control-plane.js';
import type { CONTROL_PLANE_OPTIONS } from './control-plane-options.js';
import { createHttpApi } from './http-api.js';
import { supervisorReportSchema } from '../shared/supervision.js';

/** The exit status of a leader that lost its election (`baton up` starts it again, as a follower). */
export const DEPOSED_EXIT_CODE = 75;

export async function startControlPlane(
  o: OptionValues<typeof CONTROL_PLANE_OPTIONS>,
): Promise<RunningDaemon> {
  const transport = withClusterToken(tcpTransport, loadClusterToken(o['cluster-token-file']));
  const apiToken = loadApiToken(o['api-token-file'], o.host);
  const tls = loadTls(o['tls-cert-file'], o['tls-key-file']);
  const placement = createPlacementPolicy(o.placement);
  const logger = createLogger({ component: 'control-plane', level: o['log-level'] });
  const store = await createStore(
    o.store === 'embedded'
      ? { kind: 'embedded', dataDir: resolve(o['data-dir']) }
      : o.store === 'etcd'
        ? { kind: 'etcd', endpoints: o['etcd-endpoints'].split(',') }
        : // A store that is down now may be back soon: start, and keep trying it.
          { kind: 'redis', url: o['redis-url'], startWhenUnreachable: true },
    logger,
  );
  // On etcd, control planes are replicas that elect their leader there.
  const etcd = etcdOf(store);
  const replicated = etcd !== undefined;
  let cp: ControlPlane;
  try {
    cp = await ControlPlane.start({
      transport,
      host: o.host,
      rpcPort: o['rpc-port'],
      store,
      placement,
      autoscaler: new KpaAutoscaler(o['autoscaling-tick-ms']),
      clock: systemClock,
      logger,
      workerTimeoutMs: o['worker-timeout-ms'],
      heartbeatIntervalMs: o['heartbeat-interval-ms'],
      ...(o['front-address'] === undefined ? {} : { frontAddress: o['front-address'] }),
      replicated,
      processMetrics: true,
      async: {
        maxQueued: o['async-max-queued'],
        resultTtlMs: o['async-result-ttl-s'] * 1000,
      },
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  // `baton up` reports the daemons it supervises; `baton status` shows them.
  process.on('message', (m: unknown) => {
    const report = supervisorReportSchema.safeParse(m);
    if (report.success) cp.supervised = report.data.daemons;
  });
  const api = createHttpApi(cp, logger, apiToken, tls);
  const http = await api.listen(o['registration-port'], o.host).catch(async (err: unknown) => {
    await cp.close();
    throw err;
  });
  const registration = `${tls === undefined ? 'http' : 'https'}://${o.host}:${http.port}`;
  const rpc = `${o.host}:${cp.rpcAddress.port}`;
  if (etcd !== undefined)
    cp.startElection({
      store: etcd,
      id: o['replica-id'] ?? `${hostname()}-${process.pid}`,
      registration,
      leaseTtlS: o['lease-ttl-s'],
      // Its writes and calls are refused from now on; a fresh process rejoins as a follower.
      onDeposed: (reason) => {
        say('control-plane', 'warn', `deposed (${reason}); exiting`);
        process.exit(DEPOSED_EXIT_CODE);
      },
    });
  logger.info(
    { registration, rpc, store: store.kind, placement: placement.name },
    'control plane ready',
  );
  return {
    summary: `registration ${registration}, rpc ${rpc}, store ${store.kind}`,
    addresses: { registration, rpc, httpPort: http.port, rpcPort: cp.rpcAddress.port },
    close: async () => {
      await api.close();
      await cp.close();
    },
  };
}

/** The store when it is etcd's (createStore loads each backend only when it is chosen). */
function etcdOf(store: ClusterStore): EtcdStore | undefined {
  return store.kind === 'etcd' ? (store as EtcdStore) : undefined;
}
