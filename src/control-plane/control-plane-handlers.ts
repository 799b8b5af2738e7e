/**
 * The control-plane RPC service's handlers: what workers and data planes
 * call, each handed to the module that owns it. Registrations wait (bounded)
 * for the state to be loaded from the store; heartbeats before that find the
 * caller unknown, which makes it register again.
 */
import type { ServiceHandlers } from '../rpc/contract.js';
import type { ControlPlaneService } from '../rpc/contracts/control-plane.js';
import type { ClusterState } from './cluster-state.js';
import type { Membership } from './membership.js';
import type { SandboxOrchestrator } from './sandbox-orchestrator.js';
import type { ScalingLoop } from './scaling-loop.js';
import { UnavailableError } from '../shared/errors.js';
import { invocationView, type AsyncInvocations } from './async-invocations.js';

export interface HandlerDeps {
  state: ClusterState;
  membership: Membership;
  scaling: ScalingLoop;
  orchestrator: SandboxOrchestrator;
  /** Resolves once the state is loaded; StoreError when it is not soon. */
  whenReady: () => Promise<void>;
  heartbeatIntervalMs: number;
  invocations: AsyncInvocations;
}

export function controlPlaneHandlers(d: HandlerDeps): ServiceHandlers<ControlPlaneService> {
  const heartbeat = { heartbeatIntervalMs: d.heartbeatIntervalMs };
  return {
    registerWorker: async ({ worker, sandboxes }) => {
      await d.whenReady();
      d.membership.registerWorker(worker, sandboxes);
      return heartbeat;
    },
    deregisterWorker: ({ workerId }) => {
      d.membership.deregisterWorker(workerId);
      return Promise.resolve({});
    },
    workerHeartbeat: ({ workerId, cpuPercent, memoryPercent }) =>
      Promise.resolve({ known: d.membership.workerHeartbeat(workerId, cpuPercent, memoryPercent) }),
    sandboxesFailed: ({ failures }) => {
      d.membership.sandboxesFailed(failures);
      return Promise.resolve({});
    },
    registerDataPlane: async ({ dataPlane }) => {
      await d.whenReady();
      await d.membership.registerDataPlane(dataPlane);
      return heartbeat;
    },
    deregisterDataPlane: async ({ dataPlaneId }) => {
      await d.membership.deregisterDataPlane(dataPlaneId);
      return {};
    },
    dataPlaneHeartbeat: ({ dataPlaneId }) =>
      Promise.resolve({ known: d.membership.dataPlaneAlive(dataPlaneId) }),
    reportMetrics: async ({ dataPlaneId, metrics }) => {
      // A new leader may still be loading; these may be what scales a function from zero.
      await d.whenReady();
      if (d.membership.dataPlaneAlive(dataPlaneId)) d.scaling.onMetrics(dataPlaneId, metrics);
      return {};
    },
    evictSandboxes: ({ sandboxes }) => {
      for (const { id, code, reason } of sandboxes) d.orchestrator.evict(id, code, reason);
      return Promise.resolve({});
    },
    lookupFunction: async ({ dataPlaneId, name }) => {
      await d.whenReady();
      const dp = d.state.dataPlanes.get(dataPlaneId);
      if (dp === undefined)
        throw new UnavailableError(`data plane ${dataPlaneId} is not registered here`);
      if (!dp.fanout.introduce(name)) {
        dp.fanout.denied();
        return { found: false };
      }
      await dp.fanout.flushed();
      return { found: true };
    },
    listFunctions: () =>
      Promise.resolve({
        functions: [...d.state.functions.values()]
          .filter((f) => f.deleting === undefined)
          .map((f) => f.route),
      }),
    enqueueInvocation: async (input) => {
      await d.whenReady();
      return { id: (await d.invocations.enqueue(input)).id };
    },
    getInvocation: async ({ id }) => invocationView(await d.invocations.get(id)),
  };
}
