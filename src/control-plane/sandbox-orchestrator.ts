/**
 * Moves each function's sandbox count to what the autoscaler decided:
 * places new sandboxes, has them created in per-worker batches
 * (worker-calls.ts), announces ready ones to every data plane, and scales
 * down by draining (data planes stop routing and wait for in-flight
 * requests) before deleting. Also drops sandboxes that are gone, replaces
 * evicted ones, reclaims idle sandboxes of other functions when nothing
 * fits (reclaim.ts), and adopts those a worker already runs. Nothing here
 * touches the store.
 */
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import { errorMessage, NoCapacityError } from '../shared/errors.js';
import { backoffDelayMs } from '../shared/time.js';
import type { CreateResult } from '../rpc/contracts/worker.js';
import type { PlacementPolicy, PlacementRequest } from './placement/placement-policy.js';
import {
  endpointOf,
  type ClusterState,
  type FunctionRecord,
  type SandboxRecord,
  type WorkerState,
} from './cluster-state.js';
import { WorkerCalls } from './worker-calls.js';
import { IdleSandboxes } from './reclaim.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 15 * 60_000;
/** A function whose sandboxes fit nowhere is tried again after this long. */
const NO_ROOM_RETRY_MS = 1000;
/**
 * Reclaimed sandboxes are drained together, this long after the first: one
 * call per data plane for the several that cold starts reclaim meanwhile,
 * not one per cold start (their room is given back at once either way).
 */
const RECLAIM_DRAIN_DELAY_MS = 25;

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
  sandboxesReclaimed: number;
}

export class SandboxOrchestrator {
  readonly #state: ClusterState;
  readonly #placement: PlacementPolicy;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #drainTimeoutMs: number;
  readonly #calls: WorkerCalls;
  readonly #idPrefix = `${Date.now().toString(36)}-`;
  #nextId = 0;
  #drainBatch: SandboxRecord[] = [];
  #reclaimed: SandboxRecord[] = [];
  #reclaimTimer: NodeJS.Timeout | undefined;
  #noCapacityLoggedAt = 0;
  readonly #retryTimers = new Map<FunctionRecord, NodeJS.Timeout>();
  readonly #idle = new IdleSandboxes();
  /** Recent creation latencies (ms, worker-measured), newest last; bounded. */
  readonly creationLatencies: number[] = [];
  readonly counters: OrchestratorCounters = {
    sandboxesCreated: 0,
    creationFailures: 0,
    sandboxesDeleted: 0,
    sandboxesLost: 0,
    sandboxesEvicted: 0,
    sandboxesReclaimed: 0,
  };

  constructor(o: OrchestratorOptions) {
    this.#state = o.state;
    this.#placement = o.placement;
    this.#clock = o.clock;
    this.#log = o.logger;
    this.#drainTimeoutMs = o.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.#calls = new WorkerCalls(o.clock, o.logger, (r, w) => this.#onCreated(r, w));
    this.#calls.onFlush(() => {
      if (this.#drainBatch.length === 0) return;
      const batch = this.#drainBatch;
      this.#drainBatch = [];
      void this.#drain(batch);
    });
  }

  /**
   * Sets the function's desired count and starts creating or draining to
   * reach it. `standby`: the new sandboxes are standby ones (the floor's, the
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
    const fn = this.#state.removeSandbox(sb);
    const worker = this.#state.workers.get(sb.workerId);
    // Creations held for the room it kept (a reclaimed sandbox's) may go now.
    if (worker !== undefined) this.#calls.resume(worker);
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
    const fn = this.#state.removeSandbox(sb);
    this.#state.forEachFanout((f) => f.removeEndpoint(id, `evicted: ${reason}`));
    this.counters.sandboxesEvicted++;
    this.#log.warn({ sandbox: id, function: sb.function, reason }, 'sandbox evicted');
    if (worker !== undefined) this.#calls.delete(worker, [id]);
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
    const sb: SandboxRecord = {
      id: listed.id,
      function: fn.name,
      workerId: worker.id,
      freshPerRequest: worker.capabilities.freshPerRequest,
      reportsColdStart: worker.capabilities.reportsColdStart,
      standby: listed.standby === true,
      host: listed.host,
      port: listed.port,
      phase: 'ready',
      createdAt: now,
      readyAt: now,
      timings: undefined,
    };
    this.#state.addSandbox(sb, fn, worker);
    this.#state.forEachFanout((f) => f.addEndpoint(endpointOf(sb)));
  }

  /** Starts draining and deleting every sandbox of a function being deleted; resolves when all are gone. */
  async removeAll(fn: FunctionRecord): Promise<void> {
    for (;;) {
      const live = [...fn.sandboxes.values()];
      if (live.length === 0) return;
      for (const sb of live) if (sb.phase === 'ready') this.#startDrain(fn, sb);
      this.#calls.schedule();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Asks a worker to delete sandboxes nobody knows about (e.g. of deleted functions). */
  deleteUnknown(worker: WorkerState, ids: string[]): void {
    this.#calls.delete(worker, ids);
  }

  #newId(): string {
    return `sb-${this.#idPrefix}${(this.#nextId++).toString(36)}`;
  }

  #create(fn: FunctionRecord, n: number): void {
    const nodes = this.#state.workers.list();
    const standby = fn.standby;
    // A standby sandbox holds nothing until used: it takes no capacity (it still needs a worker).
    const request = standby
      ? { cpuMilli: 0, memoryMib: 0 }
      : { cpuMilli: fn.spec.cpuMilli, memoryMib: fn.spec.memoryMib };
    const now = this.#clock.now();
    for (let i = 0; i < n; i++) {
      let workerId = this.#placement.place(nodes, request);
      if (workerId === undefined && this.#reclaim(fn, request, now))
        workerId = this.#placement.place(nodes, request);
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
        this.#retryLater(fn, NO_ROOM_RETRY_MS);
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
      this.#state.addSandbox(sb, fn, worker);
      this.#calls.create(worker, sb.id, fn.spec, standby, this.#state.secretEnv(fn.spec));
    }
  }

  /**
   * Drains idle sandboxes of other functions to make room for one of `fn`
   * (see reclaim.ts), and gives their room back at once: they serve nothing
   * and are deleted once the data planes let go of them (drained with those
   * reclaimed in the next RECLAIM_DRAIN_DELAY_MS). Where idle sandboxes hold
   * nothing (simulated ones), the new one is made meanwhile (waiting put a
   * data-plane round trip on every such cold start); elsewhere its creation
   * is sent with their deletion (WorkerCalls). False when nothing idle frees
   * enough.
   */
  #reclaim(fn: FunctionRecord, request: PlacementRequest, now: number): boolean {
    const victims = this.#idle.pick(this.#state, fn, request, now);
    if (victims.length === 0) return false;
    for (const sb of victims) {
      const owner = this.#state.functions.get(sb.function)!;
      owner.scaler?.forget();
      owner.load.restart(now);
      owner.startDrain(sb);
      this.#reclaimed.push(sb);
      this.#state.releaseEarly(sb);
      owner.desired = Math.min(owner.desired, owner.current);
    }
    this.counters.sandboxesReclaimed += victims.length;
    if (this.#reclaimTimer === undefined)
      this.#reclaimTimer = setTimeout(() => {
        this.#reclaimTimer = undefined;
        const batch = this.#reclaimed;
        this.#reclaimed = [];
        void this.#drain(batch);
      }, RECLAIM_DRAIN_DELAY_MS).unref();
    return true;
  }

  #scaleDown(fn: FunctionRecord, n: number): void {
    // Newest ready sandboxes go first: the oldest have proven themselves warm.
    const ready = [...fn.sandboxes.values()].filter((s) => s.phase === 'ready');
    ready.sort((a, b) => (b.readyAt ?? 0) - (a.readyAt ?? 0));
    for (const sb of ready.slice(0, n)) this.#startDrain(fn, sb);
    this.#calls.schedule();
  }

  #startDrain(fn: FunctionRecord, sb: SandboxRecord): void {
    fn.startDrain(sb);
    this.#drainBatch.push(sb);
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
    if (r.ok) {
      fn.sandboxReady(sb, r.host, r.port, now, r.timings);
      this.counters.sandboxesCreated++;
      this.creationLatencies.push(r.timings.totalMs);
      if (this.creationLatencies.length > 1000) this.creationLatencies.splice(0, 500);
      if (fn.deleting !== undefined) {
        this.#startDrain(fn, sb);
        this.#calls.schedule();
        return;
      }
      this.#state.forEachFanout((f) => f.addEndpoint(endpointOf(sb)));
      return;
    }
    this.counters.creationFailures++;
    this.#state.removeSandbox(sb);
    fn.creationFailed({ code: r.code, message: r.message }, r.retryable, now);
    if (!r.retryable) this.#failQueuedIfNoSandbox(fn);
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

  /** Data planes stop routing to the sandboxes and wait for their requests, then workers delete them. */
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
      this.#state.removeSandbox(sb);
      this.counters.sandboxesDeleted++;
      if (worker !== undefined) this.#calls.delete(worker, [sb.id]);
    }
  }
}

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
