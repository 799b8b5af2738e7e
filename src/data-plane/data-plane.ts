/**
 * The data plane: one proxy process that routes invocations by Host header
 * (or `/function/<name>/...`), queues them per function while a sandbox is
 * being created, throttles each sandbox to its concurrency, load-balances,
 * and reports in-flight counts to the control plane. The control plane
 * pushes functions and endpoints through the data-plane RPC service.
 * Requests that arrive before the control plane's first function table wait
 * for it (bounded) rather than being told a function does not exist.
 * Leaves out: async invocations and request retries.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import {
  BatonError,
  ColdStartTimeoutError,
  ExecutionTimeoutError,
  FunctionDrainingError,
  FunctionNotFoundError,
  InvalidArgumentError,
  QueueFullError,
  RemoteError,
  SandboxExitedError,
  SandboxUnreachableError,
  UnavailableError,
  errorMessage,
} from '../shared/errors.js';
import { backoffDelayMs, sleep } from '../shared/time.js';
import { QUEUED_HEADER, START_HEADER } from '../shared/http-headers.js';
import { RpcConnection } from '../rpc/client.js';
import { RpcServer } from '../rpc/server.js';
import type { ServiceClient } from '../rpc/contract.js';
import { controlPlaneService, type ControlPlaneService } from '../rpc/contracts/control-plane.js';
import { dataPlaneService, type DataPlaneUpdate } from '../rpc/contracts/data-plane.js';
import type { Endpoint, FunctionRoute } from '../rpc/contracts/common.js';
import type { DataPlaneRecord } from '../shared/cluster-objects.js';
import type { LoadBalancer } from './load-balancer/load-balancer.js';
import {
  createDualProtocolServer,
  type AnyRequest,
  type AnyResponse,
  type DualProtocolServer,
  type ListenerOptions,
} from './listener.js';
import { EndpointState, FunctionState } from './function-table.js';
import { MetricsReporter, type FunctionMetric } from './metrics-reporter.js';
import { Upstreams } from './upstreams.js';
import { ClientGoneError, SandboxRefusedError, forward, hasBody, isGone } from './proxy.js';
import type { Waiter } from './queue.js';

export const DEFAULT_METRICS_INTERVAL_MS = 2_000;
export const DEFAULT_MAX_QUEUE_PER_FUNCTION = 100_000;
/** Longest a request waits for the control plane's first function table before a retryable 503. */
export const DEFAULT_TABLE_WAIT_MS = 5_000;
/** Longest a request whose sandbox broke off waits to learn how the sandbox ended. */
const END_REASON_WAIT_MS = 1_000;

export interface DataPlaneOptions extends ListenerOptions {
  id?: string;
  host: string;
  proxyPort: number;
  rpcPort: number;
  controlPlane: { host: string; port: number };
  loadBalancer: () => LoadBalancer;
  metricsIntervalMs?: number;
  heartbeatIntervalMs?: number;
  maxQueuePerFunction?: number;
  tableWaitMs?: number;
  logger: Logger;
}

/** A request that arrived before the first function table. */
interface Held {
  req: AnyRequest;
  res: AnyResponse;
  timer: NodeJS.Timeout;
}

/** A request that is queued or being proxied. */
interface Pending {
  req: AnyRequest;
  res: AnyResponse;
  fn: FunctionState<Pending>;
  path: string;
  host: string;
  waiter: Waiter<Pending> | undefined;
  /** When it joined the function's queue (no free sandbox on arrival); undefined if it never waited. */
  queuedAt: number | undefined;
  /** It arrived while the function had no sandbox at all. */
  cold: boolean;
  /** Times it was sent to a sandbox that refused the connection. */
  refused: number;
}

/** A request refused by this many dead sandboxes in a row gets the 502. */
const MAX_REFUSED = 3;

const WARM_START = { [START_HEADER]: 'warm' };
const FRESH_START = { [START_HEADER]: 'cold' };
const CLIENT_GONE = new ClientGoneError();

export class DataPlane implements AsyncDisposable {
  readonly #opts: DataPlaneOptions;
  readonly #log: Logger;
  readonly #functions = new Map<string, FunctionState<Pending>>();
  readonly #endpoints = new Map<string, { fn: FunctionState<Pending>; ep: EndpointState }>();
  /** Removed endpoints with requests still in flight. */
  readonly #retiring = new Map<string, EndpointState>();
  readonly #upstreams = new Upstreams();
  readonly #proxy: DualProtocolServer;
  readonly #rpc: RpcServer;
  readonly #cpConn: RpcConnection;
  readonly #cp: ServiceClient<ControlPlaneService>;
  readonly #metrics: MetricsReporter;
  readonly #stop = new AbortController();
  readonly #maxQueue: number;
  #record: DataPlaneRecord | undefined;
  #registered = false;
  #heartbeatMs: number;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #successful = 0;
  /** Requests waiting for the first function table; undefined once it arrived. */
  #held: Set<Held> | undefined = new Set();
  #synced!: () => void;
  /** Resolves once the control plane's first full update has been applied. */
  readonly synced = new Promise<void>((resolve) => (this.#synced = resolve));

  private constructor(opts: DataPlaneOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#maxQueue = opts.maxQueuePerFunction ?? DEFAULT_MAX_QUEUE_PER_FUNCTION;
    this.#heartbeatMs = opts.heartbeatIntervalMs ?? 5_000;
    this.#proxy = createDualProtocolServer((req, res) => this.#onRequest(req, res), opts);
    this.#rpc = new RpcServer({ logger: opts.logger });
    this.#cpConn = new RpcConnection({
      ...opts.controlPlane,
      logger: opts.logger,
      peerName: 'control plane',
    });
    this.#cp = this.#cpConn.client(controlPlaneService);
    this.#metrics = new MetricsReporter(
      (metrics) => this.#pushMetrics(metrics),
      opts.metricsIntervalMs ?? DEFAULT_METRICS_INTERVAL_MS,
      opts.logger,
    );
  }

  static async start(opts: DataPlaneOptions): Promise<DataPlane> {
    const dp = new DataPlane(opts);
    dp.#mountRpc();
    const rpcAddr: AddressInfo = await dp.#rpc.listen(opts.rpcPort, opts.host);
    const proxyAddr: AddressInfo = await dp.#proxy.listen(opts.proxyPort, opts.host);
    dp.#record = {
      id: opts.id ?? `${opts.host}-${proxyAddr.port}`,
      host: opts.host,
      rpcPort: rpcAddr.port,
      proxyPort: proxyAddr.port,
    };
    dp.#loop = dp.#registrationLoop();
    return dp;
  }

  get record(): DataPlaneRecord {
    return this.#record!;
  }

  /** Stops accepting, lets requests in flight finish (bounded), deregisters. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      await this.#loop;
      this.#metrics.close();
      this.#releaseHeld(new FunctionDrainingError('data plane is shutting down'));
      for (const fn of this.#functions.values())
        this.#failQueue(fn, new FunctionDrainingError('data plane is shutting down'));
      await this.#proxy.close();
      if (this.#registered) {
        await this.#cp
          .deregisterDataPlane({ dataPlaneId: this.record.id }, { deadlineMs: 1000 })
          .catch(() => undefined);
      }
      await this.#rpc.close();
      await this.#cpConn.close();
      await this.#upstreams.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- invocation path ------------------------------------------------------

  #onRequest(req: AnyRequest, res: AnyResponse): void {
    const authority = (req.headers.host ?? req.headers[':authority']) as string | undefined;
    const hostName = stripPort(authority ?? '');
    let fn = this.#functions.get(hostName);
    let path = req.url ?? '/';
    let host = authority ?? hostName;
    if (fn === undefined) {
      if (path.startsWith('/function/')) {
        const rest = path.slice('/function/'.length);
        const slash = rest.search(/[/?]/);
        const name = slash < 0 ? rest : rest.slice(0, slash);
        fn = this.#functions.get(name);
        if (fn === undefined) {
          if (this.#held !== undefined) return this.#hold(req, res);
          return sendError(res, new FunctionNotFoundError(name));
        }
        path = slash < 0 ? '/' : rest[slash] === '?' ? `/${rest.slice(slash)}` : rest.slice(slash);
        host = name;
      } else if (path === '/health') {
        if (this.#held !== undefined)
          return sendError(
            res,
            new UnavailableError('no function table from the control plane yet'),
          );
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('OK\n');
        return;
      } else if (path === '/metrics' || path.startsWith('/metrics?')) {
        return this.#serveMetrics(path, res);
      } else if (this.#held !== undefined) {
        return this.#hold(req, res);
      } else {
        return sendError(res, new FunctionNotFoundError(hostName));
      }
    }
    if (fn.draining)
      return sendError(res, new FunctionDrainingError(`function "${fn.name}" is being deleted`));
    const p: Pending = {
      req,
      res,
      fn,
      path,
      host,
      waiter: undefined,
      queuedAt: undefined,
      cold: false,
      refused: 0,
    };
    this.#route(p);
  }

  /** Keeps a request until the first function table arrives (see #apply), or answers a retryable 503. */
  #hold(req: AnyRequest, res: AnyResponse): void {
    const held = this.#held!;
    if (held.size >= this.#maxQueue)
      return sendError(res, new QueueFullError('too many requests wait for the function table'));
    const waitMs = this.#opts.tableWaitMs ?? DEFAULT_TABLE_WAIT_MS;
    const h: Held = {
      req,
      res,
      timer: setTimeout(() => {
        held.delete(h);
        sendError(
          res,
          new UnavailableError(
            `the data plane has had no function table from the control plane for ${waitMs} ms; retry`,
          ),
        );
      }, waitMs),
    };
    held.add(h);
    res.once('close', () => {
      clearTimeout(h.timer);
      held.delete(h);
    });
  }

  /** Routes the held requests again (the table arrived) or answers them with `err`. */
  #releaseHeld(err?: BatonError): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    for (const h of held) {
      clearTimeout(h.timer);
      if (err === undefined) this.#onRequest(h.req, h.res);
      else sendError(h.res, err);
    }
  }

  #route(p: Pending): void {
    const ep = p.fn.queue.length === 0 ? p.fn.pick() : undefined;
    if (ep !== undefined) this.#dispatch(p, ep);
    else this.#enqueue(p);
  }

  #enqueue(p: Pending): void {
    const fn = p.fn;
    if (fn.queue.length >= this.#maxQueue) {
      return sendError(
        p.res,
        new QueueFullError(`function "${fn.name}" has ${fn.queue.length} requests waiting`),
      );
    }
    const first = fn.queue.length === 0;
    p.queuedAt = performance.now();
    p.cold = fn.endpoints.length === 0;
    p.waiter = fn.queue.push(p, Date.now());
    p.res.once('close', () => {
      if (p.waiter !== undefined && fn.queue.remove(p.waiter)) {
        p.waiter = undefined;
        this.#metrics.changed(fn, quietOr(fn));
        fn.notifyIfIdle();
      }
    });
    this.#scheduleExpiry(fn);
    this.#metrics.changed(fn, first ? 'now' : 'periodic');
  }

  #dispatch(p: Pending, ep: EndpointState): void {
    const fn = p.fn;
    ep.inflight++;
    fn.executing++;
    this.#metrics.changed(fn, quietOr(fn));
    const start =
      p.queuedAt === undefined
        ? ep.endpoint.freshPerRequest === true
          ? FRESH_START
          : WARM_START
        : {
            [START_HEADER]: p.cold || ep.endpoint.freshPerRequest === true ? 'cold' : 'queued',
            [QUEUED_HEADER]: (performance.now() - p.queuedAt).toFixed(2),
          };
    const reportsColdStart = ep.endpoint.reportsColdStart === true;
    // Cut short when the client leaves (the sandbox's slot is free at once)
    // or when the function's execution time-out passes.
    const abort = new AbortController();
    const onClose = () => {
      if (!p.res.writableEnded) abort.abort(CLIENT_GONE);
    };
    p.res.once('close', onClose);
    const timeoutMs = fn.route.timeoutMs;
    const timer = setTimeout(
      () =>
        abort.abort(
          new ExecutionTimeoutError(
            `function "${fn.name}" did not answer within its time-out of ${timeoutMs} ms (sandbox ${ep.id})`,
          ),
        ),
      timeoutMs,
    );
    const settled = () => {
      clearTimeout(timer);
      p.res.off('close', onClose);
    };
    forward(
      ep.pool,
      p.req,
      p.res,
      p.path,
      p.host,
      ep.id,
      abort.signal,
      start,
      reportsColdStart,
    ).then(
      (r) => {
        settled();
        if (r.status < 400) {
          fn.successful++;
          this.#successful++;
        }
        this.#finished(fn, ep);
      },
      (err: unknown) => {
        settled();
        this.#failed(p, ep, err);
      },
    );
  }

  /** A forward that did not complete: answer what can be answered, and act on what it says of the sandbox. */
  #failed(p: Pending, ep: EndpointState, err: unknown): void {
    const fn = p.fn;
    if (err instanceof ClientGoneError) return this.#finished(fn, ep);
    if (err instanceof ExecutionTimeoutError) {
      // The sandbox may still be burning: nothing more goes to it, and the
      // control plane replaces it.
      sendError(p.res, err);
      this.#finished(fn, ep);
      this.#evict(
        ep,
        err.code,
        `an invocation passed the execution time-out of ${fn.route.timeoutMs} ms`,
      );
      return;
    }
    // A sandbox that refuses connections is dead (its exit is on the way
    // from its worker): stop sending to it, and send a request that never
    // reached it to another sandbox or the queue rather than fail it.
    if (err instanceof SandboxRefusedError) this.#removeEndpoint(ep.id);
    const retry =
      err instanceof SandboxRefusedError && !hasBody(p.req) && ++p.refused < MAX_REFUSED;
    this.#finished(fn, ep);
    if (retry) {
      if (!isGone(p.res)) this.#route(p);
      return;
    }
    if (!(err instanceof SandboxUnreachableError) || err instanceof SandboxRefusedError)
      return sendError(p.res, err);
    // Broken off: if the sandbox died, its worker's report is on its way;
    // the client is told how it ended rather than "other side closed".
    void ep
      .whenEnded(END_REASON_WAIT_MS)
      .then((reason) =>
        sendError(
          p.res,
          reason === undefined
            ? err
            : new SandboxExitedError(
                `sandbox ${ep.id} of "${fn.name}" ended while serving the request: ${reason}`,
              ),
        ),
      );
  }

  /** Stops routing to a sandbox and asks the control plane to replace it. */
  #evict(ep: EndpointState, code: string, reason: string): void {
    this.#removeEndpoint(ep.id);
    this.#log.warn({ sandbox: ep.id, function: ep.endpoint.function, reason }, 'sandbox evicted');
    if (!this.#registered) return;
    this.#cp
      .evictSandboxes({ dataPlaneId: this.record.id, sandboxes: [{ id: ep.id, code, reason }] })
      .catch((err: unknown) =>
        this.#log.warn(
          { sandbox: ep.id, err: errorMessage(err) },
          'cannot ask the control plane to replace a sandbox',
        ),
      );
  }

  #finished(fn: FunctionState<Pending>, ep: EndpointState): void {
    ep.release();
    fn.executing--;
    if (fn.queue.length > 0) this.#drainQueue(fn);
    this.#metrics.changed(fn, quietOr(fn));
    fn.notifyIfIdle();
  }

  /** Sends queued requests to endpoints with free slots, oldest first. */
  #drainQueue(fn: FunctionState<Pending>): void {
    while (fn.queue.length > 0) {
      const ep = fn.pick();
      if (ep === undefined) break;
      const p = fn.queue.shift()!;
      p.waiter = undefined;
      if (isGone(p.res)) continue;
      this.#dispatch(p, ep);
    }
    if (fn.queue.length === 0 && fn.expiryTimer !== undefined) {
      clearTimeout(fn.expiryTimer);
      fn.expiryTimer = undefined;
    }
  }

  #scheduleExpiry(fn: FunctionState<Pending>): void {
    if (fn.expiryTimer !== undefined) return;
    const head = fn.queue.peek();
    if (head === undefined) return;
    const delay = Math.max(0, head.enqueuedAt + fn.route.coldStartTimeoutMs - Date.now());
    fn.expiryTimer = setTimeout(() => {
      fn.expiryTimer = undefined;
      this.#expire(fn);
    }, delay);
  }

  #expire(fn: FunctionState<Pending>): void {
    const now = Date.now();
    const timeout = fn.route.coldStartTimeoutMs;
    let expired = 0;
    for (
      let head = fn.queue.peek();
      head !== undefined && head.enqueuedAt + timeout <= now;
      head = fn.queue.peek()
    ) {
      const p = fn.queue.shift()!;
      p.waiter = undefined;
      expired++;
      sendError(
        p.res,
        new ColdStartTimeoutError(`no sandbox of "${fn.name}" became ready within ${timeout} ms`),
      );
    }
    if (expired > 0) {
      this.#log.warn({ function: fn.name, expired, timeoutMs: timeout }, 'cold-start timeout');
      this.#metrics.changed(fn, quietOr(fn));
      fn.notifyIfIdle();
    }
    this.#scheduleExpiry(fn);
  }

  #failQueue(fn: FunctionState<Pending>, err: BatonError): void {
    if (fn.expiryTimer !== undefined) {
      clearTimeout(fn.expiryTimer);
      fn.expiryTimer = undefined;
    }
    if (fn.queue.length === 0) return;
    for (const p of fn.queue.drain()) {
      p.waiter = undefined;
      sendError(p.res, err);
    }
    this.#metrics.changed(fn, quietOr(fn));
    fn.notifyIfIdle();
  }

  #serveMetrics(path: string, res: AnyResponse): void {
    const service = new URLSearchParams(path.slice('/metrics'.length).replace(/^\?/, '')).get(
      'service',
    );
    let body: { SuccessfulInvocations: number; Inflight: number; QueueDepth: number };
    if (service !== null) {
      const fn = this.#functions.get(service);
      if (fn === undefined)
        return sendError(res, new InvalidArgumentError(`unknown service "${service}"`));
      body = {
        SuccessfulInvocations: fn.successful,
        Inflight: fn.executing,
        QueueDepth: fn.queue.length,
      };
    } else {
      let inflight = 0;
      let queued = 0;
      for (const fn of this.#functions.values()) {
        inflight += fn.executing;
        queued += fn.queue.length;
      }
      body = { SuccessfulInvocations: this.#successful, Inflight: inflight, QueueDepth: queued };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  // ---- control-plane pushes -------------------------------------------------

  #mountRpc(): void {
    this.#rpc.mount(dataPlaneService, {
      applyUpdates: (update) => {
        this.#apply(update);
        return Promise.resolve({});
      },
      drainSandboxes: async ({ ids, timeoutMs }) => {
        const eps: EndpointState[] = [];
        for (const id of ids) {
          const e = this.#removeEndpoint(id) ?? this.#retiring.get(id);
          if (e !== undefined) eps.push(e);
        }
        await withTimeout(Promise.all(eps.map((e) => e.whenIdle())), timeoutMs);
        return { remaining: eps.reduce((n, e) => n + e.inflight, 0) };
      },
      drainFunction: async ({ name, timeoutMs }) => {
        const fn = this.#functions.get(name);
        if (fn === undefined) return { remaining: 0 };
        fn.draining = true;
        if (fn.endpoints.length === 0)
          this.#failQueue(fn, new FunctionDrainingError(`function "${name}" is being deleted`));
        await withTimeout(fn.whenIdle(), timeoutMs);
        return { remaining: fn.inflight };
      },
    });
  }

  #apply(u: DataPlaneUpdate): void {
    if (u.reset === true) {
      const keep = new Set((u.upsertFunctions ?? []).map((f) => f.name));
      for (const name of [...this.#functions.keys()])
        if (!keep.has(name)) this.#removeFunction(name);
      const keepEps = new Set((u.addEndpoints ?? []).map((e) => e.id));
      for (const id of [...this.#endpoints.keys()]) if (!keepEps.has(id)) this.#removeEndpoint(id);
    }
    for (const route of u.upsertFunctions ?? []) this.#upsertFunction(route);
    for (const name of u.removeFunctions ?? []) this.#removeFunction(name);
    const touched = new Set<FunctionState<Pending>>();
    for (const e of u.addEndpoints ?? []) {
      const fn = this.#addEndpoint(e);
      if (fn !== undefined) touched.add(fn);
    }
    for (const { id, reason } of u.endReasons ?? [])
      (this.#endpoints.get(id)?.ep ?? this.#retiring.get(id))?.ended(reason);
    for (const id of u.removeEndpoints ?? []) this.#removeEndpoint(id);
    for (const fn of touched) this.#drainQueue(fn);
    for (const f of u.failQueued ?? []) {
      const fn = this.#functions.get(f.function);
      if (fn !== undefined && fn.endpoints.length === 0)
        this.#failQueue(fn, new RemoteError(f.code, f.message, 502));
    }
    if (u.reset === true) {
      this.#synced();
      this.#releaseHeld();
    }
  }

  #upsertFunction(route: FunctionRoute): void {
    const fn = this.#functions.get(route.name);
    if (fn === undefined) {
      this.#functions.set(route.name, new FunctionState<Pending>(route, this.#opts.loadBalancer()));
      return;
    }
    fn.route = route;
    fn.draining = false;
  }

  #removeFunction(name: string): void {
    const fn = this.#functions.get(name);
    if (fn === undefined) return;
    this.#functions.delete(name);
    for (const ep of [...fn.endpoints]) this.#removeEndpoint(ep.id);
    this.#failQueue(fn, new FunctionNotFoundError(name));
    this.#metrics.forget(fn);
  }

  #addEndpoint(e: Endpoint): FunctionState<Pending> | undefined {
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

  #removeEndpoint(id: string): EndpointState | undefined {
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

  // ---- control-plane session ------------------------------------------------

  #pushMetrics(metrics: FunctionMetric[]): Promise<void> {
    if (!this.#registered) return Promise.reject(new Error('not registered yet'));
    return this.#cp.reportMetrics({ dataPlaneId: this.record.id, metrics }).then(() => undefined);
  }

  async #registrationLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!this.#registered) {
          const reply = await this.#cp.registerDataPlane(
            { dataPlane: this.record },
            { deadlineMs: 5000 },
          );
          this.#heartbeatMs = this.#opts.heartbeatIntervalMs ?? reply.heartbeatIntervalMs;
          this.#registered = true;
          this.#log.info({ dataPlane: this.record.id }, 'registered with the control plane');
        } else {
          const reply = await this.#cp.dataPlaneHeartbeat(
            { dataPlaneId: this.record.id },
            { deadlineMs: Math.max(1000, this.#heartbeatMs) },
          );
          if (!reply.known) {
            this.#log.warn('the control plane does not know this data plane; registering again');
            this.#registered = false;
            continue;
          }
        }
        failures = 0;
        await sleep(this.#heartbeatMs, signal).catch(() => undefined);
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 10 === 0) {
          this.#log.warn(
            { err: errorMessage(err), attempts: failures },
            'cannot reach the control plane',
          );
        }
        await sleep(
          this.#registered ? this.#heartbeatMs : backoffDelayMs(failures, 100, 2000),
          signal,
        ).catch(() => undefined);
      }
    }
  }
}

/** A function with nothing in flight any more is reported soon; other changes wait for the interval. */
function quietOr(fn: FunctionState<unknown>): 'soon' | 'periodic' {
  return fn.inflight === 0 ? 'soon' : 'periodic';
}

function stripPort(authority: string): string {
  if (authority.startsWith('['))
    return authority.slice(0, authority.indexOf(']') + 1).toLowerCase();
  const colon = authority.indexOf(':');
  return (colon < 0 ? authority : authority.slice(0, colon)).toLowerCase();
}

/** Answers with the error's status, code and one-line reason; retryable 503s say when to retry. */
function sendError(res: AnyResponse, err: unknown): void {
  if (res.headersSent || isGone(res)) return;
  const e = err instanceof BatonError ? err : new BatonError(errorMessage(err));
  const headers: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'x-baton-error': e.code,
  };
  if (e instanceof UnavailableError) headers['retry-after'] = '1';
  res.writeHead(e.httpStatus, headers);
  res.end(`${e.message}\n`);
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
