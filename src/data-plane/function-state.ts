/**
 * What the data plane knows: registered functions, their ready sandboxes
 * (endpoints) and their queues of waiting requests. Plain state with no I/O;
 * the data plane drives it.
 */
import type { SandboxPool } from './sandbox-pool.js';
import type { Endpoint, FunctionRoute } from '../rpc/contracts/common.js';
import type { BalancedEndpoint, LoadBalancer } from './load-balancer/load-balancer.js';
import { WaitQueue } from './queue.js';
import { zeroTraffic, type LoadTotals } from '../shared/cluster-objects.js';
import { ChangeSignal } from '../shared/time.js';

export class EndpointState implements BalancedEndpoint {
  inflight = 0;
  removed = false;
  /** How the sandbox ended, once the control plane said (it died, or was stopped by a limit). */
  endReason: string | undefined;
  #idleWaiters: Array<() => void> = [];
  readonly #end = new ChangeSignal();

  constructor(
    readonly endpoint: Endpoint,
    readonly pool: SandboxPool,
  ) {}

  get id(): string {
    return this.endpoint.id;
  }

  /** Resolves when nothing is in flight on this endpoint. */
  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Records how the sandbox ended and wakes whoever waits for it. Idempotent. */
  ended(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.#end.notify();
  }

  /** How the sandbox ended, if the control plane says so within `timeoutMs`; else undefined. */
  async whenEnded(timeoutMs: number): Promise<string | undefined> {
    if (this.endReason === undefined) await this.#end.next(timeoutMs);
    return this.endReason;
  }

  release(): void {
    this.inflight--;
    if (this.inflight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

export class FunctionState<Q> {
  route: FunctionRoute;
  readonly endpoints: EndpointState[] = [];
  readonly queue = new WaitQueue<Q>();
  /** Requests being proxied now. */
  executing = 0;
  successful = 0;
  /** Its invocations answered here, for the control plane's dashboard. */
  readonly totals = zeroTraffic();
  /** Its load here over time, for the autoscaler (see accrue and served). */
  readonly load: LoadTotals = { inflightMs: 0, served: 0, serviceMs: 0 };
  #accruedAt = performance.now();
  #accruedInflight = 0;
  draining = false;
  /** Timer that expires the queue head; set while the queue is not empty. */
  expiryTimer: NodeJS.Timeout | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(
    route: FunctionRoute,
    readonly balancer: LoadBalancer,
  ) {
    this.route = route;
  }

  get name(): string {
    return this.route.name;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Queued plus executing: the autoscaling metric. */
  get inflight(): number {
    return this.executing + this.queue.length;
  }

  /**
   * Brings `load.inflightMs`, the in-flight count integrated over time, up
   * to `now`. Called at each change of the count (and before a report): the
   * time since the previous call is charged to the count it had then.
   */
  accrue(now = performance.now()): void {
    this.load.inflightMs += this.#accruedInflight * (now - this.#accruedAt);
    this.#accruedAt = now;
    this.#accruedInflight = this.inflight;
  }

  /** A sandbox finished with one of its requests, `ms` after it was sent there. */
  served(ms: number): void {
    this.load.served++;
    this.load.serviceMs += ms;
  }

  /**
   * A free endpoint by the balancer. An endpoint that makes a fresh sandbox
   * for every request has no concurrency limit: each request is alone in its
   * own isolate (the function's concurrency is per sandbox).
   */
  pick(): EndpointState | undefined {
    if (this.endpoints.length === 0) return undefined;
    const fresh = this.endpoints.every((e) => e.endpoint.freshPerRequest === true);
    return this.balancer.pick(this.endpoints, fresh ? 0 : this.route.concurrency);
  }

  removeEndpoint(ep: EndpointState): void {
    const i = this.endpoints.indexOf(ep);
    if (i >= 0) this.endpoints.splice(i, 1);
    ep.removed = true;
  }

  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Call after executing or the queue shrank. */
  notifyIfIdle(): void {
    if (this.inflight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
