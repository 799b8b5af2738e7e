/**
 * A worker's or data plane's session with the control plane: register, then
 * send a heartbeat every interval (the control plane's, unless given one);
 * register again whenever the control plane answers that it does not know
 * the caller (it restarted); while it cannot be reached, retry with
 * back-off; on close, deregister. The caller says how to register, beat and
 * deregister; this holds the loop.
 */
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import { backoffDelayMs, sleep } from '../shared/time.js';

/** Failed exchanges in a row before the first warning (then every tenth). */
const QUIET_FAILURES = 3;

export interface ControlPlaneSessionOptions {
  logger: Logger;
  /** Registers; resolves with the heartbeat interval the control plane asks for. */
  register: () => Promise<number>;
  /** One heartbeat; resolves false when the control plane does not know the caller. */
  heartbeat: (deadlineMs: number) => Promise<boolean>;
  /** Tells the control plane the caller is leaving (on close, if registered). */
  deregister: (deadlineMs: number) => Promise<unknown>;
  /** A fixed heartbeat interval instead of the control plane's. */
  heartbeatIntervalMs?: number;
  /** Before the first registration. */
  initialHeartbeatIntervalMs?: number;
  /** Where the heartbeats' jitter comes from (0 <= x < 1); Math.random unless given. */
  random?: () => number;
}

export class ControlPlaneSession {
  readonly #o: ControlPlaneSessionOptions;
  readonly #stop = new AbortController();
  #registered = false;
  #heartbeatMs: number;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #onRegistered!: () => void;
  /** Resolves once the control plane has first accepted the registration. */
  readonly registeredOnce = new Promise<void>((resolve) => (this.#onRegistered = resolve));

  constructor(options: ControlPlaneSessionOptions) {
    this.#o = options;
    this.#heartbeatMs = options.heartbeatIntervalMs ?? options.initialHeartbeatIntervalMs ?? 5_000;
  }

  /** Registered now (the control plane knew the caller at the last exchange). */
  get registered(): boolean {
    return this.#registered;
  }

  /** Starts registering and beating in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Stops the loop (an exchange under way finishes) and deregisters, if
   * registered; a control plane that does not answer within a second is
   * left to notice the missed heartbeats. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      await this.#loop;
      if (!this.#registered) return;
      this.#registered = false;
      await this.#o.deregister(1000).catch(() => undefined);
    })();
    return this.#closing;
  }

  /**
   * The wait before the next heartbeat. The first after registering comes
   * at a random point of the interval, and each later one within a tenth of
   * it either way: daemons that registered together (thousands of workers
   * starting at once, or coming back after a control-plane restart) would
   * otherwise beat together, every interval, as one burst.
   */
  #nextBeatMs(justRegistered: boolean): number {
    const ms = this.#heartbeatMs;
    const x = (this.#o.random ?? Math.random)();
    return Math.round(justRegistered ? ms * x : ms * (0.9 + 0.2 * x));
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const log = this.#o.logger;
    let failures = 0;
    while (!signal.aborted) {
      let justRegistered = false;
      try {
        if (!this.#registered) {
          const asked = await this.#o.register();
          this.#heartbeatMs = this.#o.heartbeatIntervalMs ?? asked;
          this.#registered = true;
          justRegistered = true;
          log.info('registered with the control plane');
          this.#onRegistered();
        } else if (!(await this.#o.heartbeat(Math.max(1000, this.#heartbeatMs)))) {
          log.warn('the control plane does not know this daemon; registering again');
          this.#registered = false;
          continue;
        }
        failures = 0;
        await sleep(this.#nextBeatMs(justRegistered), signal).catch(() => undefined);
      } catch (err) {
        failures++;
        // Not at the first failure: thousands of workers starting together
        // (`baton up --workers 5000`) each miss once while the control plane
        // answers the others, and one warning each buries what matters.
        if (failures === QUIET_FAILURES || failures % 10 === 0)
          log.warn(
            { err: errorMessage(err), attempts: failures },
            'cannot reach the control plane',
          );
        await sleep(
          this.#registered ? this.#heartbeatMs : backoffDelayMs(failures, 100, 2000),
          signal,
        ).catch(() => undefined);
      }
    }
  }
}
