/**
 * Room for a sandbox when no worker has it: idle sandboxes of other
 * functions are reclaimed, as OpenWhisk's invokers evict idle containers.
 * Without it, a cold-start sweep (every invocation a new function, each
 * sandbox kept for its stable window after its request) fills every worker
 * with sandboxes that serve nothing, and new functions wait for room until
 * their cold-start time-out: InVitro's sweep at 250/s on 10 workers of
 * 2000 mCPU failed a third of its requests that way. Pure: the orchestrator
 * drains what this picks.
 */
import type { PlacementNode, PlacementRequest } from './placement/placement-policy.js';
import { chargeOn, fits } from './placement/placement-policy.js';
import type { ClusterState, FunctionRecord, SandboxRecord, WorkerState } from './cluster-state.js';

/**
 * Ready sandboxes to drain so that one more sandbox of `requester` fits:
 * those of idle functions (nothing in flight or queued at any data plane,
 * by their latest reports; scaled by the autoscaler) above what the function
 * must keep (its minimum scale, a revision's warm floor), the least recently
 * active function's first, all on the first worker they free enough room on.
 * Empty when no worker can be freed enough that way.
 */
export function idleSandboxesToReclaim(
  state: ClusterState,
  requester: FunctionRecord,
  request: PlacementRequest,
  now: number,
): SandboxRecord[] {
  const idle: Array<{ fn: FunctionRecord; spare: number; since: number }> = [];
  for (const fn of state.active) {
    if (fn === requester || fn.deleting !== undefined || fn.scaler === undefined) continue;
    if (fn.inflight > 0 || fn.queued > 0) continue;
    const spare = fn.ready - Math.max(fn.spec.minScale, fn.warmFloor(now));
    if (spare > 0) idle.push({ fn, spare, since: fn.scaler.lastActiveAt });
  }
  idle.sort((a, b) => a.since - b.since);
  const freed = new Map<
    WorkerState,
    { cpuMilli: number; memoryMib: number; sbs: SandboxRecord[] }
  >();
  for (const { fn, spare } of idle) {
    let left = spare;
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

/** `node` as it will be once `freed` is given back. */
function without(
  node: PlacementNode,
  freed: { cpuMilli: number; memoryMib: number },
): PlacementNode {
  return {
    id: node.id,
    cpuCapacityMilli: node.cpuCapacityMilli,
    memoryCapacityMib: node.memoryCapacityMib,
    cpuAllocatedMilli: node.cpuAllocatedMilli - freed.cpuMilli,
    memoryAllocatedMib: node.memoryAllocatedMib - freed.memoryMib,
    sandboxFloor: node.sandboxFloor,
  };
}
