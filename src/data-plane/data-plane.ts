/**
 * The data plane: one proxy process that routes invocations by Host header
 * (or `/function/<name>/...`, request-router.ts), queues them per function
 * while a sandbox is being created, throttles each sandbox to its
 * concurrency, load-balances (invocations.ts), and reports in-flight counts
 * to the control plane. The control plane pushes functions and endpoints
 * through the data-plane RPC service (routing-table.ts); a function not
 * pushed yet is asked for by the first request for it (function-lookup.ts). This file wires
 * those together and holds the session with the control plane.
 * Leaves out: async invocations and request retries.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import { FunctionDrainingError, errorMessage } from '../shared/errors.js';
import type { ServiceClient } from '../rpc/contract.js';
import {
  tcpTransport,
  type RpcChannel,
  type RpcListener,
  type RpcTransport,
} from '../rpc/transport.js';
import { connectToLeader, type Address } from '../rpc/leader-channel.js';
import { EpochFence } from '../rpc/epoch.js';
import { ControlPlaneSession } from '../rpc/control-plane-session.js';
import { controlPlaneService, type ControlPlaneService } from '../rpc/contracts/control-plane.js';
import { dataPlaneService } from '../rpc/contracts/data-plane.js';
import type { DataPlaneRecord } from '../shared/cluster-objects.js';
import type { LoadBalancer } from './load-balancer/load-balancer.js';
import {
  createDualProtocolServer,
  type DualProtocolServer,
  type ListenerOptions,
} from './listener.js';
import type { EndpointState } from './function-state.js';
import { MetricsReporter, type FunctionMetric } from './metrics-reporter.js';
import { DataPlaneMetrics } from './prometheus-metrics.js';
import { startMetricsServer } from '../shared/prometheus.js';
import type { Server } from 'node:http';
import { RoutingTable } from './routing-table.js';
import { Invocations, type Pending } from './invocations.js';
import { createAsyncReadServer } from './dirigent-async.js';
import { DEFAULT_TABLE_WAIT_MS, RequestRouter } from './request-router.js';
import { FunctionLookup } from './function-lookup.js';
import {
  DEFAULT_MAX_QUEUE_PER_FUNCTION,
  DEFAULT_METRICS_INTERVAL_MS,
} from './data-plane-options.js';

export { DEFAULT_TABLE_WAIT_MS };

export interface DataPlaneOptions extends ListenerOptions {
  id?: string;
  host: string;
  proxyPort: number;
  rpcPort: number;
  /** Each control-plane replica's RPC address (calls go to the leader). */
  controlPlanes: readonly Address[];
  loadBalancer: () => LoadBalancer;
  metricsIntervalMs?: number;
  /** Node's process metrics in `prometheus` too (the process's only daemon). */
  processMetrics?: boolean;
  /** Where `prometheus` is served (GET /metrics); not served when undefined. */
  metricsPort?: number;
  /** Dirigent's async read side (dirigent-async.ts); not served when undefined. */
  asyncReadPort?: number;
  /** Dirigent's async mode: every request is asynchronous. */
  asyncMode?: boolean;
  heartbeatIntervalMs?: number;
  maxQueuePerFunction?: number;
  tableWaitMs?: number;
  logger: Logger;
  /** How it serves the control plane and reaches it (default: JSON frames over TCP). */
  transport?: RpcTransport;
}

export class DataPlane implements AsyncDisposable {
  readonly #log: Logger;
  readonly #table: RoutingTable<Pending>;
  readonly #invocations: Invocations;
  readonly #router: RequestRouter;
  readonly #lookup: FunctionLookup;
  readonly #proxy: DualProtocolServer;
  readonly #rpc: RpcListener;
  readonly #cpConn: RpcChannel;
  readonly #cp: ServiceClient<ControlPlaneService>;
  readonly #session: ControlPlaneSession;
  readonly #metrics: MetricsReporter;
  /** Its Prometheus metrics (served on --metrics-port by `baton data-plane`). */
  readonly prometheus: DataPlaneMetrics;
  #record: DataPlaneRecord | undefined;
  #metricsServer: { server: Server; port: number } | undefined;
  #asyncRead: DualProtocolServer | undefined;
  /** Where Dirigent's async read side listens (when asked for). */
  asyncReadPort: number | undefined;
  #closing: Promise<void> | undefined;
  #synced!: () => void;
  /** Resolves once the control plane's first full update has been applied. */
  readonly synced = new Promise<void>((resolve) => (this.#synced = resolve));

  private constructor(opts: DataPlaneOptions) {
    this.#log = opts.logger;
    const transport = opts.transport ?? tcpTransport;
    const maxQueue = opts.maxQueuePerFunction ?? DEFAULT_MAX_QUEUE_PER_FUNCTION;
    this.#metrics = new MetricsReporter(
      (metrics) => this.#pushMetrics(metrics),
      opts.metricsIntervalMs ?? DEFAULT_METRICS_INTERVAL_MS,
      opts.logger,
    );
    this.#table = new RoutingTable<Pending>(opts.loadBalancer, opts.logger);
    this.prometheus = new DataPlaneMetrics(
      () => this.#table.functions(),
      opts.processMetrics ?? false,
    );
    this.#invocations = new Invocations({
      metrics: this.#metrics,
      prometheus: this.prometheus,
      maxQueue,
      logger: opts.logger,
      removeEndpoint: (id) => this.#table.removeEndpoint(id),
      evict: (ep, code, reason) => this.#evict(ep, code, reason),
    });
    const tableWaitMs = opts.tableWaitMs ?? DEFAULT_TABLE_WAIT_MS;
    this.#lookup = new FunctionLookup((name) => this.#lookUp(name, tableWaitMs));
    this.#router = new RequestRouter({
      table: this.#table,
      lookup: this.#lookup,
      invocations: this.#invocations,
      maxHeld: maxQueue,
      tableWaitMs,
      handOver: (input) => this.#cp.enqueueInvocation(input, { deadlineMs: 10_000 }),
      invocation: (id) => this.#invocation(id),
      asyncMode: opts.asyncMode === true,
    });
    const invocations = this.#invocations;
    this.#table.listen({
      endpointsAdded: (fn) => invocations.endpointsAdded(fn),
      failQueue: (fn, err) => invocations.failQueue(fn, err),
      functionRemoved: (fn) => invocations.functionRemoved(fn),
      reset: () => {
        this.#lookup.forget();
        this.#synced();
        this.#router.release();
      },
    });
    this.#proxy = createDualProtocolServer((ex) => this.#router.onRequest(ex), opts);
    // Calls from a deposed control-plane leader are refused (see rpc/epoch.ts).
    this.#rpc = transport.createListener(opts.logger, { admit: new EpochFence(opts.logger).admit });
    this.#rpc.mount(dataPlaneService, {
      applyUpdates: (update) => {
        this.#table.apply(update);
        return Promise.resolve({});
      },
      drainSandboxes: ({ ids, timeoutMs }) => this.#table.drainSandboxes(ids, timeoutMs),
      drainFunction: ({ name, timeoutMs }) => this.#table.drainFunction(name, timeoutMs),
    });
    this.#cpConn = connectToLeader(transport, opts.controlPlanes, opts.logger);
    this.#cp = this.#cpConn.client(controlPlaneService);
    this.#session = new ControlPlaneSession({
      logger: opts.logger,
      ...(opts.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: opts.heartbeatIntervalMs }),
      register: async () =>
        (await this.#cp.registerDataPlane({ dataPlane: this.record }, { deadlineMs: 5000 }))
          .heartbeatIntervalMs,
      heartbeat: async (deadlineMs) =>
        (await this.#cp.dataPlaneHeartbeat({ dataPlaneId: this.record.id }, { deadlineMs })).known,
      deregister: (deadlineMs) =>
        this.#cp.deregisterDataPlane({ dataPlaneId: this.record.id }, { deadlineMs }),
    });
  }

  static async start(opts: DataPlaneOptions): Promise<DataPlane> {
    const dp = new DataPlane(opts);
    const rpcAddr: AddressInfo = await dp.#rpc.listen(opts.rpcPort, opts.host);
    const proxyAddr: AddressInfo = await dp.#proxy.listen(opts.proxyPort, opts.host);
    if (opts.metricsPort !== undefined)
      dp.#metricsServer = await startMetricsServer(
        dp.prometheus.registry,
        opts.host,
        opts.metricsPort,
        opts.logger,
      );
    if (opts.asyncReadPort !== undefined) {
      dp.#asyncRead = createAsyncReadServer((id) => dp.#invocation(id));
      dp.asyncReadPort = (await dp.#asyncRead.listen(opts.asyncReadPort, opts.host)).port;
    }
    dp.#record = {
      id: opts.id ?? `${opts.host}-${proxyAddr.port}`,
      host: opts.host,
      rpcPort: rpcAddr.port,
      proxyPort: proxyAddr.port,
      ...(opts.tls === undefined ? {} : { tls: true }),
      ...(dp.#metricsServer === undefined ? {} : { metricsPort: dp.#metricsServer.port }),
      ...(dp.asyncReadPort === undefined ? {} : { asyncReadPort: dp.asyncReadPort }),
    };
    dp.#session.start();
    return dp;
  }

  /** Whether the control plane holds the function (then it pushed it here). */
  async #lookUp(name: string, deadlineMs: number): Promise<boolean> {
    if (!this.#session.registered) throw new Error('not registered with the control plane yet');
    return (await this.#cp.lookupFunction({ dataPlaneId: this.record.id, name }, { deadlineMs }))
      .found;
  }

  #invocation(id: string): Promise<unknown> {
    return this.#cp.getInvocation({ id }, { deadlineMs: 10_000 });
  }

  get record(): DataPlaneRecord {
    return this.#record!;
  }

  /** Stops accepting, lets requests in flight finish (bounded), deregisters. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#session.close();
      this.#metrics.close();
      const closing = new FunctionDrainingError('data plane is shutting down');
      this.#router.release(closing);
      for (const fn of this.#table.functions()) this.#invocations.failQueue(fn, closing);
      await this.#proxy.close();
      this.#metricsServer?.server.close();
      await this.#asyncRead?.close();
      await this.#rpc.close();
      await this.#cpConn.close();
      this.#table.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #pushMetrics(metrics: FunctionMetric[]): Promise<void> {
    if (!this.#session.registered) return Promise.reject(new Error('not registered yet'));
    return this.#cp.reportMetrics({ dataPlaneId: this.record.id, metrics }).then(() => undefined);
  }

  /** Stops routing to a sandbox and asks the control plane to replace it. */
  #evict(ep: EndpointState, code: string, reason: string): void {
    this.#table.removeEndpoint(ep.id);
    this.#log.warn({ sandbox: ep.id, function: ep.endpoint.function, reason }, 'sandbox evicted');
    if (!this.#session.registered) return;
    this.#cp
      .evictSandboxes({ dataPlaneId: this.record.id, sandboxes: [{ id: ep.id, code, reason }] })
      .catch((err: unknown) =>
        this.#log.warn(
          { sandbox: ep.id, err: errorMessage(err) },
          'cannot ask the control plane to replace a sandbox',
        ),
      );
  }
}
