/**
 * The worker daemons of one process and their runtime, wired together from
 * the worker's checked options: loaded by main.ts only once those are good,
 * so `--help` and option errors answer without loading the worker.
 */
import { tcpTransport, type RpcTransport } from '../rpc/transport.js';
import { withClusterToken } from '../rpc/cluster-token.js';
import { loadClusterToken } from '../shared/secrets.js';
import { waitAtMost } from '../shared/time.js';
import { createLogger, type Logger } from '../shared/logger.js';
import type { RunningDaemon } from '../shared/daemon.js';
import { splitAddresses } from '../shared/options.js';
import type { OptionValues } from '../shared/option-specs.js';
import { machineCpuMilli, machineMemoryMib } from '../shared/machine.js';
import { createRuntime } from './runtimes/create-runtime.js';
import { WorkerDaemon } from './daemon.js';
import { splitPortRange } from './ports.js';
import { HostStats } from './host-stats.js';
import { WorkerMetrics } from './prometheus-metrics.js';
import { startMetricsServer } from '../shared/prometheus.js';
import type { WORKER_OPTIONS } from './worker-options.js';

/** Longest the worker waits for its registration before announcing readiness. */
const REGISTER_WAIT_MS = 5_000;

type WorkerOptions = OptionValues<typeof WORKER_OPTIONS>;

export async function startWorkers(o: WorkerOptions): Promise<RunningDaemon> {
  // Workers sharing the process each take a share of the ports (one worker: all of them).
  const portRanges = splitPortRange(o['port-range'], o.count, '--count');
  const transport = withClusterToken(tcpTransport, loadClusterToken(o['cluster-token-file']));
  const logger = createLogger({
    component: 'worker',
    level: o['log-level'],
    ...(o.name === undefined ? {} : { node: o.name }),
  });
  const workers: WorkerDaemon[] = [];
  // One metrics endpoint for the process, whatever the number of workers in it.
  const metrics = new WorkerMetrics(true);
  const hostStats = new HostStats();
  const served = await startMetricsServer(metrics.registry, o.host, o['metrics-port'], logger);
  const closeAll = async () => {
    await Promise.all(workers.map((w) => w.close()));
    served.server.close();
  };
  try {
    for (let i = 0; i < o.count; i++) {
      const id = o.count === 1 ? o.name : `${o.name ?? 'worker'}-${i + 1}`;
      const rpcPort = o['rpc-port'] === 0 ? 0 : o['rpc-port'] + i;
      workers.push(
        await startWorker({ ...o, 'port-range': portRanges[i]! }, id, rpcPort, transport, logger, {
          metrics,
          port: served.port,
          hostStats,
        }),
      );
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const registered = Promise.all(workers.map((w) => w.registered));
  if (!(await waitAtMost(registered, REGISTER_WAIT_MS)))
    logger.warn(
      { controlPlane: o['cp-address'], waitedMs: REGISTER_WAIT_MS },
      'not registered with the control plane yet; will keep trying',
    );
  const rec = workers[0]!.record;
  const ids = workers.map((w) => w.record.id);
  logger.info(
    { workers: ids, rpc: `${rec.host}:${rec.rpcPort}`, runtime: o.runtime },
    'worker ready',
  );
  return {
    summary: `${o.count === 1 ? `worker ${rec.id}` : `${o.count} workers ${ids[0]}..${ids.at(-1)}`}, runtime ${o.runtime}, rpc ${rec.host}:${rec.rpcPort}, metrics http://${o.host}:${served.port}/metrics, control plane ${o['cp-address']}`,
    addresses: {
      id: rec.id,
      ids,
      isolation: rec.isolation ?? '',
      warnings: workers[0]!.hostReport.warnings,
      rpcPort: rec.rpcPort,
      rpcPorts: workers.map((w) => w.record.rpcPort),
      metricsPort: served.port,
    },
    close: closeAll,
  };
}

async function startWorker(
  o: WorkerOptions,
  id: string | undefined,
  rpcPort: number,
  transport: RpcTransport,
  logger: Logger,
  shared: { metrics: WorkerMetrics; port: number; hostStats: HostStats },
): Promise<WorkerDaemon> {
  const runtime = await createRuntime(o.runtime, o, o.host, logger);
  return WorkerDaemon.start({
    ...(id === undefined ? {} : { id }),
    host: o.host,
    rpcPort,
    transport,
    controlPlanes: splitAddresses(o['cp-address']),
    cpuCapacityMilli: o['cpu-capacity'] ?? machineCpuMilli(),
    memoryCapacityMib: o['memory-capacity'] ?? machineMemoryMib(),
    ...(o['heartbeat-interval-ms'] === undefined
      ? {}
      : { heartbeatIntervalMs: o['heartbeat-interval-ms'] }),
    runtime,
    logger,
    metrics: shared.metrics,
    metricsPort: shared.port,
    hostStats: shared.hostStats,
  }).catch(async (err: unknown) => {
    await runtime.close();
    throw err;
  });
}
