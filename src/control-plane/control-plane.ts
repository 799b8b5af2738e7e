/**
 * The control plane: one process holding the function registry (persisted),
 * the cluster's sandboxes (in memory), the autoscaler tick, placement, health
 * monitoring of workers and data planes, and the push of endpoints to every
 * data plane. Workers and data planes talk to it over the control-plane RPC
 * service; users over the HTTP API (http-api.ts). It starts even when its
 * store cannot be read, and keeps trying until it can; while the store is
 * down later it keeps working from memory and refuses registrations.
 * Leaves out: leader election among several control planes.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import {
  ConflictError,
  FunctionNotFoundError,
  NotFoundError,
  StoreError,
  errorMessage,
} from '../shared/errors.js';
import { backoffDelayMs, sleep } from '../shared/time.js';
import { sameFunctionSpec, type FunctionSpec } from '../shared/function-spec.js';
import type { DataPlaneRecord, WorkerRecord } from '../shared/cluster-objects.js';
import type { ClusterStore } from '../store/store.js';
import { RpcConnection } from '../rpc/client.js';
import { RpcServer } from '../rpc/server.js';
import { controlPlaneService } from '../rpc/contracts/control-plane.js';
import { workerService, type SandboxLog, type SandboxState } from '../rpc/contracts/worker.js';
import { dataPlaneService } from '../rpc/contracts/data-plane.js';
import type { Autoscaler } from './autoscaler/autoscaler.js';
import type { PlacementPolicy } from './placement/placement-policy.js';
import { ClusterState, DataPlaneState, FunctionRecord, WorkerState } from './cluster-state.js';
import { DataPlaneFanout } from './data-plane-fanout.js';
import { SandboxOrchestrator } from './sandbox-orchestrator.js';
import { StoreWatch, type StoreStatus } from './store-watch.js';
import { kpaConfigFor } from './autoscaler/kpa.js';
import type { SupervisedDaemon } from '../shared/supervision.js';

export const DEFAULT_WORKER_TIMEOUT_MS = 15_000;
export const DEFAULT_CP_HEARTBEAT_INTERVAL_MS = 5_000;
export const HEALTH_CHECK_INTERVAL_MS = 1_000;
export const DEFAULT_DELETE_DRAIN_TIMEOUT_MS = 60_000;
/** Longest a registration waits for data planes to learn the function. */
export const PROPAGATION_WAIT_MS = 2_000;
export const STORE_CHECK_INTERVAL_MS = 2_000;
/** Longest a call waits for the control plane to have loaded its state before it is refused. */
const RECOVERY_WAIT_MS = 3_000;

export interface ControlPlaneOptions {
  host: string;
  rpcPort: number;
  store: ClusterStore;
  placement: PlacementPolicy;
  autoscaler: Autoscaler;
  clock: Clock;
  logger: Logger;
  workerTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** `host:port` of a front load balancer; registration replies name it instead of the data planes. */
  frontAddress?: string;
}

export interface FunctionStatus {
  spec: FunctionSpec;
  sandboxes: number;
  creating: number;
  draining: number;
  inflight: number;
  queued: number;
  desired: number;
  sandboxesCreated: number;
  lastFailure: { code: string; message: string } | null;
}

export class ControlPlane implements AsyncDisposable {
  readonly state = new ClusterState();
  readonly #opts: ControlPlaneOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #store: ClusterStore;
  readonly #storeWatch: StoreWatch;
  readonly #autoscaler: Autoscaler;
  readonly #orchestrator: SandboxOrchestrator;
  readonly #rpc: RpcServer;
  readonly #registering = new Map<string, Promise<void>>();
  readonly #workerTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #timers: NodeJS.Timeout[] = [];
  #rpcAddress: AddressInfo | undefined;
  #closing: Promise<void> | undefined;
  /** Set once the state has been loaded from the store. */
  #recovered = false;
  #recovery: Promise<void> = Promise.resolve();
  readonly startedAt: number;
  /** The daemons of this cluster as the supervisor that runs them (`baton up`) last reported them. */
  supervised: SupervisedDaemon[] | undefined;

  private constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#clock = opts.clock;
    this.#store = opts.store;
    this.#storeWatch = new StoreWatch(opts.store, opts.logger, () => opts.clock.now());
    this.#autoscaler = opts.autoscaler;
    this.#workerTimeoutMs = opts.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS;
    this.#heartbeatMs = opts.heartbeatIntervalMs ?? DEFAULT_CP_HEARTBEAT_INTERVAL_MS;
    this.#orchestrator = new SandboxOrchestrator({
      state: this.state,
      placement: opts.placement,
      clock: opts.clock,
      logger: opts.logger,
    });
    this.#rpc = new RpcServer({ logger: opts.logger });
    this.startedAt = opts.clock.now();
  }

  /**
   * Starts serving and loads the store, reconnecting to known workers and
   * data planes. Resolves once loaded, or, when the store cannot be read,
   * at once, loading in the background until it can (`ready` says which).
   */
  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    cp.#mountRpc();
    cp.#rpcAddress = await cp.#rpc.listen(opts.rpcPort, opts.host);
    cp.#timers.push(setInterval(() => cp.#tick(), opts.autoscaler.tickMs));
    cp.#timers.push(setInterval(() => cp.#checkHealth(), HEALTH_CHECK_INTERVAL_MS));
    cp.#timers.push(setInterval(() => void cp.#storeWatch.check(), STORE_CHECK_INTERVAL_MS));
    cp.#recovery = cp.#recoverUntilDone();
    await Promise.race([cp.#recovery, sleep(0)]);
    return cp;
  }

  /** Whether the state has been loaded from the store. */
  get ready(): boolean {
    return this.#recovered;
  }

  get storeStatus(): StoreStatus {
    return this.#storeWatch.status;
  }

  /**
   * Resolves once the state is loaded; rejects with StoreError when it is
   * not within a few seconds (the store cannot be read).
   */
  async whenReady(): Promise<void> {
    if (this.#recovered) return;
    await Promise.race([this.#recovery, sleep(RECOVERY_WAIT_MS)]);
    if (!this.#recovered)
      throw new StoreError(
        `the control plane cannot load its state: ${this.#storeWatch.status.error ?? 'the store does not answer'}`,
      );
  }

  get rpcAddress(): AddressInfo {
    return this.#rpcAddress!;
  }

  get orchestratorCounters() {
    return this.#orchestrator.counters;
  }

  get creationLatencies(): readonly number[] {
    return this.#orchestrator.creationLatencies;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const t of this.#timers) clearInterval(t);
      await this.#rpc.close();
      for (const dp of this.state.dataPlanes.values()) {
        dp.fanout.close();
        await dp.conn.close();
      }
      for (const w of this.state.workers.values()) await w.conn.close();
      await this.#store.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- functions (user API) -------------------------------------------------

  /**
   * Registers a function. Idempotent for an identical spec; ConflictError for
   * a different spec under the same name, or while that name is being deleted.
   */
  async registerFunction(spec: FunctionSpec): Promise<'created' | 'unchanged'> {
    for (;;) {
      const pending = this.#registering.get(spec.name);
      if (pending === undefined) break;
      await pending.catch(() => undefined);
    }
    const existing = this.state.functions.get(spec.name);
    if (existing !== undefined) {
      if (existing.deleting !== undefined) {
        throw new ConflictError(
          `function "${spec.name}" is being deleted; register it again once that finished`,
        );
      }
      if (sameFunctionSpec(existing.spec, spec)) return 'unchanged';
      throw new ConflictError(
        `function "${spec.name}" exists with a different spec; delete it first`,
      );
    }
    const write = this.#storeWatch.call(() => this.#store.putFunction(spec));
    this.#registering.set(spec.name, write);
    try {
      await write;
    } finally {
      this.#registering.delete(spec.name);
    }
    const fn = new FunctionRecord(spec);
    this.state.functions.set(spec.name, fn);
    this.state.forEachFanout((f) => f.upsertFunction(fn.route));
    if (this.#floor(fn) > 0) this.#activate(fn, true);
    // Answer once the data planes route the function, so an invocation right
    // after registration is not a 404. Concurrent registrations share pushes.
    await this.#propagated();
    this.#log.debug({ function: spec.name }, 'function registered');
    return 'created';
  }

  /** Waits (bounded) until every data plane applied the changes made so far. */
  async #propagated(): Promise<void> {
    const all = Promise.all([...this.state.dataPlanes.values()].map((dp) => dp.fanout.flushed()));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>(
      (resolve) => (timer = setTimeout(() => resolve('late'), PROPAGATION_WAIT_MS)),
    );
    const outcome = await Promise.race([all, late]);
    clearTimeout(timer);
    if (outcome === 'late')
      this.#log.warn({ waitedMs: PROPAGATION_WAIT_MS }, 'a data plane is slow to apply updates');
  }

  /**
   * Deletes a function: data planes stop taking its requests and let queued
   * and in-flight ones finish (up to `drainTimeoutMs`), then its sandboxes are
   * drained and deleted, then it is removed from the store and data planes.
   */
  async deleteFunction(
    name: string,
    drainTimeoutMs = DEFAULT_DELETE_DRAIN_TIMEOUT_MS,
  ): Promise<{ remaining: number }> {
    const fn = this.state.functions.get(name);
    if (fn === undefined) throw new FunctionNotFoundError(name);
    let remaining = 0;
    fn.deleting ??= (async () => {
      // Forgotten by the store first: if that fails nothing has changed, and
      // if the control plane dies after it, a restart deletes the sandboxes
      // of a function it does not know.
      try {
        await this.#storeWatch.call(() => this.#store.deleteFunction(name));
      } catch (err) {
        fn.deleting = undefined;
        throw err;
      }
      this.state.active.delete(fn);
      const results = await Promise.all(
        [...this.state.dataPlanes.values()].map(async (dp) => {
          try {
            await dp.fanout.flushed();
            return (
              await dp.client.drainFunction(
                { name, timeoutMs: drainTimeoutMs },
                { deadlineMs: drainTimeoutMs + 5000 },
              )
            ).remaining;
          } catch (err) {
            this.#log.warn(
              { function: name, dataPlane: dp.record.id, err: errorMessage(err) },
              'drain of a function failed',
            );
            return 0;
          }
        }),
      );
      remaining = results.reduce((a, b) => a + b, 0);
      await this.#orchestrator.removeAll(fn);
      this.state.functions.delete(name);
      this.state.forEachFanout((f) => f.removeFunction(name));
      await this.#propagated();
      this.#log.info({ function: name, remaining }, 'function deleted');
    })();
    await fn.deleting;
    return { remaining };
  }

  listFunctions(): FunctionStatus[] {
    return [...this.state.functions.values()].map((fn) => this.#statusOf(fn));
  }

  getFunction(name: string): FunctionStatus & { sandboxList: Array<Record<string, unknown>> } {
    const fn = this.state.functions.get(name);
    if (fn === undefined) throw new FunctionNotFoundError(name);
    const sandboxList = [...fn.sandboxes.values()].map((sb) => ({
      id: sb.id,
      worker: sb.workerId,
      address: sb.phase === 'creating' ? null : `${sb.host}:${sb.port}`,
      state: sb.phase,
      readyAt: sb.readyAt === undefined ? null : new Date(sb.readyAt).toISOString(),
      creationMs: sb.timings === undefined ? null : Math.round(sb.timings.totalMs * 100) / 100,
    }));
    return { ...this.#statusOf(fn), sandboxList };
  }

  /**
   * Output of the function's sandboxes (running and recently exited) from
   * every worker, or of one sandbox. Workers that do not answer are named in
   * `unreachable` rather than failing the whole answer.
   */
  async functionLogs(
    name: string,
    sandbox: string | undefined,
  ): Promise<{
    sandboxes: Array<SandboxLog & { worker: string }>;
    unreachable: Array<{ worker: string; reason: string }>;
  }> {
    if (!this.state.functions.has(name)) throw new FunctionNotFoundError(name);
    const workers = [...this.state.workers.values()];
    const answers = await Promise.allSettled(
      workers.map((w) =>
        w.client.sandboxLogs(
          { function: name, ...(sandbox === undefined ? {} : { sandbox }) },
          { deadlineMs: 5_000 },
        ),
      ),
    );
    const sandboxes: Array<SandboxLog & { worker: string }> = [];
    const unreachable: Array<{ worker: string; reason: string }> = [];
    answers.forEach((a, i) => {
      const worker = workers[i]!.record.id;
      if (a.status === 'fulfilled')
        for (const s of a.value.sandboxes) sandboxes.push({ ...s, worker });
      else unreachable.push({ worker, reason: errorMessage(a.reason) });
    });
    if (sandbox !== undefined && sandboxes.length === 0 && unreachable.length === 0)
      throw new NotFoundError(
        `no sandbox ${sandbox} of function "${name}" (running or recently exited)`,
      );
    return { sandboxes, unreachable };
  }

  /** Where clients invoke: the front load balancer, else every data plane's proxy address. */
  invokeAddresses(): string {
    if (this.#opts.frontAddress !== undefined) return this.#opts.frontAddress;
    return [...this.state.dataPlanes.values()]
      .map((dp) => `${dp.record.host}:${dp.record.proxyPort}`)
      .join(';');
  }

  #statusOf(fn: FunctionRecord): FunctionStatus {
    return {
      spec: fn.spec,
      sandboxes: fn.ready,
      creating: fn.creating,
      draining: fn.sandboxes.size - fn.ready - fn.creating,
      inflight: fn.inflight,
      queued: fn.queued,
      desired: fn.desired,
      sandboxesCreated: fn.sandboxesCreated,
      lastFailure: fn.lastFailure ?? null,
    };
  }

  // ---- autoscaling ----------------------------------------------------------

  /**
   * Sandboxes a function keeps however idle it is: its minScale, and at least
   * one while every worker can hold standby sandboxes (the `standby` capability: that
   * sandbox keeps no isolate warm, only the compiled code behind a port, and
   * spares invocations the round trip to the control plane).
   */
  #floor(fn: FunctionRecord): number {
    let standby = this.state.workers.size > 0;
    for (const w of this.state.workers.values()) standby &&= w.capabilities.standby;
    return Math.max(fn.spec.minScale, standby ? 1 : 0);
  }

  /** Scales to `wanted`, or the floor when above it; what only the standby floor wants is made standby. */
  #scaleWithFloor(fn: FunctionRecord, wanted: number, floor = this.#floor(fn)): void {
    const standby = wanted < floor && fn.spec.minScale < floor;
    this.#orchestrator.scaleTo(fn, Math.max(floor, wanted), standby);
  }

  #activate(fn: FunctionRecord, reconcile: boolean): void {
    const now = this.#clock.now();
    fn.scaler ??= this.#autoscaler.createScaler(fn.spec, now);
    this.state.active.add(fn);
    if (reconcile) this.#scaleWithFloor(fn, fn.desired);
  }

  /** Functions that must keep sandboxes (see #floor) and have none wanted get them. */
  #activateFloors(): void {
    for (const fn of this.state.functions.values())
      if (fn.deleting === undefined && fn.desired < this.#floor(fn)) this.#activate(fn, true);
  }

  #tick(): void {
    const now = this.#clock.now();
    for (const fn of this.state.active) {
      if (fn.deleting !== undefined) continue;
      fn.scaler ??= this.#autoscaler.createScaler(fn.spec, now);
      const wanted = fn.scaler.decide(now, fn.inflight, fn.current);
      const floor = this.#floor(fn);
      const desired = Math.max(floor, wanted);
      if (desired !== fn.current || desired !== fn.desired) this.#scaleWithFloor(fn, wanted, floor);
      if (desired === 0 && fn.sandboxes.size === 0 && fn.inflight === 0) {
        this.state.active.delete(fn);
        fn.scaler = undefined;
      }
    }
  }

  #onMetrics(
    dataPlaneId: string,
    metrics: Array<{ function: string; inflight: number; queued: number }>,
  ): void {
    const now = this.#clock.now();
    for (const m of metrics) {
      const fn = this.state.functions.get(m.function);
      if (fn === undefined || fn.deleting !== undefined) continue;
      fn.setMetric(dataPlaneId, m.inflight, m.queued);
      if (fn.inflight === 0) {
        fn.scaler?.observe(now, 0);
        continue;
      }
      if (fn.scaler === undefined) this.#activate(fn, false);
      fn.scaler!.observe(now, fn.inflight);
      if (fn.current === 0) {
        // Scale from zero at once, not at the next tick.
        this.#orchestrator.scaleTo(fn, Math.max(fn.desired, fn.scaler!.scaleFromZero(now)), false);
      } else if (fn.queued > 0) {
        // A burst behind busy sandboxes: likewise at once when it is over the panic threshold.
        const desired = fn.scaler!.onQueued(now, fn.inflight, fn.current);
        if (desired !== undefined && desired > fn.current)
          this.#orchestrator.scaleTo(fn, desired, false);
      }
    }
  }

  // ---- health ----------------------------------------------------------------

  #checkHealth(): void {
    const now = this.#clock.now();
    for (const w of [...this.state.workers.values()]) {
      if (now - w.lastHeartbeatAt > this.#workerTimeoutMs) {
        this.#failWorker(
          w,
          `no heartbeat for ${Math.round((now - w.lastHeartbeatAt) / 1000)} s`,
          true,
        );
      }
    }
    for (const dp of [...this.state.dataPlanes.values()]) {
      if (now - dp.lastHeartbeatAt > this.#workerTimeoutMs) {
        this.#log.warn({ dataPlane: dp.record.id }, 'data plane silent; dropping it');
        void this.#removeDataPlane(dp);
      }
    }
  }

  /** Makes the worker unschedulable, forgets its sandboxes and recreates them elsewhere. */
  #failWorker(w: WorkerState, reason: string, failed: boolean): void {
    if (this.state.workers.get(w.id) !== w) return;
    this.state.workers.delete(w.id);
    if (failed)
      this.#log.warn({ worker: w.id, reason, sandboxes: w.sandboxes.size }, 'worker failed');
    const affected = new Set<FunctionRecord>();
    for (const id of [...w.sandboxes]) {
      const fn = this.#orchestrator.lose(id, `worker ${w.id}: ${reason}`, !failed);
      if (fn !== undefined) affected.add(fn);
    }
    void w.conn.close();
    this.#storeWatch.defer(`worker:${w.id}`, () => this.#store.deleteWorker(w.id));
    for (const fn of affected) this.#orchestrator.scaleTo(fn, fn.desired);
  }

  async #removeDataPlane(dp: DataPlaneState): Promise<void> {
    if (this.state.dataPlanes.get(dp.record.id) !== dp) return;
    this.state.dataPlanes.delete(dp.record.id);
    dp.fanout.close();
    for (const fn of this.state.functions.values())
      if (fn.metrics.has(dp.record.id)) fn.dropMetric(dp.record.id);
    await dp.conn.close();
    const id = dp.record.id;
    this.#storeWatch.defer(`data-plane:${id}`, () => this.#store.deleteDataPlane(id));
  }

  // ---- workers and data planes ---------------------------------------------------------

  #connectWorker(record: WorkerRecord): WorkerState {
    const conn = new RpcConnection({
      host: record.host,
      port: record.rpcPort,
      logger: this.#log,
      peerName: `worker ${record.id}`,
    });
    return new WorkerState(record, conn, conn.client(workerService), this.#clock.now());
  }

  #connectDataPlane(record: DataPlaneRecord): DataPlaneState {
    const conn = new RpcConnection({
      host: record.host,
      port: record.rpcPort,
      logger: this.#log,
      peerName: `data plane ${record.id}`,
    });
    const client = conn.client(dataPlaneService);
    const fanout = new DataPlaneFanout(
      client,
      () => this.state.snapshot(),
      this.#log.child({ dataPlane: record.id }),
    );
    return new DataPlaneState(record, conn, client, fanout, this.#clock.now());
  }

  /** The worker's own list of sandboxes is the truth: adopt what we do not know, forget what it lacks. */
  #reconcileWorkerSandboxes(w: WorkerState, reported: SandboxState[]): void {
    const seen = new Set<string>();
    const unknown: string[] = [];
    const now = this.#clock.now();
    for (const s of reported) {
      seen.add(s.id);
      if (this.state.sandboxes.has(s.id)) continue;
      const fn = this.state.functions.get(s.function);
      if (fn === undefined || fn.deleting !== undefined) {
        unknown.push(s.id);
        continue;
      }
      this.#orchestrator.adopt(w, fn, s);
      this.#activate(fn, false);
      fn.desired = Math.max(fn.desired, fn.current);
      // Metrics were lost with the old control plane: keep recovered sandboxes one stable window.
      fn.scaler!.holdScaleDown(now + kpaConfigFor(fn.spec).stableWindowMs);
    }
    for (const id of [...w.sandboxes]) {
      const sb = this.state.sandboxes.get(id);
      if (sb !== undefined && sb.phase !== 'creating' && !seen.has(id)) {
        const fn = this.#orchestrator.lose(id, 'not running on its worker any more');
        if (fn !== undefined) this.#orchestrator.scaleTo(fn, fn.desired);
      }
    }
    if (unknown.length > 0) {
      this.#log.info(
        { worker: w.id, count: unknown.length },
        'deleting sandboxes of unknown functions',
      );
      this.#orchestrator.deleteUnknown(w, unknown);
    }
  }

  /** Loads the state, retrying with back-off while the store cannot be read. */
  async #recoverUntilDone(): Promise<void> {
    for (let attempt = 1; this.#closing === undefined; attempt++) {
      try {
        await this.#storeWatch.call(() => this.#recover());
        this.#recovered = true;
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 10 === 0)
          this.#log.error(
            { err: errorMessage(err), attempts: attempt },
            'cannot load the state from the store; retrying',
          );
        await sleep(backoffDelayMs(attempt, 200, 2000));
      }
    }
  }

  /** Loads functions, workers and data planes; changes nothing unless every read succeeded. */
  async #recover(): Promise<void> {
    const [functions, workers, dataPlanes] = await Promise.all([
      this.#store.listFunctions(),
      this.#store.listWorkers(),
      this.#store.listDataPlanes(),
    ]);
    for (const spec of functions) {
      const fn = new FunctionRecord(spec);
      this.state.functions.set(spec.name, fn);
    }
    for (const record of dataPlanes) {
      const dp = this.#connectDataPlane(record);
      this.state.dataPlanes.set(record.id, dp);
      dp.fanout.resync();
    }
    const listed = workers.map((record) => {
      const w = this.#connectWorker(record);
      this.state.workers.set(record.id, w);
      return w.client
        .listSandboxes({}, { deadlineMs: 3000 })
        .then(({ sandboxes }) => {
          if (this.state.workers.get(record.id) === w) this.#reconcileWorkerSandboxes(w, sandboxes);
        })
        .catch((err: unknown) =>
          this.#log.info(
            { worker: record.id, err: errorMessage(err) },
            'stored worker not reachable yet',
          ),
        );
    });
    // Floors once the workers said what they run: made before, they doubled
    // the sandboxes the workers still had (a function's standby, its minScale).
    if (listed.length === 0) this.#activateFloors();
    else
      void Promise.allSettled(listed).then(() => {
        if (this.#closing === undefined) this.#activateFloors();
      });
    this.#log.info(
      {
        functions: functions.length,
        workers: workers.length,
        dataPlanes: dataPlanes.length,
        store: this.#store.kind,
      },
      'state recovered from the store',
    );
  }

  #mountRpc(): void {
    this.#rpc.mount(controlPlaneService, {
      registerWorker: async ({ worker, sandboxes }) => {
        await this.whenReady();
        let w = this.state.workers.get(worker.id);
        const changed =
          w === undefined || w.record.host !== worker.host || w.record.rpcPort !== worker.rpcPort;
        if (w !== undefined && changed)
          this.#failWorker(w, 'registered again at another address', false);
        if (w === undefined || changed) {
          this.#storeWatch.defer(`worker:${worker.id}`, () => this.#store.putWorker(worker));
          w = this.#connectWorker(worker);
          this.state.workers.set(worker.id, w);
          this.#log.info(
            {
              worker: worker.id,
              address: `${worker.host}:${worker.rpcPort}`,
              runtime: worker.runtime,
            },
            'worker registered',
          );
        } else {
          w.record = worker;
          w.lastHeartbeatAt = this.#clock.now();
        }
        this.#reconcileWorkerSandboxes(w, sandboxes);
        this.#activateFloors();
        // Functions waiting for capacity can use the new worker now.
        for (const fn of this.state.active)
          if (fn.desired > fn.current) this.#orchestrator.scaleTo(fn, fn.desired);
        return { heartbeatIntervalMs: this.#heartbeatMs };
      },
      deregisterWorker: ({ workerId }) => {
        const w = this.state.workers.get(workerId);
        if (w !== undefined) {
          this.#log.info({ worker: workerId }, 'worker deregistered');
          this.#failWorker(w, 'deregistered', false);
        }
        return Promise.resolve({});
      },
      workerHeartbeat: ({ workerId, cpuPercent, memoryPercent }) => {
        const w = this.state.workers.get(workerId);
        if (w === undefined) return Promise.resolve({ known: false });
        w.lastHeartbeatAt = this.#clock.now();
        w.cpuPercent = cpuPercent;
        w.memoryPercent = memoryPercent;
        return Promise.resolve({ known: true });
      },
      sandboxesFailed: ({ failures }) => {
        for (const f of failures) {
          const fn = this.#orchestrator.lose(f.id, f.reason);
          if (fn !== undefined) this.#orchestrator.scaleTo(fn, fn.desired);
        }
        return Promise.resolve({});
      },
      registerDataPlane: async ({ dataPlane }) => {
        await this.whenReady();
        let dp = this.state.dataPlanes.get(dataPlane.id);
        const changed =
          dp === undefined ||
          dp.record.host !== dataPlane.host ||
          dp.record.rpcPort !== dataPlane.rpcPort ||
          dp.record.proxyPort !== dataPlane.proxyPort;
        if (dp !== undefined && changed) await this.#removeDataPlane(dp);
        if (dp === undefined || changed) {
          this.#storeWatch.defer(`data-plane:${dataPlane.id}`, () =>
            this.#store.putDataPlane(dataPlane),
          );
          dp = this.#connectDataPlane(dataPlane);
          this.state.dataPlanes.set(dataPlane.id, dp);
          this.#log.info(
            { dataPlane: dataPlane.id, proxy: `${dataPlane.host}:${dataPlane.proxyPort}` },
            'data plane registered',
          );
        }
        dp.lastHeartbeatAt = this.#clock.now();
        dp.fanout.resync();
        return { heartbeatIntervalMs: this.#heartbeatMs };
      },
      deregisterDataPlane: async ({ dataPlaneId }) => {
        const dp = this.state.dataPlanes.get(dataPlaneId);
        if (dp !== undefined) await this.#removeDataPlane(dp);
        return {};
      },
      dataPlaneHeartbeat: ({ dataPlaneId }) => {
        const dp = this.state.dataPlanes.get(dataPlaneId);
        if (dp === undefined) return Promise.resolve({ known: false });
        dp.lastHeartbeatAt = this.#clock.now();
        return Promise.resolve({ known: true });
      },
      reportMetrics: ({ dataPlaneId, metrics }) => {
        const dp = this.state.dataPlanes.get(dataPlaneId);
        if (dp !== undefined) {
          dp.lastHeartbeatAt = this.#clock.now();
          this.#onMetrics(dataPlaneId, metrics);
        }
        return Promise.resolve({});
      },
      evictSandboxes: ({ sandboxes }) => {
        for (const { id, code, reason } of sandboxes) this.#orchestrator.evict(id, code, reason);
        return Promise.resolve({});
      },
      listFunctions: () =>
        Promise.resolve({
          functions: [...this.state.functions.values()]
            .filter((f) => f.deleting === undefined)
            .map((f) => f.route),
        }),
    });
  }
}
