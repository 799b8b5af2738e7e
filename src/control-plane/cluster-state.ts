/**
 * The control plane's in-memory view: functions with their sandboxes and
 * scaling metrics, workers with their allocations, data planes with their
 * update channels. Sandboxes live only here (paper §3: nothing persisted on
 * the critical path); after a restart they are rebuilt from the workers.
 * Each record changes its own counters; ClusterState keeps the indexes of a
 * sandbox (by id, per function, per worker) in step.
 */
import { revisionName, type FunctionSpec } from '../shared/function-spec.js';
import type { TrafficSplit } from '../shared/traffic.js';
import type { SecretRecord } from '../shared/secret-record.js';
import {
  NO_CAPABILITIES,
  sumTraffic,
  type DataPlaneRecord,
  type RuntimeCapabilities,
  type TrafficTotals,
  type WorkerRecord,
} from '../shared/cluster-objects.js';
import type { ServiceClient } from '../rpc/contract.js';
import type { RpcChannel } from '../rpc/transport.js';
import type { WorkerService } from '../rpc/contracts/worker.js';
import type { DataPlaneService } from '../rpc/contracts/data-plane.js';
import type { CreationTimings, Endpoint, FunctionRoute } from '../rpc/contracts/common.js';
import type { FunctionScaler } from './autoscaler/autoscaler.js';
import { LoadMeter } from './autoscaler/load-meter.js';
import {
  chargeOn,
  type PlacementNode,
  type PlacementRequest,
} from './placement/placement-policy.js';
import type { DataPlaneFanout } from './data-plane-fanout.js';
import { ChangeSignal } from '../shared/time.js';

export type SandboxPhase = 'creating' | 'ready' | 'draining';

export interface SandboxRecord {
  readonly id: string;
  readonly function: string;
  readonly workerId: string;
  /** Runs on a worker whose runtime gives every request a fresh sandbox. */
  readonly freshPerRequest: boolean;
  /** Runs on a worker whose runtime says when it started a sandbox for a request. */
  readonly reportsColdStart: boolean;
  /**
   * Made standby (the floor's): it holds no isolate until a request comes,
   * so it takes none of its worker's capacity in placement.
   */
  readonly standby: boolean;
  /** Its worker's capacity is already given back: reclaimed for another function while it drains. */
  released?: boolean;
  host: string;
  port: number;
  phase: SandboxPhase;
  readonly createdAt: number;
  readyAt: number | undefined;
  timings: CreationTimings | undefined;
}

/** The last failure of a function's sandboxes, as `GET /v1/functions/NAME` shows it. */
export interface Failure {
  code: string;
  message: string;
}

export function routeOf(spec: FunctionSpec): FunctionRoute {
  return {
    name: spec.name,
    concurrency: spec.concurrency,
    coldStartTimeoutMs: spec.coldStartTimeoutMs,
    timeoutMs: spec.timeoutMs,
  };
}

export function endpointOf(sb: SandboxRecord): Endpoint {
  return {
    id: sb.id,
    function: sb.function,
    workerId: sb.workerId,
    host: sb.host,
    port: sb.port,
    ...(sb.freshPerRequest ? { freshPerRequest: true } : {}),
    ...(sb.reportsColdStart ? { reportsColdStart: true } : {}),
  };
}

/** A start failure that retrying cannot fix blocks new attempts this long, at most. */
const MAX_BLOCK_MS = 30_000;

export class FunctionRecord {
  readonly spec: FunctionSpec;
  readonly route: FunctionRoute;
  scaler: FunctionScaler | undefined;
  readonly sandboxes = new Map<string, SandboxRecord>();
  creating = 0;
  ready = 0;
  /** Queued + executing per data plane, and their sums. */
  readonly metrics = new Map<string, { inflight: number; queued: number }>();
  inflight = 0;
  queued = 0;
  /** Its load over time, as the data planes measure it, and how fast its sandboxes come. */
  readonly load = new LoadMeter();
  desired = 0;
  /** The sandboxes to reach `desired` are standby ones: only the floor wants them (the `standby` capability). */
  standby = false;
  /** Set while the function is being deleted. */
  deleting: Promise<void> | undefined;
  /** After creations fail for a reason retrying cannot fix, no new attempt before this time. */
  blockedUntil = 0;
  consecutiveFailures = 0;
  lastFailure: Failure | undefined;
  sandboxesCreated = 0;
  /** Each data plane's counts of the function's invocations (its latest report). */
  readonly traffic = new Map<string, TrafficTotals>();
  /** Ready sandboxes kept however little traffic it has, until a time: a revision made ready before it takes over. */
  #warm = { target: 0, until: 0 };
  /** Revision 1's record: how requests for the function are shared among its revisions (none: all here). */
  split: TrafficSplit | undefined;
  readonly #changes = new ChangeSignal();

  constructor(spec: FunctionSpec) {
    this.spec = spec;
    this.route = routeOf(spec);
  }

  get name(): string {
    return this.spec.name;
  }

  /** Keeps `target` sandboxes however little traffic it has, until `until` (the latest call decides). */
  keepWarm(target: number, until: number): void {
    this.#warm = { target, until };
  }

  /** The sandboxes keepWarm asks for at `now` (0 once its time is over). */
  warmFloor(now: number): number {
    return now < this.#warm.until ? this.#warm.target : 0;
  }

  /** Shares the function's requests among its revisions; the data planes follow `route`. */
  setSplit(split: TrafficSplit | undefined): void {
    this.split = split;
    const taking = split?.filter((s) => s.weight > 0) ?? [];
    if (taking.length === 0 || (taking.length === 1 && taking[0]!.revision === 1))
      delete this.route.split;
    else
      this.route.split = taking.map((s) => ({
        function: revisionName(this.name, s.revision),
        weight: s.weight,
      }));
  }

  /**
   * Resolves at the next change of its sandboxes (one is ready, one is gone,
   * a creation failed), or after `ms` at the latest.
   */
  nextChange(ms: number): Promise<void> {
    return this.#changes.next(ms);
  }

  /** Sandboxes that count toward the scale: ready or being created. */
  get current(): number {
    return this.creating + this.ready;
  }

  /** Counts a sandbox that is being created, or (adopted) already ready. */
  track(sb: SandboxRecord): void {
    this.sandboxes.set(sb.id, sb);
    if (sb.phase === 'creating') this.creating++;
    else if (sb.phase === 'ready') this.ready++;
  }

  /** Stops counting a sandbox; `countPhase` false when its phase was already accounted. */
  untrack(sb: SandboxRecord, countPhase = true): void {
    if (!this.sandboxes.delete(sb.id)) return;
    if (countPhase && sb.phase === 'creating') this.creating--;
    else if (countPhase && sb.phase === 'ready') this.ready--;
    this.#changes.notify();
  }

  /** A sandbox of this function finished its creation. */
  sandboxReady(
    sb: SandboxRecord,
    host: string,
    port: number,
    now: number,
    timings: CreationTimings,
  ): void {
    sb.host = host;
    sb.port = port;
    sb.phase = 'ready';
    sb.readyAt = now;
    sb.timings = timings;
    this.load.created(now - sb.createdAt);
    this.creating--;
    this.ready++;
    this.sandboxesCreated++;
    this.consecutiveFailures = 0;
    this.blockedUntil = 0;
    this.#changes.notify();
  }

  /** A ready sandbox stops taking requests before it is deleted. */
  startDrain(sb: SandboxRecord): void {
    sb.phase = 'draining';
    this.ready--;
  }

  /**
   * A creation failed (the sandbox is already untracked). One that retrying
   * cannot fix blocks new attempts for a while, doubling to MAX_BLOCK_MS.
   */
  creationFailed(failure: Failure, retryable: boolean, now: number): void {
    this.lastFailure = failure;
    this.consecutiveFailures++;
    if (!retryable)
      this.blockedUntil =
        now + Math.min(MAX_BLOCK_MS, 1000 * 2 ** Math.min(this.consecutiveFailures - 1, 5));
    this.#changes.notify();
  }

  setMetric(dataPlaneId: string, inflight: number, queued: number): void {
    const prev = this.metrics.get(dataPlaneId);
    this.inflight += inflight - (prev?.inflight ?? 0);
    this.queued += queued - (prev?.queued ?? 0);
    if (inflight === 0 && queued === 0) this.metrics.delete(dataPlaneId);
    else if (prev === undefined) this.metrics.set(dataPlaneId, { inflight, queued });
    else {
      prev.inflight = inflight;
      prev.queued = queued;
    }
  }

  /** The data plane is gone: its counts no longer count. */
  dropMetric(dataPlaneId: string, now: number): void {
    this.setMetric(dataPlaneId, 0, 0);
    this.load.drop(dataPlaneId, now);
  }

  /** Its invocations over every data plane. */
  trafficTotals(): TrafficTotals {
    return sumTraffic(this.traffic.values());
  }
}

export class WorkerState implements PlacementNode {
  record: WorkerRecord;
  lastHeartbeatAt: number;
  cpuPercent = 0;
  memoryPercent = 0;
  cpuAllocatedMilli = 0;
  memoryAllocatedMib = 0;
  readonly sandboxes = new Set<string>();
  /** Creations waiting to be sent in this event-loop turn. */
  pendingCreates: Array<{
    id: string;
    spec: FunctionSpec;
    standby?: boolean;
    secretEnv?: Record<string, string>;
  }> = [];
  /** Deletions waiting to be sent. */
  pendingDeletes: string[] = [];
  /** Its sandboxes whose room was given back early (`releaseEarly`) and that it was not yet told to delete. */
  releasedUndeleted = 0;

  constructor(
    record: WorkerRecord,
    readonly conn: RpcChannel,
    readonly client: ServiceClient<WorkerService>,
    now: number,
  ) {
    this.record = record;
    this.lastHeartbeatAt = now;
  }

  get id(): string {
    return this.record.id;
  }
  get cpuCapacityMilli(): number {
    return this.record.cpuCapacityMilli;
  }
  get memoryCapacityMib(): number {
    return this.record.memoryCapacityMib;
  }
  get sandboxFloor(): PlacementRequest | undefined {
    return this.record.sandboxFloor;
  }
  get capabilities(): RuntimeCapabilities {
    return this.record.capabilities ?? NO_CAPABILITIES;
  }
  /** Sandboxes it was asked to make and not yet to delete (creations still waiting are not). */
  get askedSandboxes(): number {
    return this.sandboxes.size - this.pendingCreates.length;
  }

  /** Charges (or gives back) one sandbox of `spec`, as placement counted it. */
  allocate(spec: FunctionSpec, sign: 1 | -1): void {
    const charge = chargeOn(this, spec);
    this.cpuAllocatedMilli += sign * charge.cpuMilli;
    this.memoryAllocatedMib += sign * charge.memoryMib;
  }
}

export class DataPlaneState {
  lastHeartbeatAt: number;
  constructor(
    readonly record: DataPlaneRecord,
    readonly conn: RpcChannel,
    readonly client: ServiceClient<DataPlaneService>,
    readonly fanout: DataPlaneFanout,
    now: number,
  ) {
    this.lastHeartbeatAt = now;
  }
}

/** Workers by id, with their list kept between changes (placement reads it per creation). */
export class WorkerMap extends Map<string, WorkerState> {
  #list: WorkerState[] | undefined;

  override set(id: string, worker: WorkerState): this {
    this.#list = undefined;
    return super.set(id, worker);
  }

  override delete(id: string): boolean {
    this.#list = undefined;
    return super.delete(id);
  }

  override clear(): void {
    this.#list = undefined;
    super.clear();
  }

  /** Every worker, as an array not to be changed (made again only after a worker came or went). */
  list(): readonly WorkerState[] {
    return (this.#list ??= [...this.values()]);
  }
}

export class ClusterState {
  readonly functions = new Map<string, FunctionRecord>();
  readonly workers = new WorkerMap();
  readonly dataPlanes = new Map<string, DataPlaneState>();
  readonly sandboxes = new Map<string, SandboxRecord>();
  /** Every secret, by name: read when a sandbox is made, never from the store then. */
  readonly secrets = new Map<string, SecretRecord>();
  /** Functions the autoscaler looks at each tick. */
  readonly active = new Set<FunctionRecord>();

  /** Records a sandbox on its function and worker (charging the worker unless it is standby). */
  addSandbox(sb: SandboxRecord, fn: FunctionRecord, worker: WorkerState): void {
    this.sandboxes.set(sb.id, sb);
    fn.track(sb);
    worker.sandboxes.add(sb.id);
    if (!sb.standby) worker.allocate(fn.spec, 1);
  }

  /** The values of the secrets `spec` names, by name (a secret deleted since is left out). */
  secretEnv(spec: FunctionSpec): Record<string, string> | undefined {
    if (spec.secrets.length === 0) return undefined;
    const env: Record<string, string> = {};
    for (const name of spec.secrets) {
      const secret = this.secrets.get(name);
      if (secret !== undefined) env[name] = secret.value;
    }
    return env;
  }

  /**
   * Forgets a sandbox everywhere and gives its worker back what it took.
   * `countPhase` false when its function already accounted for its phase.
   */
  removeSandbox(sb: SandboxRecord, countPhase = true): FunctionRecord | undefined {
    this.sandboxes.delete(sb.id);
    const fn = this.functions.get(sb.function);
    fn?.untrack(sb, countPhase);
    const worker = this.workers.get(sb.workerId);
    if (worker === undefined || !worker.sandboxes.delete(sb.id)) return fn;
    if (sb.released === true) worker.releasedUndeleted--;
    else if (fn !== undefined && !sb.standby) worker.allocate(fn.spec, -1);
    return fn;
  }

  /** Gives a draining sandbox's room back now, not once it is gone (reclaim.ts; and WorkerCalls). */
  releaseEarly(sb: SandboxRecord): void {
    const fn = this.functions.get(sb.function);
    const worker = this.workers.get(sb.workerId);
    if (sb.standby || sb.released === true || fn === undefined || worker === undefined) return;
    worker.allocate(fn.spec, -1);
    worker.releasedUndeleted++;
    sb.released = true;
  }

  forEachFanout(action: (f: DataPlaneFanout) => void): void {
    for (const dp of this.dataPlanes.values()) action(dp.fanout);
  }
}
