/** What `/v1/status` and the control plane's `/metrics` report, built from its state. */
import type { ClusterStatus, ControlPlaneMetrics } from '../shared/http-api.js';
import type { SupervisedDaemon } from '../shared/supervision.js';
import type { ClusterState } from './cluster-state.js';
import type { OrchestratorCounters } from './sandbox-orchestrator.js';
import type { StoreStatus } from './store-watch.js';

export function clusterStatus(
  state: ClusterState,
  o: {
    now: number;
    startedAt: number;
    ready: boolean;
    store: StoreStatus;
    supervised: SupervisedDaemon[] | undefined;
  },
): ClusterStatus {
  const { now } = o;
  const sandboxes = { ready: 0, creating: 0, draining: 0 };
  for (const sb of state.sandboxes.values()) sandboxes[sb.phase]++;
  return {
    uptimeS: Math.round((now - o.startedAt) / 1000),
    ready: o.ready,
    store: {
      kind: o.store.kind,
      ok: o.store.ok,
      error: o.store.error,
      sinceS: Math.round((now - o.store.since) / 1000),
    },
    functions: state.functions.size,
    sandboxes,
    workers: [...state.workers.values()].map((w) => ({
      id: w.id,
      address: `${w.record.host}:${w.record.rpcPort}`,
      runtime: w.record.runtime,
      sandboxes: w.askedSandboxes,
      cpuPercent: w.cpuPercent,
      memoryPercent: w.memoryPercent,
      allocated: { cpuMilli: w.cpuAllocatedMilli, memoryMib: w.memoryAllocatedMib },
      capacity: { cpuMilli: w.cpuCapacityMilli, memoryMib: w.memoryCapacityMib },
      sandboxFloor: w.sandboxFloor ?? { cpuMilli: 0, memoryMib: 0 },
      ...(w.record.isolation === undefined ? {} : { isolation: w.record.isolation }),
      lastHeartbeatMsAgo: now - w.lastHeartbeatAt,
    })),
    dataPlanes: [...state.dataPlanes.values()].map((dp) => ({
      id: dp.record.id,
      proxy: `${dp.record.host}:${dp.record.proxyPort}`,
      ...(dp.record.tls === true ? { tls: true } : {}),
      rpc: `${dp.record.host}:${dp.record.rpcPort}`,
      ...(dp.record.asyncReadPort === undefined
        ? {}
        : { asyncRead: `${dp.record.host}:${dp.record.asyncReadPort}` }),
      lastHeartbeatMsAgo: now - dp.lastHeartbeatAt,
    })),
    ...(o.supervised === undefined ? {} : { supervised: o.supervised }),
  };
}

export function controlPlaneMetrics(
  state: ClusterState,
  counters: OrchestratorCounters,
  creationLatencies: readonly number[],
): ControlPlaneMetrics {
  const lat = [...creationLatencies].sort((a, b) => a - b);
  const q = (p: number) =>
    lat.length === 0
      ? null
      : Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! * 100) / 100;
  let inflight = 0;
  let queued = 0;
  for (const fn of state.functions.values()) {
    inflight += fn.inflight;
    queued += fn.queued;
  }
  return {
    functions: state.functions.size,
    workers: state.workers.size,
    dataPlanes: state.dataPlanes.size,
    sandboxes: state.sandboxes.size,
    inflight,
    queued,
    ...counters,
    sandboxCreationMs: { p50: q(0.5), p99: q(0.99), samples: lat.length },
  };
}

/** One group of Prometheus HTTP service discovery (`http_sd_configs`). */
export interface PrometheusTargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * Every daemon's metrics address, in Prometheus's HTTP service discovery
 * form: this control plane's (`self`, host:port of its HTTP API), each data
 * plane's and each worker process's (workers of one process share one).
 */
export function prometheusTargets(state: ClusterState, self: string): PrometheusTargetGroup[] {
  const addresses = (records: Iterable<{ host: string; metricsPort?: number | undefined }>) => [
    ...new Set(
      [...records].flatMap((r) =>
        r.metricsPort === undefined ? [] : [`${r.host}:${r.metricsPort}`],
      ),
    ),
  ];
  const groups: PrometheusTargetGroup[] = [
    { targets: self === '' ? [] : [self], labels: { job: 'baton-control-plane' } },
    {
      targets: addresses([...state.dataPlanes.values()].map((d) => d.record)),
      labels: { job: 'baton-data-plane' },
    },
    {
      targets: addresses([...state.workers.values()].map((w) => w.record)),
      labels: { job: 'baton-worker' },
    },
  ];
  return groups.filter((g) => g.targets.length > 0);
}
