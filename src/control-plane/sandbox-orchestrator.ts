/**
 * Moves each function's sandbox count to what the autoscaler decided:
 * places new sandboxes, creates them in per-worker batches (one RPC per
 * worker per event-loop turn, results streamed back as each is ready),
 * announces ready ones to every data plane, and scales down by draining
 * (data planes stop routing and wait for in-flight requests) before deleting.
 * Nothing here touches the store.
 */
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import { errorCode, errorMessage, NoCapacityError } from '../shared/errors.js';
import { backoffDelayMs } from '../shared/time.js';
import type { CreateResult } from '../rpc/contracts/worker.js';
import type { PlacementPolicy } from './placement/placement-policy.js';
import {
  endpointOf,
  type ClusterState,
  type FunctionRecord,
  type SandboxRecord,
  type WorkerState,
} from './cluster-state.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 15 * 60_000;

/** The workers' sandbox floors, for a no-room message: `25 mCPU and 128 MiB on worker-1`. */
function floorText(nodes: readonly WorkerState[]): string {
  const floors = new Map<string, string[]>();
  for (const w of nodes) {
    const f = w.sandboxFloor ?? { cpuMilli: 0, memoryMib: 0 };
    const key = `${f.cpuMilli} mCPU and ${f.memoryMib} MiB`;
    floors.set(key, [...(floors.get(key) ?? []), w.id]);
  }
  return [...floors]
    .map(
      ([floor, ids]) => `${floor} on ${ids.length > 3 ? `${ids.length} workers` : ids.join(', ')}`,
    )
    .join('; ');
}
const CREATE_DEADLINE_MS = 120_000;
const MAX_BLOCK_MS = 30_000;

export interface OrchestratorOptions {
  state: ClusterState;
  placement: PlacementPolicy;
  clock: Clock;
  logger: Logger;
  drainTimeoutMs?: number;
}

export interface OrchestratorCounters {
  sandboxesCreated: number;
  creationFailures: number;
  sandboxesDeleted: number;
  sandboxesLost: number;
  sandboxesEvicted: number;
}

export class SandboxOrchestrator {
  readonly #state: ClusterState;
  readonly #placement: PlacementPolicy;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #drainTimeoutMs: number;
  readonly #idPrefix = `${Date.now().toString(36)}-`;
  #nextId = 0;
  #workersWithCreates = new Set<WorkerState>();
  #workersWithDeletes = new Set<WorkerState>();
  #drainBatch: SandboxRecord[] = [];
  #flushScheduled = false;
  #noCapacityLoggedAt = 0;
  readonly #retryTimers = new Map<FunctionRecord, NodeJS.Timeout>();
  /** Recent creation latencies (ms, worker-measured), newest last; bounded. */
  readonly creationLatencies: number[] = [];
  readonly counters: OrchestratorCounters = {
    sandboxesCreated: 0,
    creationFailures: 0,
    sandboxesDeleted: 0,
    sandboxesLost: 0,
    sandboxesEvicted: 0,
  };

  constructor(o: OrchestratorOptions) {
    this.#state = o.state;
    this.#placement = o.placement;
    this.#clock = o.clock;
    this.#log = o.logger;
    this.#drainTimeoutMs = o.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  }

  /**
   * Sets the function's desired count and starts creating or draining to
   * reach it. `standby`: the new sandboxes are standby ones (the floor's, see
   * `standby` capability); by default as the last call said (replacements).
   */
  scaleTo(fn: FunctionRecord, desired: number, standby = fn.standby): void {
    fn.desired = desired;
    fn.standby = standby;
    if (fn.deleting !== undefined) return;
    const diff = desired - fn.current;
    if (diff > 0) {
      if (this.#clock.now() < fn.blockedUntil) {
        this.#failQueuedIfNoSandbox(fn);
        return;
      }
      this.#create(fn, diff);
    } else if (diff < 0) {
      this.#scaleDown(fn, -diff);
    }
  }

  /**
   * Drops a sandbox that is gone (died, or its worker failed or left) and
   * tells the data planes. `expected` losses (a worker leaving) log at info.
   */
  lose(id: string, reason: string, expected = false): FunctionRecord | undefined {
    const sb = this.#state.sandboxes.get(id);
    if (sb === undefined) return undefined;
    const fn = this.#forget(sb);
    if (sb.phase === 'ready' || sb.phase === 'draining')
      this.#state.forEachFanout((f) => f.removeEndpoint(id, reason));
    if (fn !== undefined && !expected)
      fn.lastFailure = {
        code: 'BATON_ERR_SANDBOX_EXITED',
        message: `sandbox ${id} ended: ${reason}`,
      };
    this.counters.sandboxesLost++;
    this.#log[expected ? 'info' : 'warn'](
      { sandbox: id, function: sb.function, worker: sb.workerId, reason },
      'sandbox lost',
    );
    return fn;
  }

  /**
   * Deletes a ready sandbox that a data plane stopped sending to (it broke a
   * rule, e.g. the execution time-out) and makes a replacement. Requests
   * still on it end with the sandbox. Unknown or already draining: ignored.
   */
  evict(id: string, code: string, reason: string): FunctionRecord | undefined {
    const sb = this.#state.sandboxes.get(id);
    if (sb === undefined || sb.phase !== 'ready') return undefined;
    const worker = this.#state.workers.get(sb.workerId);
    const fn = this.#forget(sb);
    this.#state.forEachFanout((f) => f.removeEndpoint(id, `evicted: ${reason}`));
    this.counters.sandboxesEvicted++;
    this.#log.warn({ sandbox: id, function: sb.function, reason }, 'sandbox evicted');
    if (worker !== undefined) {
      worker.pendingDeletes.push(id);
      this.#workersWithDeletes.add(worker);
      this.#scheduleFlush();
    }
    if (fn === undefined) return undefined;
    fn.lastFailure = { code, message: `sandbox ${id} was replaced: ${reason}` };
    this.scaleTo(fn, fn.desired);
    return fn;
  }

  /**
   * Registers a sandbox a worker already runs (after a control-plane
   * restart); a standby one (as its worker lists it) takes no capacity, as
   * when it was made.
   */
  adopt(
    worker: WorkerState,
    fn: FunctionRecord,
    listed: { id: string; host: string; port: number; standby?: boolean | undefined },
  ): void {
    const now = this.#clock.now();
    const { id, host, port } = listed;
    const standby = listed.standby === true;
    const sb: SandboxRecord = {
      id,
      function: fn.name,
      workerId: worker.id,
      freshPerRequest: worker.capabilities.freshPerRequest,
      reportsColdStart: worker.capabilities.reportsColdStart,
      standby,
      host,
      port,
      phase: 'ready',
      createdAt: now,
      readyAt: now,
      timings: undefined,
    };
    this.#state.sandboxes.set(id, sb);
    fn.sandboxes.set(id, sb);
    fn.ready++;
    worker.sandboxes.add(id);
    if (!standby) worker.allocate(fn.spec, 1);
    this.#state.forEachFanout((f) => f.addEndpoint(endpointOf(sb)));
  }

  /** Starts draining and deleting every sandbox of a function being deleted; resolves when all are gone. */
  async removeAll(fn: FunctionRecord): Promise<void> {
    for (;;) {
      const live = [...fn.sandboxes.values()];
      if (live.length === 0) return;
      const ready = live.filter((s) => s.phase === 'ready');
      for (const sb of ready) this.#startDrain(fn, sb);
      this.#scheduleFlush();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Asks a worker to delete sandboxes nobody knows about (e.g. of deleted functions). */
  deleteUnknown(worker: WorkerState, ids: string[]): void {
    if (ids.length === 0) return;
    worker.pendingDeletes.push(...ids);
    this.#workersWithDeletes.add(worker);
    this.#scheduleFlush();
  }

  #newId(): string {
    return `sb-${this.#idPrefix}${(this.#nextId++).toString(36)}`;
  }

  #schedulable(): WorkerState[] {
    const out: WorkerState[] = [];
    for (const w of this.#state.workers.values()) out.push(w);
    return out;
  }

  #create(fn: FunctionRecord, n: number): void {
    const nodes = this.#schedulable();
    const standby = fn.standby;
    // A standby sandbox holds nothing until used: it takes no capacity (it still needs a worker).
    const request = standby
      ? { cpuMilli: 0, memoryMib: 0 }
      : { cpuMilli: fn.spec.cpuMilli, memoryMib: fn.spec.memoryMib };
    const now = this.#clock.now();
    for (let i = 0; i < n; i++) {
      const workerId = this.#placement.place(nodes, request);
      const worker = workerId === undefined ? undefined : this.#state.workers.get(workerId);
      if (worker === undefined) {
        const err = new NoCapacityError(
          nodes.length === 0
            ? 'no worker is registered'
            : `no worker has room for another sandbox of "${fn.name}" (it requests ${request.cpuMilli} mCPU and ${request.memoryMib} MiB; a sandbox takes at least ${floorText(nodes)}): ${fn.current} placed`,
        );
        fn.lastFailure = { code: err.code, message: err.message };
        if (now - this.#noCapacityLoggedAt > 5000) {
          this.#noCapacityLoggedAt = now;
          this.#log.warn({ function: fn.name, missing: n - i }, err.message);
        }
        this.#retryLater(fn, 1000);
        return;
      }
      const sb: SandboxRecord = {
        id: this.#newId(),
        function: fn.name,
        workerId: worker.id,
        freshPerRequest: worker.capabilities.freshPerRequest,
        reportsColdStart: worker.capabilities.reportsColdStart,
        standby,
        host: '',
        port: 0,
        phase: 'creating',
        createdAt: now,
        readyAt: undefined,
        timings: undefined,
      };
      this.#state.sandboxes.set(sb.id, sb);
      fn.sandboxes.set(sb.id, sb);
      fn.creating++;
      worker.sandboxes.add(sb.id);
      if (!standby) worker.allocate(fn.spec, 1);
      worker.pendingCreates.push({ id: sb.id, spec: fn.spec, ...(standby ? { standby } : {}) });
      this.#workersWithCreates.add(worker);
    }
    this.#scheduleFlush();
  }

  #scaleDown(fn: FunctionRecord, n: number): void {
    // Newest ready sandboxes go first: the oldest have proven themselves warm.
    const ready = [...fn.sandboxes.values()].filter((s) => s.phase === 'ready');
    ready.sort((a, b) => (b.readyAt ?? 0) - (a.readyAt ?? 0));
    for (const sb of ready.slice(0, n)) this.#startDrain(fn, sb);
    this.#scheduleFlush();
  }

  #startDrain(fn: FunctionRecord, sb: SandboxRecord): void {
    sb.phase = 'draining';
    fn.ready--;
    this.#drainBatch.push(sb);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      for (const w of this.#workersWithCreates) this.#sendCreates(w);
      this.#workersWithCreates.clear();
      if (this.#drainBatch.length > 0) {
        const batch = this.#drainBatch;
        this.#drainBatch = [];
        void this.#drain(batch);
      }
      for (const w of this.#workersWithDeletes) this.#sendDeletes(w);
      this.#workersWithDeletes.clear();
    });
  }

  #sendCreates(worker: WorkerState): void {
    const batch = worker.pendingCreates;
    if (batch.length === 0) return;
    worker.pendingCreates = [];
    const settled = new Set<string>();
    worker.client
      .createSandboxes(
        { sandboxes: batch },
        (r) => {
          settled.add(r.id);
          // A worker busy creating may send its heartbeats late; its answers show it is alive.
          worker.lastHeartbeatAt = this.#clock.now();
          this.#onCreated(r, worker);
        },
        { deadlineMs: CREATE_DEADLINE_MS },
      )
      .catch((err: unknown) => {
        for (const { id } of batch) {
          if (settled.has(id)) continue;
          this.#onCreated(
            { ok: false, id, code: errorCode(err), message: errorMessage(err), retryable: true },
            worker,
          );
        }
      });
  }

  #onCreated(r: CreateResult, worker: WorkerState): void {
    const sb = this.#state.sandboxes.get(r.id);
    if (sb === undefined || sb.phase !== 'creating') {
      // Its worker was declared failed meanwhile: do not leave it running.
      if (r.ok) this.deleteUnknown(worker, [r.id]);
      return;
    }
    const fn = this.#state.functions.get(sb.function)!;
    const now = this.#clock.now();
    fn.creating--;
    if (r.ok) {
      sb.host = r.host;
      sb.port = r.port;
      sb.phase = 'ready';
      sb.readyAt = now;
      sb.timings = r.timings;
      fn.ready++;
      fn.sandboxesCreated++;
      fn.consecutiveFailures = 0;
      fn.blockedUntil = 0;
      this.counters.sandboxesCreated++;
      this.creationLatencies.push(r.timings.totalMs);
      if (this.creationLatencies.length > 1000) this.creationLatencies.splice(0, 500);
      if (fn.deleting !== undefined) {
        this.#startDrain(fn, sb);
        this.#scheduleFlush();
        return;
      }
      this.#state.forEachFanout((f) => f.addEndpoint(endpointOf(sb)));
      return;
    }
    this.counters.creationFailures++;
    this.#forget(sb, false);
    fn.lastFailure = { code: r.code, message: r.message };
    fn.consecutiveFailures++;
    if (!r.retryable) {
      fn.blockedUntil =
        now + Math.min(MAX_BLOCK_MS, 1000 * 2 ** Math.min(fn.consecutiveFailures - 1, 5));
      this.#failQueuedIfNoSandbox(fn);
    }
    this.#retryLater(
      fn,
      Math.max(fn.blockedUntil - now, backoffDelayMs(fn.consecutiveFailures, 100, 5000)),
    );
  }

  #failQueuedIfNoSandbox(fn: FunctionRecord): void {
    if (fn.ready > 0 || fn.lastFailure === undefined) return;
    const { code, message } = fn.lastFailure;
    this.#state.forEachFanout((f) => f.failQueued(fn.name, code, message));
  }

  #retryLater(fn: FunctionRecord, delayMs: number): void {
    if (this.#retryTimers.has(fn)) return;
    const t = setTimeout(() => {
      this.#retryTimers.delete(fn);
      if (this.#state.functions.get(fn.name) === fn) this.scaleTo(fn, fn.desired);
    }, delayMs);
    t.unref();
    this.#retryTimers.set(fn, t);
  }

  async #drain(batch: SandboxRecord[]): Promise<void> {
    const ids = batch.map((s) => s.id);
    await Promise.all(
      [...this.#state.dataPlanes.values()].map(async (dp) => {
        try {
          await dp.fanout.flushed();
          await dp.client.drainSandboxes(
            { ids, timeoutMs: this.#drainTimeoutMs },
            { deadlineMs: this.#drainTimeoutMs + 5000 },
          );
        } catch (err) {
          this.#log.warn(
            { dataPlane: dp.record.id, err: errorMessage(err) },
            'drain failed; deleting anyway',
          );
        }
      }),
    );
    for (const sb of batch) {
      if (this.#state.sandboxes.get(sb.id) !== sb) continue; // lost meanwhile
      const worker = this.#state.workers.get(sb.workerId);
      this.#forget(sb);
      this.counters.sandboxesDeleted++;
      if (worker !== undefined) {
        worker.pendingDeletes.push(sb.id);
        this.#workersWithDeletes.add(worker);
      }
    }
    this.#scheduleFlush();
  }

  #sendDeletes(worker: WorkerState): void {
    const ids = worker.pendingDeletes;
    if (ids.length === 0) return;
    worker.pendingDeletes = [];
    worker.client.deleteSandboxes({ ids }).catch((err: unknown) => {
      this.#log.warn(
        { worker: worker.id, count: ids.length, err: errorMessage(err) },
        'cannot delete sandboxes',
      );
    });
  }

  /** Removes a sandbox from the state and its worker's allocation. */
  #forget(sb: SandboxRecord, countPhase = true): FunctionRecord | undefined {
    this.#state.sandboxes.delete(sb.id);
    const fn = this.#state.functions.get(sb.function);
    if (fn !== undefined && fn.sandboxes.delete(sb.id) && countPhase) {
      if (sb.phase === 'creating') fn.creating--;
      else if (sb.phase === 'ready') fn.ready--;
    }
    const worker = this.#state.workers.get(sb.workerId);
    if (worker !== undefined && worker.sandboxes.delete(sb.id) && fn !== undefined && !sb.standby)
      worker.allocate(fn.spec, -1);
    return fn;
  }
}
