/**
 * Knative's KPA as Dirigent ports it (docs: dirigent-compat.md, "Autoscaling
 * defaults"): in-flight requests averaged over a stable and a panic window of
 * per-tick samples (each the mean in-flight count since the previous tick,
 * as Knative's queue-proxies average it, capped by Little's law: see
 * LoadMeter); panic mode when the panic estimate is at least twice the
 * current scale; never scales down while panicking; scale to zero only after
 * a whole stable window without in-flight requests.
 * Leaves out: Knative's activation scale, scale-to-zero grace period and
 * "target burst capacity" (Dirigent does not use them).
 */
import type { FunctionSpec } from '../../shared/function-spec.js';
import type { Autoscaler, Backlog, FunctionScaler } from './autoscaler.js';

export const DEFAULT_AUTOSCALING_TICK_MS = 2_000;
export const DEFAULT_STABLE_WINDOW_MS = 60_000;
export const DEFAULT_PANIC_WINDOW_MS = 6_000;
export const SWEEP_STABLE_WINDOW_MS = 6_000;
export const SWEEP_PANIC_WINDOW_MS = 2_000;
export const DEFAULT_PANIC_THRESHOLD = 2.0;
export const DEFAULT_MAX_SCALE_UP_RATE = 1000;
export const DEFAULT_MAX_SCALE_DOWN_RATE = 2;
export const DEFAULT_TARGET_UTILIZATION = 1.0;
/** Knative's target when container concurrency is 0 (unlimited). */
export const UNLIMITED_CONCURRENCY_TARGET = 100;

export interface KpaConfig {
  tickMs: number;
  stableWindowMs: number;
  panicWindowMs: number;
  panicThreshold: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  /** In-flight requests one sandbox should carry: concurrency x utilisation. */
  targetPerSandbox: number;
  minScale: number;
  maxScale: number;
}

export function kpaConfigFor(spec: FunctionSpec, tickMs = DEFAULT_AUTOSCALING_TICK_MS): KpaConfig {
  const concurrency = spec.concurrency === 0 ? UNLIMITED_CONCURRENCY_TARGET : spec.concurrency;
  return {
    tickMs,
    stableWindowMs: spec.coldStartSweep ? SWEEP_STABLE_WINDOW_MS : DEFAULT_STABLE_WINDOW_MS,
    panicWindowMs: spec.coldStartSweep ? SWEEP_PANIC_WINDOW_MS : DEFAULT_PANIC_WINDOW_MS,
    panicThreshold: DEFAULT_PANIC_THRESHOLD,
    maxScaleUpRate: DEFAULT_MAX_SCALE_UP_RATE,
    maxScaleDownRate: DEFAULT_MAX_SCALE_DOWN_RATE,
    targetPerSandbox: concurrency * DEFAULT_TARGET_UTILIZATION,
    minScale: spec.minScale,
    maxScale: spec.maxScale ?? Number.POSITIVE_INFINITY,
  };
}

export class KpaScaler implements FunctionScaler {
  readonly #cfg: KpaConfig;
  readonly #samples: Float64Array;
  readonly #panicBuckets: number;
  #head = 0;
  #count = 0;
  #inPanic = false;
  #panicSince = 0;
  #maxPanicPods = 0;
  #lastActiveAt: number;
  #holdUntil = Number.NEGATIVE_INFINITY;

  constructor(config: KpaConfig, now: number) {
    this.#cfg = config;
    const stableBuckets = Math.max(1, Math.ceil(config.stableWindowMs / config.tickMs));
    this.#samples = new Float64Array(stableBuckets);
    this.#panicBuckets = Math.max(
      1,
      Math.min(stableBuckets, Math.ceil(config.panicWindowMs / config.tickMs)),
    );
    this.#lastActiveAt = now;
  }

  get inPanic(): boolean {
    return this.#inPanic;
  }

  get lastActiveAt(): number {
    return this.#lastActiveAt;
  }

  forget(): void {
    this.#samples.fill(0);
    this.#inPanic = false;
    this.#maxPanicPods = 0;
  }

  observe(now: number, active: boolean): void {
    if (active) this.#lastActiveAt = now;
  }

  holdScaleDown(now: number): void {
    this.#holdUntil = Math.max(this.#holdUntil, now + this.#cfg.stableWindowMs);
  }

  scaleFromZero(now: number): number {
    this.#lastActiveAt = now;
    return this.#clamp(1);
  }

  /**
   * Panic without waiting for the tick: Knative and Dirigent notice a burst
   * only at the next decision (up to 2 s later), while its requests wait
   * behind busy sandboxes. When the instantaneous demand is already over the
   * panic threshold, enter panic now (so the next ticks do not undo it) and
   * scale towards the demand, but only as far as the queue needs: the ready
   * sandboxes clear it in queued x service time / (ready x target), and a
   * sandbox made now is ready only a creation time later. Enough sandboxes
   * to clear it within one creation time is what a burst needs (Knative's
   * activator capacity); fewer than those ready means none. The queue of
   * short requests behind a stall or a cold start clears long before a new
   * sandbox could take any (2000 requests/s of 0.5 ms at concurrency 1 got
   * 32-64 sandboxes on the count of waiting requests alone, where 2-4
   * serve). Whether or not the service time is known yet, at most double
   * the current scale per reaction (the caller reacts again once the round
   * is ready), within the scale-up rate and the bounds.
   */
  onQueued(now: number, backlog: Backlog, current: number): number | undefined {
    const cfg = this.#cfg;
    const ready = Math.max(1, current);
    let wanted = Math.ceil(backlog.inflight / cfg.targetPerSandbox);
    if (wanted / ready < cfg.panicThreshold) return undefined;
    const { serviceMs, creationMs } = backlog;
    if (serviceMs !== undefined && creationMs !== undefined && creationMs > 0) {
      const clearing = Math.ceil(
        (backlog.queued * serviceMs) / (creationMs * cfg.targetPerSandbox),
      );
      if (clearing <= ready) return undefined;
      wanted = Math.min(wanted, clearing);
    }
    this.observe(now, true);
    this.#inPanic = true;
    this.#panicSince = now;
    this.#maxPanicPods = Math.max(
      this.#maxPanicPods,
      Math.min(wanted, 2 * ready, Math.ceil(cfg.maxScaleUpRate * ready)),
    );
    return this.#clamp(this.#maxPanicPods);
  }

  decide(now: number, inflight: number, current: number): number {
    const cfg = this.#cfg;
    this.#record(inflight);

    const ready = Math.max(1, current);
    const maxUp = Math.ceil(cfg.maxScaleUpRate * ready);
    const maxDown = Math.floor(ready / cfg.maxScaleDownRate);
    const dspc = Math.ceil(this.#average(this.#samples.length) / cfg.targetPerSandbox);
    const dppc = Math.ceil(this.#average(this.#panicBuckets) / cfg.targetPerSandbox);
    const stable = Math.min(Math.max(dspc, maxDown), maxUp);
    const panic = Math.min(Math.max(dppc, maxDown), maxUp);

    const overThreshold = dppc / ready >= cfg.panicThreshold;
    if (overThreshold) {
      this.#inPanic = true;
      this.#panicSince = now;
    } else if (this.#inPanic && now - this.#panicSince >= cfg.stableWindowMs) {
      this.#inPanic = false;
      this.#maxPanicPods = 0;
    }

    let desired = stable;
    if (this.#inPanic) {
      this.#maxPanicPods = Math.max(this.#maxPanicPods, desired, panic);
      desired = this.#maxPanicPods;
    }
    // Scale to zero only once a whole stable window saw nothing in flight.
    if (desired === 0 && current > 0 && now - this.#lastActiveAt < cfg.stableWindowMs) desired = 1;
    if (now < this.#holdUntil) desired = Math.max(desired, current);
    return this.#clamp(desired);
  }

  #clamp(n: number): number {
    return Math.min(Math.max(n, this.#cfg.minScale), this.#cfg.maxScale);
  }

  #record(value: number): void {
    this.#samples[this.#head] = value;
    this.#head = (this.#head + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count++;
  }

  /** Mean of the newest `buckets` samples (fewer while the window fills). */
  #average(buckets: number): number {
    const n = Math.min(buckets, this.#count);
    if (n === 0) return 0;
    let sum = 0;
    let i = this.#head;
    for (let k = 0; k < n; k++) {
      i = i === 0 ? this.#samples.length - 1 : i - 1;
      sum += this.#samples[i]!;
    }
    return sum / n;
  }
}

export class KpaAutoscaler implements Autoscaler {
  readonly name = 'kpa';
  constructor(readonly tickMs = DEFAULT_AUTOSCALING_TICK_MS) {}
  createScaler(spec: FunctionSpec, now: number): FunctionScaler {
    return new KpaScaler(kpaConfigFor(spec, this.tickMs), now);
  }
}
