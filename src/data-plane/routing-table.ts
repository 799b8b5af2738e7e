/**
 * What the data plane routes by: the functions and their ready sandboxes
 * (endpoints), as the control plane pushes them (`applyUpdates`, in order),
 * with a connection pool per sandbox address. A removed endpoint with
 * requests in flight retires: nothing new goes to it, and its pool closes
 * once they end. What the changes mean for waiting requests (queues to move
 * or fail) is the listener's.
 */
import type { Logger } from '../shared/logger.js';
import { waitAtMost } from '../shared/time.js';
import {
  FunctionDrainingError,
  FunctionNotFoundError,
  RemoteError,
  type BatonError,
} from '../shared/errors.js';
import type { DataPlaneUpdate } from '../rpc/contracts/data-plane.js';
import type { Endpoint, FunctionRoute } from '../rpc/contracts/common.js';
import type { LoadBalancer } from './load-balancer/load-balancer.js';
import { EndpointState, FunctionState } from './function-state.js';
import { Upstreams } from './upstreams.js';

export interface TableListener<Q> {
  /** `fn` has new endpoints: requests waiting for it can go. */
  endpointsAdded(fn: FunctionState<Q>): void;
  /** `fn` is gone, or its sandboxes cannot start: its waiting requests fail with `err`. */
  failQueue(fn: FunctionState<Q>, err: BatonError): void;
  /** `fn` is gone (after failQueue). */
  functionRemoved(fn: FunctionState<Q>): void;
  /** A whole table arrived (the first one, or a resynchronisation). */
  reset(): void;
}

export class RoutingTable<Q> {
  readonly #functions = new Map<string, FunctionState<Q>>();
  readonly #endpoints = new Map<string, { fn: FunctionState<Q>; ep: EndpointState }>();
  /** Removed endpoints with requests still in flight. */
  readonly #retiring = new Map<string, EndpointState>();
  readonly #upstreams = new Upstreams();
  readonly #balancer: () => LoadBalancer;
  readonly #log: Logger;
  #listener: TableListener<Q> | undefined;

  constructor(balancer: () => LoadBalancer, logger: Logger) {
    this.#balancer = balancer;
    this.#log = logger;
  }

  listen(listener: TableListener<Q>): void {
    this.#listener = listener;
  }

  function(name: string): FunctionState<Q> | undefined {
    return this.#functions.get(name);
  }

  functions(): IterableIterator<FunctionState<Q>> {
    return this.#functions.values();
  }

  /** Applies a batch of changes in order: reset, functions, endpoints (with end reasons), failures. */
  apply(u: DataPlaneUpdate): void {
    if (u.reset === true) {
      const keep = new Set((u.upsertFunctions ?? []).map((f) => f.name));
      for (const name of [...this.#functions.keys()])
        if (!keep.has(name)) this.#removeFunction(name);
      const keepEps = new Set((u.addEndpoints ?? []).map((e) => e.id));
      for (const id of [...this.#endpoints.keys()]) if (!keepEps.has(id)) this.removeEndpoint(id);
    }
    for (const route of u.upsertFunctions ?? []) this.#upsertFunction(route);
    for (const name of u.removeFunctions ?? []) this.#removeFunction(name);
    const touched = new Set<FunctionState<Q>>();
    for (const e of u.addEndpoints ?? []) {
      const fn = this.#addEndpoint(e);
      if (fn !== undefined) touched.add(fn);
    }
    for (const { id, reason } of u.endReasons ?? [])
      (this.#endpoints.get(id)?.ep ?? this.#retiring.get(id))?.ended(reason);
    for (const id of u.removeEndpoints ?? []) this.removeEndpoint(id);
    for (const fn of touched) this.#listener?.endpointsAdded(fn);
    for (const f of u.failQueued ?? []) {
      const fn = this.#functions.get(f.function);
      if (fn !== undefined && fn.endpoints.length === 0)
        this.#listener?.failQueue(fn, new RemoteError(f.code, f.message));
    }
    if (u.reset === true) this.#listener?.reset();
  }

  /** Stops sending to a sandbox; it retires until its requests end. Returns it, if it was routed to. */
  removeEndpoint(id: string): EndpointState | undefined {
    const entry = this.#endpoints.get(id);
    if (entry === undefined) return undefined;
    this.#endpoints.delete(id);
    entry.fn.removeEndpoint(entry.ep);
    const { host, port } = entry.ep.endpoint;
    if (entry.ep.inflight > 0) this.#retiring.set(id, entry.ep);
    void entry.ep.whenIdle().then(() => {
      this.#retiring.delete(id);
      this.#upstreams.release(host, port);
    });
    return entry.ep;
  }

  /** Removes the endpoints, then resolves once their requests ended or `timeoutMs` passed. */
  async drainSandboxes(ids: string[], timeoutMs: number): Promise<{ remaining: number }> {
    const eps: EndpointState[] = [];
    for (const id of ids) {
      const e = this.removeEndpoint(id) ?? this.#retiring.get(id);
      if (e !== undefined) eps.push(e);
    }
    await waitAtMost(Promise.all(eps.map((e) => e.whenIdle())), timeoutMs);
    return { remaining: eps.reduce((n, e) => n + e.inflight, 0) };
  }

  /**
   * Refuses new requests for the function and resolves once its queued and
   * in-flight ones ended (or `timeoutMs` passed); queued ones with no
   * sandbox to run on fail.
   */
  async drainFunction(name: string, timeoutMs: number): Promise<{ remaining: number }> {
    const fn = this.#functions.get(name);
    if (fn === undefined) return { remaining: 0 };
    fn.draining = true;
    if (fn.endpoints.length === 0)
      this.#listener?.failQueue(
        fn,
        new FunctionDrainingError(`function "${name}" is being deleted`),
      );
    await waitAtMost(fn.whenIdle(), timeoutMs);
    return { remaining: fn.inflight };
  }

  /** Closes every connection pool. */
  close(): void {
    this.#upstreams.close();
  }

  #upsertFunction(route: FunctionRoute): void {
    const fn = this.#functions.get(route.name);
    if (fn === undefined) {
      this.#functions.set(route.name, new FunctionState<Q>(route, this.#balancer()));
      return;
    }
    fn.route = route;
    fn.draining = false;
  }

  #removeFunction(name: string): void {
    const fn = this.#functions.get(name);
    if (fn === undefined) return;
    this.#functions.delete(name);
    for (const ep of [...fn.endpoints]) this.removeEndpoint(ep.id);
    this.#listener?.failQueue(fn, new FunctionNotFoundError(name));
    this.#listener?.functionRemoved(fn);
  }

  #addEndpoint(e: Endpoint): FunctionState<Q> | undefined {
    if (this.#endpoints.has(e.id)) return undefined;
    const fn = this.#functions.get(e.function);
    if (fn === undefined) {
      this.#log.warn(
        { sandbox: e.id, function: e.function },
        'endpoint for an unknown function ignored',
      );
      return undefined;
    }
    const ep = new EndpointState(e, this.#upstreams.acquire(e.host, e.port));
    fn.endpoints.push(ep);
    this.#endpoints.set(e.id, { fn, ep });
    return fn;
  }
}
