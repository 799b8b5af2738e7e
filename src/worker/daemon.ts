/**
 * The worker daemon: serves the worker RPC service over its SandboxRuntime,
 * registers with the control plane (again whenever the control plane has
 * forgotten it), sends heartbeats with CPU and memory use, and reports
 * sandboxes that die. Holds no cluster state of its own beyond the runtime.
 */
import type { AddressInfo } from 'node:net';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from '../shared/logger.js';
import { UnavailableError, errorCode, errorMessage, isRetryable } from '../shared/errors.js';
import { backoffDelayMs, sleep } from '../shared/time.js';
import {
  tcpTransport,
  type RpcChannel,
  type RpcListener,
  type RpcTransport,
} from '../rpc/transport.js';
import { connectToLeader, type Address } from '../rpc/leader-channel.js';
import { EpochFence } from '../rpc/epoch.js';
import { ControlPlaneSession } from '../rpc/control-plane-session.js';
import type { ServiceClient } from '../rpc/contract.js';
import { controlPlaneService, type ControlPlaneService } from '../rpc/contracts/control-plane.js';
import { workerService, type CreateResult, type SandboxState } from '../rpc/contracts/worker.js';
import type { WorkerRecord } from '../shared/cluster-objects.js';
import type { HostReport, SandboxRuntime } from './runtimes/sandbox-runtime.js';
import { HostStats } from './host-stats.js';
import type { WorkerGauges, WorkerMetrics } from './prometheus-metrics.js';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;

export interface WorkerDaemonOptions {
  /** Worker id; default `<host>-<rpc port>`. */
  id?: string;
  /** Address to bind and advertise. */
  host: string;
  rpcPort: number;
  /** Each control-plane replica's RPC address (calls go to the leader). */
  controlPlanes: readonly Address[];
  cpuCapacityMilli: number;
  memoryCapacityMib: number;
  heartbeatIntervalMs?: number;
  runtime: SandboxRuntime;
  logger: Logger;
  /** How it serves the control plane and reaches it (default: JSON frames over TCP). */
  transport?: RpcTransport;
  /** Its process's Prometheus metrics, where it adds its own. */
  metrics?: WorkerMetrics;
  /** The port its process serves them on, for its record. */
  metricsPort?: number;
  /** Host use, shared by the workers of a process (default: its own). */
  hostStats?: HostStats;
}

export class WorkerDaemon implements AsyncDisposable, WorkerGauges {
  readonly #log: Logger;
  readonly #runtime: SandboxRuntime;
  readonly #rpc: RpcListener;
  readonly #cpConn: RpcChannel;
  readonly #cp: ServiceClient<ControlPlaneService>;
  readonly #session: ControlPlaneSession;
  readonly #stats: HostStats;
  /** Creations run at once, as the runtime asks (undefined: no limit). */
  readonly #creating: LimitFunction | undefined;
  readonly #stop = new AbortController();
  #record: WorkerRecord | undefined;
  #report: HostReport | undefined;
  #pendingFailures: Array<{ id: string; reason: string }> = [];
  #reportingFailures = false;
  #closing: Promise<void> | undefined;
  readonly #metrics: WorkerMetrics | undefined;
  /** Creations under way. */
  starting = 0;
  /** Host use at the last heartbeat. */
  usage = { cpuPercent: 0, memoryPercent: 0 };

  private constructor(opts: WorkerDaemonOptions) {
    this.#log = opts.logger;
    this.#metrics = opts.metrics;
    this.#stats = opts.hostStats ?? new HostStats();
    this.#runtime = opts.runtime;
    const transport = opts.transport ?? tcpTransport;
    // Calls from a deposed control-plane leader are refused (see rpc/epoch.ts).
    this.#rpc = transport.createListener(opts.logger, { admit: new EpochFence(opts.logger).admit });
    this.#cpConn = connectToLeader(transport, opts.controlPlanes, opts.logger);
    this.#cp = this.#cpConn.client(controlPlaneService);
    this.#session = new ControlPlaneSession({
      logger: opts.logger,
      initialHeartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
      ...(opts.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: opts.heartbeatIntervalMs }),
      register: async () => {
        const reply = await this.#cp.registerWorker(
          { worker: this.record, sandboxes: sandboxStates(this.#runtime) },
          { deadlineMs: 5000 },
        );
        return reply.heartbeatIntervalMs;
      },
      heartbeat: async (deadlineMs) => {
        const { cpuPercent, memoryPercent } = (this.usage = this.#stats.sample());
        const reply = await this.#cp.workerHeartbeat(
          {
            workerId: this.record.id,
            cpuPercent,
            memoryPercent,
            sandboxes: this.#runtime.list().length,
          },
          { deadlineMs },
        );
        return reply.known;
      },
      deregister: (deadlineMs) =>
        this.#cp.deregisterWorker({ workerId: this.record.id }, { deadlineMs }),
    });
    const concurrency = opts.runtime.creationConcurrency;
    this.#creating = Number.isFinite(concurrency) ? pLimit(concurrency) : undefined;
  }

  /** Checks the host, starts serving RPC and starts registering in the background. */
  static async start(opts: WorkerDaemonOptions): Promise<WorkerDaemon> {
    const d = new WorkerDaemon(opts);
    const report = await opts.runtime.checkHost();
    for (const note of report.notes) d.#log.info(`runtime ${opts.runtime.name}: ${note}`);
    for (const w of report.warnings)
      d.#log.warn(`runtime ${opts.runtime.name}: not isolated: ${w}`);
    d.#report = report;
    d.#mountRpc();
    const addr: AddressInfo = await d.#rpc.listen(opts.rpcPort, opts.host);
    d.#record = {
      id: opts.id ?? `${opts.host}-${addr.port}`,
      host: opts.host,
      rpcPort: addr.port,
      cpuCapacityMilli: opts.cpuCapacityMilli,
      memoryCapacityMib: opts.memoryCapacityMib,
      runtime: opts.runtime.name,
      capabilities: opts.runtime.capabilities,
      isolation: report.isolation,
      sandboxFloor: {
        cpuMilli: Math.ceil(opts.runtime.sandboxFloor.cpuMilli),
        memoryMib: Math.ceil(opts.runtime.sandboxFloor.memoryMib),
      },
      ...(opts.metricsPort === undefined ? {} : { metricsPort: opts.metricsPort }),
    };
    opts.metrics?.add(d);
    opts.runtime.onExit((id, reason) => d.#reportFailure(id, reason));
    d.#session.start();
    return d;
  }

  get record(): WorkerRecord {
    return this.#record!;
  }

  sandboxesByFunction(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const s of this.#runtime.list()) counts.set(s.function, (counts.get(s.function) ?? 0) + 1);
    return counts;
  }

  /** What its runtime found on this host (isolation, and what is missing). */
  get hostReport(): HostReport {
    return this.#report!;
  }

  /** Resolves once the control plane has first accepted the registration. */
  get registered(): Promise<void> {
    return this.#session.registeredOnce;
  }

  /** Deregisters, deletes every sandbox, stops serving. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      this.#metrics?.remove(this);
      await this.#session.close();
      await this.#runtime.close();
      await this.#rpc.close();
      await this.#cpConn.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #mountRpc(): void {
    const runtime = this.#runtime;
    const log = this.#log;
    const limit = this.#creating;
    const create: SandboxRuntime['create'] = (id, spec, signal, options) => {
      if (limit === undefined) return runtime.create(id, spec, signal, options);
      return limit(() => {
        if (signal?.aborted === true)
          throw new UnavailableError(`creation of ${id} aborted while it waited its turn`);
        return runtime.create(id, spec, signal, options);
      });
    };
    this.#rpc.mount(workerService, {
      createSandboxes: async ({ sandboxes }, emit, ctx) => {
        await Promise.all(
          sandboxes.map(async ({ id, spec, standby, secretEnv }) => {
            let result: CreateResult;
            this.starting++;
            try {
              const withSecrets =
                secretEnv === undefined ? spec : { ...spec, env: { ...spec.env, ...secretEnv } };
              const sb = await create(id, withSecrets, ctx.signal, { standby: standby === true });
              if (ctx.signal.aborted) {
                // Nobody will learn of this sandbox: do not leak it.
                await runtime.delete(id);
                return;
              }
              result = { ok: true, id, host: sb.host, port: sb.port, timings: sb.timings };
            } catch (err) {
              result = {
                ok: false,
                id,
                code: errorCode(err),
                message: errorMessage(err),
                retryable: isRetryable(err),
              };
              log.warn(
                { sandbox: id, function: spec.name, err: result.message },
                'sandbox creation failed',
              );
            } finally {
              this.starting--;
            }
            this.#metrics?.created(
              this.record.id,
              result.ok,
              result.ok ? result.timings.totalMs / 1000 : 0,
            );
            emit(result);
          }),
        );
      },
      deleteSandboxes: async ({ ids }) => {
        const done = await Promise.all(ids.map((id) => runtime.delete(id)));
        return {
          deleted: ids.filter((_, i) => done[i]),
          missing: ids.filter((_, i) => !done[i]),
        };
      },
      listSandboxes: () => Promise.resolve({ sandboxes: sandboxStates(runtime) }),
      dropLogs: ({ function: fn }) => {
        runtime.dropLogs?.(fn);
        return Promise.resolve({});
      },
      checkImage: async ({ spec }) => {
        try {
          await runtime.checkImage?.(spec);
          return {};
        } catch (err) {
          return { error: errorMessage(err) };
        }
      },
      sandboxLogs: ({ function: fn, sandbox, sinceMs }) =>
        Promise.resolve({
          sandboxes: (runtime.logs?.(fn, sinceMs) ?? []).filter(
            (o) => sandbox === undefined || o.id === sandbox,
          ),
        }),
    });
  }

  #reportFailure(id: string, reason: string): void {
    this.#metrics?.exited(this.record.id);
    this.#pendingFailures.push({ id, reason });
    if (this.#reportingFailures) return;
    this.#reportingFailures = true;
    void (async () => {
      await sleep(0);
      let attempt = 0;
      while (this.#pendingFailures.length > 0 && !this.#stop.signal.aborted) {
        const failures = this.#pendingFailures;
        this.#pendingFailures = [];
        try {
          await this.#cp.sandboxesFailed({ workerId: this.record.id, failures });
        } catch (err) {
          this.#pendingFailures.unshift(...failures);
          this.#log.warn({ err: errorMessage(err) }, 'cannot report failed sandboxes; will retry');
          await sleep(backoffDelayMs(++attempt, 100, 2000), this.#stop.signal).catch(
            () => undefined,
          );
        }
      }
      this.#reportingFailures = false;
    })();
  }
}

/** The runtime's sandboxes as the control plane is told of them. */
function sandboxStates(runtime: SandboxRuntime): SandboxState[] {
  return runtime.list().map((s) => ({
    id: s.id,
    function: s.function,
    host: s.host,
    port: s.port,
    ...(s.standby === true ? { standby: true } : {}),
  }));
}
