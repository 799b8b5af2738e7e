/**
 * Workers and data planes as members of the cluster: they register (again
 * whenever the control plane has forgotten them) and send heartbeats; one
 * that is silent past the time-out is failed, its sandboxes removed from the
 * data planes and replaced elsewhere. A worker's own list of sandboxes is
 * the truth about what it runs (reconcile). Their records are written to the
 * store for recovery only, so the writes wait for the store when it is down.
 */
import type { Logger } from '../shared/logger.js';
import { processGone } from '../shared/port-probe.js';
import type { Clock } from '../shared/clock.js';
import type { DataPlaneRecord, WorkerRecord } from '../shared/cluster-objects.js';
import type { ClusterStore } from '../store/store.js';
import type { RpcTransport } from '../rpc/transport.js';
import { workerService, type SandboxState } from '../rpc/contracts/worker.js';
import { dataPlaneService } from '../rpc/contracts/data-plane.js';
import {
  DataPlaneState,
  endpointOf,
  WorkerState,
  type ClusterState,
  type FunctionRecord,
  type SandboxRecord,
} from './cluster-state.js';
import { DataPlaneFanout, type FunctionView, type Snapshot } from './data-plane-fanout.js';
import type { Endpoint, FunctionRoute } from '../rpc/contracts/common.js';
import type { SandboxOrchestrator } from './sandbox-orchestrator.js';
import type { ScalingLoop } from './scaling-loop.js';
import type { StoreWatch } from './store-watch.js';

/** How long an idle function's sandboxes lost with a worker wait to be replaced. */
const IDLE_REPLACEMENT_DELAY_MS = 1_000;

export interface MembershipOptions {
  state: ClusterState;
  orchestrator: SandboxOrchestrator;
  scaling: ScalingLoop;
  store: ClusterStore;
  storeWatch: StoreWatch;
  transport: RpcTransport;
  clock: Clock;
  logger: Logger;
  /** A worker or data plane silent this long is failed. */
  timeoutMs: number;
}

export class Membership {
  readonly #o: MembershipOptions;
  readonly #state: ClusterState;
  readonly #log: Logger;

  constructor(options: MembershipOptions) {
    this.#o = options;
    this.#state = options.state;
    this.#log = options.logger;
  }

  // ---- workers ---------------------------------------------------------------

  /** A worker (re)registers with the sandboxes it runs; they are adopted or deleted. */
  registerWorker(worker: WorkerRecord, sandboxes: SandboxState[]): void {
    let w = this.#state.workers.get(worker.id);
    const changed =
      w === undefined || w.record.host !== worker.host || w.record.rpcPort !== worker.rpcPort;
    if (w !== undefined && changed)
      this.failWorker(w, 'registered again at another address', false);
    if (w === undefined || changed) {
      this.#persist(`worker:${worker.id}`, (s) => s.putWorker(worker));
      w = this.connectWorker(worker);
      this.#state.workers.set(worker.id, w);
      this.#log.info(
        { worker: worker.id, address: `${worker.host}:${worker.rpcPort}`, runtime: worker.runtime },
        'worker registered',
      );
    } else {
      w.record = worker;
      w.lastHeartbeatAt = this.#o.clock.now();
    }
    this.reconcile(w, sandboxes);
    this.#o.scaling.activateFloors();
    // Functions waiting for capacity can use the new worker now.
    this.#o.scaling.retryShort();
  }

  /** False when the control plane does not know the worker (it should register again). */
  workerHeartbeat(workerId: string, cpuPercent: number, memoryPercent: number): boolean {
    const w = this.#state.workers.get(workerId);
    if (w === undefined) return false;
    w.lastHeartbeatAt = this.#o.clock.now();
    w.cpuPercent = cpuPercent;
    w.memoryPercent = memoryPercent;
    return true;
  }

  deregisterWorker(workerId: string): void {
    const w = this.#state.workers.get(workerId);
    if (w === undefined) return;
    this.#log.info({ worker: workerId }, 'worker deregistered');
    this.failWorker(w, 'deregistered', false);
  }

  /** Sandboxes a worker reports dead: gone, and replaced. */
  sandboxesFailed(failures: Array<{ id: string; reason: string }>): void {
    for (const f of failures) {
      const fn = this.#o.orchestrator.lose(f.id, f.reason);
      if (fn !== undefined) this.#o.orchestrator.scaleTo(fn, fn.desired);
    }
  }

  /**
   * Makes the worker unschedulable, forgets its sandboxes and recreates them
   * elsewhere. `failed`: it stopped answering (logged as a failure), rather
   * than leaving.
   */
  failWorker(w: WorkerState, reason: string, failed: boolean): void {
    if (this.#state.workers.get(w.id) !== w) return;
    this.#state.workers.delete(w.id);
    if (failed)
      this.#log.warn({ worker: w.id, reason, sandboxes: w.sandboxes.size }, 'worker failed');
    const affected = new Set<FunctionRecord>();
    for (const id of [...w.sandboxes]) {
      const fn = this.#o.orchestrator.lose(id, `worker ${w.id}: ${reason}`, !failed);
      if (fn !== undefined) affected.add(fn);
    }
    void w.conn.close();
    this.#persist(`worker:${w.id}`, (s) => s.deleteWorker(w.id));
    // Replaced at once where requests wait or a floor is broken; an idle function's
    // a moment later, so that its creations do not queue ahead of cold starts.
    for (const fn of affected) {
      if (fn.inflight > 0 || fn.current < this.#o.scaling.floor(fn))
        this.#o.orchestrator.scaleTo(fn, fn.desired);
      else {
        // What it had; meanwhile the autoscaler, seeing no sandbox and no request, may want none.
        const had = fn.desired;
        setTimeout(() => {
          if (this.#state.functions.get(fn.spec.name) === fn && fn.deleting === undefined)
            this.#o.orchestrator.scaleTo(fn, Math.max(fn.desired, had));
        }, IDLE_REPLACEMENT_DELAY_MS).unref();
      }
    }
  }

  /**
   * Connects to a worker and keeps the connection; when it drops and the
   * worker's port then refuses connections, its process is gone: failed at
   * once, without waiting out the heartbeat time-out (which still covers a
   * lost host or a hung process).
   */
  connectWorker(record: WorkerRecord): WorkerState {
    const conn = this.#o.transport.connect({
      host: record.host,
      port: record.rpcPort,
      logger: this.#log,
      peerName: `worker ${record.id}`,
      onSessionLost: () => void this.#checkGone(record.id),
    });
    return new WorkerState(record, conn, conn.client(workerService), this.#o.clock.now());
  }

  async #checkGone(workerId: string): Promise<void> {
    const w = this.#state.workers.get(workerId);
    if (w === undefined) return;
    const known = () => this.#state.workers.get(workerId) === w;
    if (await processGone(w.record.host, w.record.rpcPort, known))
      this.failWorker(w, 'its RPC port refuses connections', true);
  }

  /** The worker's own list of sandboxes is the truth: adopt what we do not know, forget what it lacks. */
  reconcile(w: WorkerState, reported: SandboxState[]): void {
    const seen = new Set<string>();
    const unknown: string[] = [];
    for (const s of reported) {
      seen.add(s.id);
      if (this.#state.sandboxes.has(s.id)) continue;
      const fn = this.#state.functions.get(s.function);
      if (fn === undefined || fn.deleting !== undefined) {
        unknown.push(s.id);
        continue;
      }
      this.#o.orchestrator.adopt(w, fn, s);
      // Metrics were lost with the old control plane: keep recovered sandboxes one stable window.
      this.#o.scaling.holdRecovered(fn);
    }
    for (const id of [...w.sandboxes]) {
      const sb = this.#state.sandboxes.get(id);
      if (sb !== undefined && sb.phase !== 'creating' && !seen.has(id)) {
        const fn = this.#o.orchestrator.lose(id, 'not running on its worker any more');
        if (fn !== undefined) this.#o.orchestrator.scaleTo(fn, fn.desired);
      }
    }
    if (unknown.length > 0) {
      this.#log.info(
        { worker: w.id, count: unknown.length },
        'deleting sandboxes of unknown functions',
      );
      this.#o.orchestrator.deleteUnknown(w, unknown);
    }
  }

  // ---- data planes -------------------------------------------------------------

  /** A data plane (re)registers; it is then sent the whole state. */
  async registerDataPlane(record: DataPlaneRecord): Promise<void> {
    let dp = this.#state.dataPlanes.get(record.id);
    const changed =
      dp === undefined ||
      dp.record.host !== record.host ||
      dp.record.rpcPort !== record.rpcPort ||
      dp.record.proxyPort !== record.proxyPort;
    if (dp !== undefined && changed) await this.removeDataPlane(dp);
    if (dp === undefined || changed) {
      this.#persist(`data-plane:${record.id}`, (s) => s.putDataPlane(record));
      dp = this.connectDataPlane(record);
      this.#state.dataPlanes.set(record.id, dp);
      this.#log.info(
        { dataPlane: record.id, proxy: `${record.host}:${record.proxyPort}` },
        'data plane registered',
      );
    }
    dp.lastHeartbeatAt = this.#o.clock.now();
    dp.fanout.resync();
  }

  /** False when the control plane does not know the data plane (it should register again). */
  dataPlaneAlive(dataPlaneId: string): boolean {
    const dp = this.#state.dataPlanes.get(dataPlaneId);
    if (dp === undefined) return false;
    dp.lastHeartbeatAt = this.#o.clock.now();
    return true;
  }

  async deregisterDataPlane(dataPlaneId: string): Promise<void> {
    const dp = this.#state.dataPlanes.get(dataPlaneId);
    if (dp !== undefined) await this.removeDataPlane(dp);
  }

  async removeDataPlane(dp: DataPlaneState): Promise<void> {
    if (this.#state.dataPlanes.get(dp.record.id) !== dp) return;
    this.#state.dataPlanes.delete(dp.record.id);
    dp.fanout.close();
    const now = this.#o.clock.now();
    for (const fn of this.#state.functions.values()) fn.dropMetric(dp.record.id, now);
    await dp.conn.close();
    const id = dp.record.id;
    this.#persist(`data-plane:${id}`, (s) => s.deleteDataPlane(id));
  }

  connectDataPlane(record: DataPlaneRecord): DataPlaneState {
    const conn = this.#o.transport.connect({
      host: record.host,
      port: record.rpcPort,
      logger: this.#log,
      peerName: `data plane ${record.id}`,
    });
    const client = conn.client(dataPlaneService);
    const fanout = new DataPlaneFanout(
      client,
      {
        snapshot: () => fullView(this.#state),
        view: (name) => functionView(this.#state, name),
      },
      this.#log.child({ dataPlane: record.id }),
    );
    return new DataPlaneState(record, conn, client, fanout, this.#o.clock.now());
  }

  // ---- health ------------------------------------------------------------------

  /** Fails the workers and drops the data planes that have been silent too long. */
  checkHealth(): void {
    const now = this.#o.clock.now();
    const timeoutMs = this.#o.timeoutMs;
    for (const w of [...this.#state.workers.values()])
      if (now - w.lastHeartbeatAt > timeoutMs)
        this.failWorker(
          w,
          `no heartbeat for ${Math.round((now - w.lastHeartbeatAt) / 1000)} s`,
          true,
        );
    for (const dp of [...this.#state.dataPlanes.values()]) {
      if (now - dp.lastHeartbeatAt > timeoutMs) {
        this.#log.warn({ dataPlane: dp.record.id }, 'data plane silent; dropping it');
        void this.removeDataPlane(dp);
      }
    }
  }

  /** Closes every connection to a member. */
  async close(): Promise<void> {
    for (const dp of this.#state.dataPlanes.values()) {
      dp.fanout.close();
      await dp.conn.close();
    }
    for (const w of this.#state.workers.values()) await w.conn.close();
  }

  /** A record written for recovery: it waits for the store while the store is down. */
  #persist(key: string, write: (store: ClusterStore) => Promise<unknown>): void {
    this.#o.storeWatch.defer(key, () => write(this.#o.store));
  }
}

/** Everything a data plane needs after it (re)registers. */
function fullView(state: ClusterState): Snapshot {
  const functions: FunctionRoute[] = [];
  for (const fn of state.functions.values())
    if (fn.deleting === undefined) functions.push(fn.route);
  return { functions, endpoints: readyEndpoints(state.sandboxes.values()) };
}

/** A function as a data plane first learns it; undefined when it is not held (or being deleted). */
function functionView(state: ClusterState, name: string): FunctionView | undefined {
  const fn = state.functions.get(name);
  if (fn === undefined || fn.deleting !== undefined) return undefined;
  return { route: fn.route, endpoints: readyEndpoints(fn.sandboxes.values()) };
}

function readyEndpoints(sandboxes: Iterable<SandboxRecord>): Endpoint[] {
  const endpoints: Endpoint[] = [];
  for (const sb of sandboxes) if (sb.phase === 'ready') endpoints.push(endpointOf(sb));
  return endpoints;
}
