/**
 * Autoscaler plug point. A FunctionScaler holds one function's scaling state
 * and decides its desired sandbox count from observations; it never starts
 * timers or does I/O (time comes in as arguments), so it is unit-tested with
 * plain numbers. The control plane calls `decide` once per tick.
 */
import type { FunctionSpec } from '../../shared/function-spec.js';

/** What waits for a function's sandboxes, and what the scaler knows of how fast they clear it. */
export interface Backlog {
  /** Queued + executing, summed over data planes. */
  inflight: number;
  queued: number;
  /** Mean time a sandbox takes per request, lately; undefined before one was served. */
  serviceMs: number | undefined;
  /** Mean time a new sandbox takes to be ready, lately; undefined before one was made. */
  creationMs: number | undefined;
}

export interface FunctionScaler {
  /**
   * A metric report between ticks. `active`: it had requests in flight, or
   * answered some since the data plane's previous report (a busy function
   * with short requests often has none in flight at the instant of a report).
   */
  observe(now: number, active: boolean): void;
  /**
   * One autoscaling tick. `inflight` = queued + executing requests summed over
   * data planes, averaged over the time since the previous tick (the count at
   * the latest reports when they carry no load); `current` = sandboxes ready
   * or being created. Returns the desired count, already clamped to the
   * function's bounds. Activity is what `observe` was told.
   */
  decide(now: number, inflight: number, current: number): number;
  /** Decision for the first request of a function with no sandbox: immediate, not at the next tick. */
  scaleFromZero(now: number): number;
  /**
   * Requests are waiting while every sandbox is busy: the desired count to
   * scale up to at once, or undefined to leave it to the next tick.
   * `current` = sandboxes ready (none is being created).
   */
  onQueued(now: number, backlog: Backlog, current: number): number | undefined;
  /**
   * Suppresses scale-down below `current` for one stable window from `now`:
   * the sandboxes a restarted control plane recovers keep running while it
   * learns their load again (paper §4.2.1).
   */
  holdScaleDown(now: number): void;
  /**
   * Its idle sandboxes were reclaimed for another function: forgets the load
   * its windows remember, so that it wants no sandbox until requests come
   * again (else the next tick would make them again, and take them back).
   * The caller starts the function's LoadMeter window afresh with it.
   */
  forget(): void;
  readonly inPanic: boolean;
  /** When it was last seen active (or was made), for reclaiming the least recently active first. */
  readonly lastActiveAt: number;
}

export interface Autoscaler {
  readonly name: string;
  /** Period between `decide` calls. */
  readonly tickMs: number;
  createScaler(spec: FunctionSpec, now: number): FunctionScaler;
}

export const AUTOSCALER_NAMES = ['kpa'] as const;
export type AutoscalerName = (typeof AUTOSCALER_NAMES)[number];
