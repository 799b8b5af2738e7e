/**
 * The control plane: one process holding the function registry (persisted),
 * the cluster's sandboxes (in memory), the autoscaling loop, placement,
 * the membership of workers and data planes, and the push of endpoints to
 * every data plane. This file wires those modules together and gives the
 * HTTP API (http-api.ts) its queries; workers and data planes reach it over
 * the control-plane RPC service (control-plane-handlers.ts). It starts even
 * when its store cannot be read, and keeps trying until it can; while the
 * store is down later it keeps working from memory and refuses registrations.
 * With replicas (`startElection`), only the elected one acts: it loads the
 * state when elected, fences its store and sends its epoch with every call;
 * followers refuse RPC with BATON_ERR_NOT_LEADER (workers and data planes
 * move on to the leader) and their HTTP API forwards to the leader's.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import { NotLeaderError, StoreError } from '../shared/errors.js';
import { sleep, waitAtMost } from '../shared/time.js';
import type { FunctionSpec } from '../shared/function-spec.js';
import type { ClusterStatus, ControlPlaneMetrics } from '../shared/http-api.js';
import type { SupervisedDaemon } from '../shared/supervision.js';
import type { ClusterStore } from '../store/store.js';
import { controlPlaneService, type ControlPlaneService } from '../rpc/contracts/control-plane.js';
import {
  tcpTransport,
  withCallMetadata,
  type RpcListener,
  type RpcTransport,
} from '../rpc/transport.js';
import { epochMetadata } from '../rpc/epoch.js';
import type { ServiceHandlers } from '../rpc/contract.js';
import type { EtcdStore } from '../store/etcd.js';
import { Leadership, type Replica } from './leadership.js';
import type { Autoscaler } from './autoscaler/autoscaler.js';
import type { PlacementPolicy } from './placement/placement-policy.js';
import { ClusterState } from './cluster-state.js';
import { SandboxOrchestrator } from './sandbox-orchestrator.js';
import { StoreWatch, type StoreStatus } from './store-watch.js';
import { ScalingLoop } from './scaling-loop.js';
import { ControlPlanePrometheus } from './prometheus-metrics.js';
import { Membership } from './membership.js';
import { FunctionRegistry } from './function-registry.js';
import { SecretBook } from './secret-book.js';
import { Revisions } from './revisions.js';
import { AsyncInvocations } from './async-invocations.js';
import { recoverUntilDone } from './reconstruction.js';
import { controlPlaneHandlers } from './control-plane-handlers.js';
import { clusterStatus, controlPlaneMetrics, prometheusTargets } from './cluster-status.js';
import {
  DEFAULT_CP_HEARTBEAT_INTERVAL_MS,
  DEFAULT_WORKER_TIMEOUT_MS,
} from './control-plane-options.js';

export const HEALTH_CHECK_INTERVAL_MS = 1_000;
export const STORE_CHECK_INTERVAL_MS = 2_000;
/** Longest a call waits for the control plane to have loaded its state before it is refused. */
const RECOVERY_WAIT_MS = 3_000;

export interface ControlPlaneOptions {
  host: string;
  rpcPort: number;
  store: ClusterStore;
  placement: PlacementPolicy;
  autoscaler: Autoscaler;
  clock: Clock;
  logger: Logger;
  workerTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** `host:port` of a front load balancer; registration replies name it instead of the data planes. */
  frontAddress?: string;
  /** How it serves and reaches workers and data planes (default: JSON frames over TCP). */
  transport?: RpcTransport;
  /** One of several replicas: it acts (and loads the state) only once elected (startElection). */
  replicated?: boolean;
  /** Node's process metrics in `prometheus` too (the process's only daemon). */
  processMetrics?: boolean;
  /** Bounds of asynchronous invocations (async-invocations.ts). */
  async?: { maxQueued?: number; resultTtlMs?: number };
}

export interface ElectionOptions {
  store: EtcdStore;
  id: string;
  /** `http://host:port` of this replica's HTTP API (followers forward to the leader's). */
  registration: string;
  leaseTtlS?: number;
  /** This replica led and lost it: it must stop (its writes and calls are refused by then). */
  onDeposed: (reason: string) => void;
}

export type { FunctionStatus } from '../shared/http-api.js';

export class ControlPlane implements AsyncDisposable {
  readonly #state = new ClusterState();
  readonly #opts: ControlPlaneOptions;
  readonly #clock: Clock;
  readonly #store: ClusterStore;
  readonly #storeWatch: StoreWatch;
  readonly #orchestrator: SandboxOrchestrator;
  readonly #scaling: ScalingLoop;
  readonly #membership: Membership;
  /** The functions (revisions are functions of their own: NAME@N) and their listings. */
  readonly functions: FunctionRegistry;
  readonly revisions: Revisions;
  readonly invocations: AsyncInvocations;
  readonly #rpc: RpcListener;
  readonly #timers: NodeJS.Timeout[] = [];
  #rpcAddress: AddressInfo | undefined;
  #closing: Promise<void> | undefined;
  /** Set once the state has been loaded from the store. */
  #recovered = false;
  #recovery: Promise<void> = Promise.resolve();
  #leadership: Leadership | undefined;
  readonly startedAt: number;
  /** The daemons of this cluster as the supervisor that runs them (`baton up`) last reported them. */
  supervised: SupervisedDaemon[] | undefined;
  /** Its Prometheus metrics (served at /metrics of the HTTP API). */
  readonly prometheus: ControlPlanePrometheus;
  readonly secrets: SecretBook;

  private constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.#clock = opts.clock;
    this.#store = opts.store;
    const transport = opts.transport ?? tcpTransport;
    // Every call to a worker or data plane carries the epoch (rpc/epoch.ts).
    const outbound = withCallMetadata(
      transport,
      epochMetadata(() => this.#leadership?.epoch ?? 0),
    );
    const logger = opts.logger;
    const state = this.#state;
    this.#storeWatch = new StoreWatch(opts.store, logger, () => opts.clock.now());
    this.secrets = new SecretBook(state, opts.store, this.#storeWatch, opts.clock);
    this.#orchestrator = new SandboxOrchestrator({
      state,
      placement: opts.placement,
      clock: opts.clock,
      logger,
    });
    this.#scaling = new ScalingLoop(state, opts.autoscaler, this.#orchestrator, opts.clock);
    const counters = this.#orchestrator.counters;
    const leads = () => this.#acting;
    this.prometheus = new ControlPlanePrometheus(state, counters, leads, !!opts.processMetrics);
    this.#storeWatch.onCall = (seconds, ok) => this.prometheus.storeCall(seconds, ok);
    this.#membership = new Membership({
      state,
      orchestrator: this.#orchestrator,
      scaling: this.#scaling,
      store: opts.store,
      storeWatch: this.#storeWatch,
      transport: outbound,
      clock: opts.clock,
      logger,
      timeoutMs: opts.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS,
    });
    const common = {
      state,
      store: opts.store,
      storeWatch: this.#storeWatch,
      scaling: this.#scaling,
    };
    this.functions = new FunctionRegistry({ ...common, orchestrator: this.#orchestrator, logger });
    this.invocations = new AsyncInvocations({
      ...common,
      clock: opts.clock,
      logger,
      ...opts.async,
    });
    this.revisions = new Revisions({
      ...common,
      registry: this.functions,
      clock: opts.clock,
      logger,
    });
    this.#rpc = transport.createListener(logger);
    this.#rpc.mount(
      controlPlaneService,
      this.#leaderOnly(
        controlPlaneHandlers({
          state,
          membership: this.#membership,
          scaling: this.#scaling,
          orchestrator: this.#orchestrator,
          whenReady: () => this.whenReady(),
          heartbeatIntervalMs: opts.heartbeatIntervalMs ?? DEFAULT_CP_HEARTBEAT_INTERVAL_MS,
          invocations: this.invocations,
        }),
      ),
    );
    this.startedAt = opts.clock.now();
  }

  /**
   * Starts serving and loads the store, reconnecting to known workers and
   * data planes. Resolves once loaded, or, when the store cannot be read,
   * at once, loading in the background until it can (`ready` says which).
   */
  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    cp.#rpcAddress = await cp.#rpc.listen(opts.rpcPort, opts.host);
    cp.#timers.push(
      setInterval(
        () => cp.#acting && cp.prometheus.timeTick(() => cp.#scaling.tick()),
        opts.autoscaler.tickMs,
      ),
      setInterval(() => cp.#acting && cp.#membership.checkHealth(), HEALTH_CHECK_INTERVAL_MS),
      setInterval(() => void cp.#storeWatch.check(), STORE_CHECK_INTERVAL_MS),
    );
    if (opts.replicated !== true) {
      cp.#recover();
      await Promise.race([cp.#recovery, sleep(0)]);
    }
    return cp;
  }

  /**
   * Joins the election among replicas (the control plane was started with
   * `replicated`); once elected it loads the state and acts. Returns at once.
   */
  startElection(o: ElectionOptions): void {
    const self: Replica = {
      id: o.id,
      rpc: `${this.#opts.host}:${this.rpcAddress.port}`,
      registration: o.registration,
      pid: process.pid,
    };
    // A follower keeps the records warm, so that it can take over without reading them all.
    o.store.startMirror(this.#opts.logger);
    this.#leadership = new Leadership({
      store: o.store,
      self,
      logger: this.#opts.logger,
      ...(o.leaseTtlS === undefined ? {} : { leaseTtlS: o.leaseTtlS }),
      onElected: () => this.#recover(),
      onDeposed: (reason) => {
        this.#opts.logger.error({ reason }, 'deposed: this control plane no longer leads');
        o.onDeposed(reason);
      },
    });
    this.#leadership.start();
  }

  /** True while this control plane may act: it is the only one, or it leads. */
  get #acting(): boolean {
    return this.#leadership === undefined || this.#leadership.leading;
  }

  /** The leader's HTTP API while this replica follows (undefined while it acts). */
  get forwardTo(): { registration: string } | { none: string } | undefined {
    // About to lead: served here (whenReady waits for the election), not forwarded to itself.
    if (this.#acting || this.#leadership?.takingOver === true) return undefined;
    const leader = this.#leadership?.leader;
    return leader === undefined
      ? { none: 'no control-plane replica leads yet (an election is under way)' }
      : { registration: leader.registration };
  }

  #recover(): void {
    this.#recovery = recoverUntilDone({
      state: this.#state,
      store: this.#store,
      storeWatch: this.#storeWatch,
      membership: this.#membership,
      scaling: this.#scaling,
      logger: this.#opts.logger,
      closing: () => this.#closing !== undefined,
    }).then((done) => {
      this.#recovered = done;
      if (done) this.invocations.start();
    });
  }

  /** The handlers, each refusing with NotLeaderError while this replica follows. */
  #leaderOnly(
    handlers: ServiceHandlers<ControlPlaneService>,
  ): ServiceHandlers<ControlPlaneService> {
    const out: Record<string, unknown> = {};
    for (const [name, handler] of Object.entries(handlers) as Array<
      [string, (...args: unknown[]) => Promise<unknown>]
    >) {
      out[name] = (...args: unknown[]) => {
        if (!this.#acting) return Promise.reject(this.#notLeader());
        return handler(...args);
      };
    }
    return out as ServiceHandlers<ControlPlaneService>;
  }

  #notLeader(): NotLeaderError {
    const leader = this.#leadership?.leader;
    return new NotLeaderError(
      leader === undefined
        ? 'this control plane follows, and no replica leads yet'
        : `this control plane follows; ${leader.id} at ${leader.rpc} leads`,
      leader === undefined ? undefined : { leaderRpc: leader.rpc },
    );
  }

  get rpcAddress(): AddressInfo {
    return this.#rpcAddress!;
  }

  /** Whether the state has been loaded from the store. */
  get ready(): boolean {
    return this.#recovered;
  }

  get storeStatus(): StoreStatus {
    return this.#storeWatch.status;
  }

  /**
   * Resolves once the state is loaded; rejects with StoreError when it is
   * not within a few seconds (the store cannot be read).
   */
  async whenReady(): Promise<void> {
    if (!this.#acting) {
      const by = Date.now() + RECOVERY_WAIT_MS;
      while (this.#leadership?.takingOver === true && Date.now() < by) await sleep(5);
      if (!this.#acting) throw this.#notLeader();
    }
    if (this.#recovered) return;
    await waitAtMost(this.#recovery, RECOVERY_WAIT_MS);
    if (!this.#recovered)
      throw new StoreError(
        `the control plane cannot load its state: ${this.#storeWatch.status.error ?? 'the store does not answer'}`,
      );
  }

  /** Stops serving, closes every connection and the store. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const t of this.#timers) clearInterval(t);
      this.invocations.stop();
      await this.#leadership?.close();
      await this.#rpc.close();
      await this.#membership.close();
      await this.#storeWatch.close();
      await this.#store.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- queries and commands of the HTTP API -----------------------------------

  /** See FunctionRegistry.register (a new name; Revisions.deploy rolls out a changed spec). */
  registerFunction(spec: FunctionSpec): Promise<'created' | 'unchanged'> {
    return this.functions.register(spec);
  }

  /** Deletes the function with its revisions: see FunctionRegistry.delete. */
  deleteFunction(name: string, drainTimeoutMs?: number): Promise<{ remaining: number }> {
    return this.revisions.delete(name, drainTimeoutMs);
  }

  /** Where clients invoke: the front load balancer, else every data plane's proxy address. */
  invokeAddresses(): string {
    if (this.#opts.frontAddress !== undefined) return this.#opts.frontAddress;
    return [...this.#state.dataPlanes.values()]
      .map((dp) => `${dp.record.host}:${dp.record.proxyPort}`)
      .join(';');
  }

  /** Every daemon's metrics address (Prometheus HTTP service discovery); `self`: this API's host:port. */
  prometheusTargets(self: string) {
    return prometheusTargets(this.#state, self);
  }

  async status(): Promise<ClusterStatus> {
    const status = clusterStatus(this.#state, {
      now: this.#clock.now(),
      startedAt: this.startedAt,
      ready: this.#recovered,
      store: this.#storeWatch.status,
      supervised: this.supervised,
    });
    const leadership = this.#leadership;
    if (leadership === undefined) return status;
    const replicas = await leadership.replicas();
    return {
      ...status,
      epoch: leadership.epoch,
      controlPlanes: replicas.map((r, i) => ({ ...r, role: i === 0 ? 'leader' : 'follower' })),
    };
  }

  metrics(): ControlPlaneMetrics {
    return controlPlaneMetrics(
      this.#state,
      this.#orchestrator.counters,
      this.#orchestrator.creationLatencies,
    );
  }
}
