/**
 * Room for a sandbox when no worker has it: idle sandboxes of other
 * functions are reclaimed, as OpenWhisk's invokers evict idle containers.
 * Without it, a cold-start sweep (every invocation a new function, each
 * sandbox kept for its stable window after its request) fills every worker
 * with sandboxes that serve nothing, and new functions wait for room until
 * their cold-start time-out: InVitro's sweep at 250/s on 10 workers of
 * 2000 mCPU failed a third of its requests that way. No I/O: the
 * orchestrator drains what this picks.
 */
import type { PlacementNode, PlacementRequest } from './placement/placement-policy.js';
import { chargeOn, fits } from './placement/placement-policy.js';
import type { ClusterState, FunctionRecord, SandboxRecord, WorkerState } from './cluster-state.js';

/** How long an order of idle functions is used before it is made again. */
export const IDLE_ORDER_MAX_AGE_MS = 250;

/**
 * How long a function must have been seen idle before its sandboxes are
 * reclaimed for one that already has sandboxes (scaling up). A function with
 * none takes from any function idle now: without a sandbox it cannot run at
 * all. One scaling up can queue on those it has, and what it took from a
 * function that only looked idle came back as that function's next scale-up,
 * which took it back: a data plane reports a function that went quiet for
 * 50 ms, but the requests that follow only at its next metrics interval (2 s
 * by default). In an overload test (three busy functions on a worker with
 * room for 80 process sandboxes, beside a CPU hog) that churn drained 37
 * and 48 sandboxes in 10 s in two runs (none after), each one remade.
 */
export const SCALE_UP_RECLAIM_IDLE_MS = 5_000;

/**
 * Picks sandboxes to reclaim. It keeps the idle functions in order of last
 * activity for IDLE_ORDER_MAX_AGE_MS and looks again at each before taking
 * from it: a sweep needs a reclaim for nearly every cold start, and sorting
 * thousands of functions for each cost more than the creation itself.
 */
export class IdleSandboxes {
  #order: FunctionRecord[] = [];
  #next = 0;
  #madeAt = Number.NEGATIVE_INFINITY;

  /**
   * Ready sandboxes to drain so that one more sandbox of `requester` fits:
   * those of idle functions (nothing in flight or queued at any data plane,
   * by their latest reports; scaled by the autoscaler) above what the
   * function must keep (its minimum scale, a revision's warm floor), the
   * least recently active function's first, all on the first worker they
   * free enough room on; for a requester that has sandboxes, only functions
   * idle for SCALE_UP_RECLAIM_IDLE_MS. Empty when no worker can be freed
   * enough that way.
   */
  pick(
    state: ClusterState,
    requester: FunctionRecord,
    request: PlacementRequest,
    now: number,
  ): SandboxRecord[] {
    this.#skipTaken(now);
    if (now - this.#madeAt > IDLE_ORDER_MAX_AGE_MS || this.#next === this.#order.length) {
      this.#remake(state, now);
      this.#skipTaken(now);
    }
    const freed = new Map<WorkerState, Freed>();
    const idleFor = requester.current === 0 ? 0 : SCALE_UP_RECLAIM_IDLE_MS;
    for (let i = this.#next; i < this.#order.length; i++) {
      const fn = this.#order[i]!;
      if (now - fn.scaler!.lastActiveAt < idleFor) continue;
      let left = fn === requester ? 0 : spare(fn, now);
      for (const sb of fn.sandboxes.values()) {
        if (left === 0) break;
        if (sb.phase !== 'ready' || sb.standby) continue;
        const worker = state.workers.get(sb.workerId);
        if (worker === undefined) continue;
        left--;
        let f = freed.get(worker);
        if (f === undefined) freed.set(worker, (f = { cpuMilli: 0, memoryMib: 0, sbs: [] }));
        const charge = chargeOn(worker, fn.spec);
        f.cpuMilli += charge.cpuMilli;
        f.memoryMib += charge.memoryMib;
        f.sbs.push(sb);
        if (fits(without(worker, f), request)) return f.sbs;
      }
    }
    return [];
  }

  #remake(state: ClusterState, now: number): void {
    this.#order = idleByLastActivity(state, now);
    this.#next = 0;
    this.#madeAt = now;
  }

  /** Functions taken from, or busy, since the order was made stay behind until the next one. */
  #skipTaken(now: number): void {
    while (this.#next < this.#order.length && spare(this.#order[this.#next]!, now) === 0)
      this.#next++;
  }
}

interface Freed {
  cpuMilli: number;
  memoryMib: number;
  sbs: SandboxRecord[];
}

/** Ready sandboxes of `fn` that may be reclaimed now (0 unless it is idle). */
function spare(fn: FunctionRecord, now: number): number {
  if (fn.deleting !== undefined || fn.scaler === undefined) return 0;
  if (fn.inflight > 0 || fn.queued > 0) return 0;
  return Math.max(0, fn.ready - Math.max(fn.spec.minScale, fn.warmFloor(now)));
}

function idleByLastActivity(state: ClusterState, now: number): FunctionRecord[] {
  const idle: FunctionRecord[] = [];
  for (const fn of state.active) if (spare(fn, now) > 0) idle.push(fn);
  return idle.sort((a, b) => a.scaler!.lastActiveAt - b.scaler!.lastActiveAt);
}

/** `node` as it will be once `freed` is given back. */
function without(node: PlacementNode, freed: Freed): PlacementNode {
  return {
    id: node.id,
    cpuCapacityMilli: node.cpuCapacityMilli,
    memoryCapacityMib: node.memoryCapacityMib,
    cpuAllocatedMilli: node.cpuAllocatedMilli - freed.cpuMilli,
    memoryAllocatedMib: node.memoryAllocatedMib - freed.memoryMib,
    sandboxFloor: node.sandboxFloor,
  };
}
