/**
 * The autoscaling loop: every tick, each active function's scaler decides a
 * count and the orchestrator moves toward it; between ticks, the data
 * planes' metric reports scale a function from zero at once, and a burst
 * behind busy sandboxes at once when it is over the panic threshold. A
 * function never goes below its floor (minScale, and a standby sandbox
 * while every worker can keep one). The autoscaler is reached only through
 * its interface.
 */
import type { Clock } from '../shared/clock.js';
import type { Autoscaler, FunctionScaler } from './autoscaler/autoscaler.js';
import type { ClusterState, FunctionRecord } from './cluster-state.js';
import type { LoadTotals, TrafficTotals } from '../shared/cluster-objects.js';
import type { SandboxOrchestrator } from './sandbox-orchestrator.js';

export interface FunctionMetric {
  function: string;
  inflight: number;
  queued: number;
  totals?: TrafficTotals | undefined;
  load?: LoadTotals | undefined;
}

export class ScalingLoop {
  /** While the state is being rebuilt: floors and ticks wait (see holdFloors). */
  #floorsHeld = false;

  constructor(
    private readonly state: ClusterState,
    private readonly autoscaler: Autoscaler,
    private readonly orchestrator: SandboxOrchestrator,
    private readonly clock: Clock,
  ) {}

  /**
   * Sandboxes a function keeps however idle it is: its minScale, and at least
   * one while every worker can hold standby sandboxes (the `standby`
   * capability: that sandbox keeps no isolate warm, only the compiled code
   * behind a port, and spares invocations the round trip to the control plane).
   */
  floor(fn: FunctionRecord): number {
    let standby = this.state.workers.size > 0;
    for (const w of this.state.workers.values()) standby &&= w.capabilities.standby;
    return Math.max(fn.spec.minScale, standby ? 1 : 0, fn.warmFloor(this.clock.now()));
  }

  /** Starts scaling a function (creating its scaler); `reconcile`: move to its desired count now. */
  activate(fn: FunctionRecord, reconcile: boolean): void {
    this.#scalerOf(fn, this.clock.now());
    this.state.active.add(fn);
    if (reconcile) this.#scaleWithFloor(fn, fn.desired);
  }

  /**
   * Until releaseFloors: no sandbox is made, for a floor, by the tick or for
   * requests. While the workers' lists of what they run are still coming in
   * (a restarted or newly elected control plane), a sandbox made early
   * doubles one that a list not yet read would have adopted. Requests' counts
   * are still recorded, and acted on at the release.
   */
  holdFloors(): void {
    this.#floorsHeld = true;
  }

  releaseFloors(): void {
    if (!this.#floorsHeld) return;
    this.#floorsHeld = false;
    this.activateFloors();
    const now = this.clock.now();
    for (const fn of this.state.active)
      if (fn.deleting === undefined && fn.inflight > 0) this.#react(fn, now);
  }

  /** Functions that must keep sandboxes (see floor) and have none wanted get them. */
  activateFloors(): void {
    if (this.#floorsHeld) return;
    for (const fn of this.state.functions.values())
      if (fn.deleting === undefined && fn.desired < this.floor(fn)) this.activate(fn, true);
  }

  /** Functions still short of what they want (no room before) try again, e.g. when a worker joined. */
  retryShort(): void {
    for (const fn of this.state.active)
      if (fn.desired > fn.current) this.orchestrator.scaleTo(fn, fn.desired);
  }

  /** Keeps recovered sandboxes of `fn` for one stable window (their metrics were lost). */
  holdRecovered(fn: FunctionRecord): void {
    this.activate(fn, false);
    fn.desired = Math.max(fn.desired, fn.current);
    fn.scaler!.holdScaleDown(this.clock.now());
  }

  tick(): void {
    if (this.#floorsHeld) return;
    const now = this.clock.now();
    for (const fn of this.state.active) {
      if (fn.deleting !== undefined) continue;
      const scaler = this.#scalerOf(fn, now);
      // Active now if requests are in flight now: a mean over the window
      // says only that some were, at some time in it.
      scaler.observe(now, fn.inflight > 0);
      const demand = fn.load.takeDemand(now, fn.queued) ?? fn.inflight;
      const wanted = scaler.decide(now, demand, fn.current);
      const floor = this.floor(fn);
      const desired = Math.max(floor, wanted);
      if (desired !== fn.current || desired !== fn.desired) this.#scaleWithFloor(fn, wanted, floor);
      if (desired === 0 && fn.sandboxes.size === 0 && fn.inflight === 0) {
        this.state.active.delete(fn);
        fn.scaler = undefined;
      }
    }
  }

  /** A data plane's in-flight counts: between ticks, scale from zero and into panic at once. */
  onMetrics(dataPlaneId: string, metrics: FunctionMetric[]): void {
    const now = this.clock.now();
    for (const m of metrics) {
      const fn = this.state.functions.get(m.function);
      if (fn === undefined || fn.deleting !== undefined) continue;
      fn.setMetric(dataPlaneId, m.inflight, m.queued);
      if (m.load !== undefined) fn.load.report(dataPlaneId, now, m.inflight, m.load);
      // Requests answered since this data plane's last report: busy, even with none in flight now.
      let answered = false;
      if (m.totals !== undefined) {
        answered = m.totals.invocations > (fn.traffic.get(dataPlaneId)?.invocations ?? 0);
        fn.traffic.set(dataPlaneId, m.totals);
      }
      if (fn.inflight === 0) {
        fn.scaler?.observe(now, answered);
        continue;
      }
      if (fn.scaler === undefined) this.activate(fn, false);
      fn.scaler!.observe(now, true);
      if (!this.#floorsHeld) this.#react(fn, now);
    }
  }

  /** Scales from zero at once, or into panic over a burst, for a function with requests in flight. */
  #react(fn: FunctionRecord, now: number): void {
    const scaler = fn.scaler!;
    if (fn.current === 0) {
      // Scale from zero at once, not at the next tick.
      this.orchestrator.scaleTo(fn, Math.max(fn.desired, scaler.scaleFromZero(now)), false);
    } else if (fn.queued > 0 && fn.creating === 0) {
      // A burst behind busy sandboxes: likewise at once when it is over the
      // panic threshold. Not while sandboxes are being made for it: they take
      // what waits, and the queue behind a creation says nothing of what the
      // function needs once they are ready (see KpaScaler.onQueued).
      const desired = scaler.onQueued(
        now,
        {
          inflight: fn.inflight,
          queued: fn.queued,
          serviceMs: fn.load.serviceMs,
          creationMs: fn.load.creationMs,
        },
        fn.current,
      );
      if (desired !== undefined && desired > fn.current)
        this.orchestrator.scaleTo(fn, desired, false);
    }
  }

  /** Its scaler, made (and its load measured afresh) when the function is taken up again. */
  #scalerOf(fn: FunctionRecord, now: number): FunctionScaler {
    if (fn.scaler === undefined) {
      fn.scaler = this.autoscaler.createScaler(fn.spec, now);
      fn.load.restart(now);
    }
    return fn.scaler;
  }

  /** Scales to `wanted`, or the floor when above it; what only the standby floor wants is made standby. */
  #scaleWithFloor(fn: FunctionRecord, wanted: number, floor = this.floor(fn)): void {
    const standby =
      wanted < floor && fn.spec.minScale < floor && fn.warmFloor(this.clock.now()) < floor;
    this.orchestrator.scaleTo(fn, Math.max(floor, wanted), standby);
  }
}
