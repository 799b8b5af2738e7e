/**
 * Stand-in workers and data planes for control-plane unit tests: the real
 * worker and data-plane RPC services on an InProcessTransport, whose
 * handlers record what the control plane asks and answer as told (a worker
 * creates sandboxes at once, or fails them, or holds them), and the client
 * side of the control-plane service, to register and report as members do.
 */
import type { InProcessTransport } from '../../src/rpc/in-process-transport.js';
import { controlPlaneService } from '../../src/rpc/contracts/control-plane.js';
import {
  workerService,
  type CreateResult,
  type SandboxState,
} from '../../src/rpc/contracts/worker.js';
import { dataPlaneService, type DataPlaneUpdate } from '../../src/rpc/contracts/data-plane.js';
import type { ServiceClient } from '../../src/rpc/contract.js';
import type { FunctionSpec } from '../../src/shared/function-spec.js';
import type { FunctionRoute } from '../../src/rpc/contracts/common.js';
import {
  NO_CAPABILITIES,
  type RuntimeCapabilities,
  type WorkerRecord,
  zeroTraffic,
} from '../../src/shared/cluster-objects.js';
import { silentLogger } from '../../src/shared/logger.js';

export type CreationOutcome =
  { ok: true } | { ok: false; code: string; message: string; retryable: boolean };

export class FakeWorker {
  readonly record: WorkerRecord;
  /** Sandboxes it runs, by id. */
  readonly sandboxes = new Map<string, SandboxState & { spec: FunctionSpec }>();
  readonly created: Array<{
    id: string;
    spec: FunctionSpec;
    standby: boolean;
    secretEnv: Record<string, string> | undefined;
  }> = [];
  /** Images it was asked to check. */
  readonly checked: string[] = [];
  readonly deleted: string[] = [];
  /** How the next creations end (default: ready at once). */
  outcome: (spec: FunctionSpec) => CreationOutcome = () => ({ ok: true });
  /** While set, creations answer only once it settles (sandboxes being made). */
  gate: Promise<void> | undefined;
  readonly cp: ServiceClient<typeof controlPlaneService>;
  #nextPort = 30_000;

  constructor(
    transport: InProcessTransport,
    cpPort: number,
    readonly id: string,
    opts: {
      cpuCapacityMilli?: number;
      memoryCapacityMib?: number;
      sandboxFloor?: { cpuMilli: number; memoryMib: number };
      capabilities?: RuntimeCapabilities;
    } = {},
  ) {
    this.record = {
      id,
      host: id,
      rpcPort: 10_010,
      cpuCapacityMilli: opts.cpuCapacityMilli ?? 4000,
      memoryCapacityMib: opts.memoryCapacityMib ?? 8192,
      runtime: 'fake',
      capabilities: opts.capabilities ?? NO_CAPABILITIES,
      ...(opts.sandboxFloor === undefined ? {} : { sandboxFloor: opts.sandboxFloor }),
    };
    const listener = transport.createListener();
    listener.mount(workerService, {
      createSandboxes: async ({ sandboxes }, emit) => {
        for (const { id: sid, spec, standby, secretEnv } of sandboxes)
          this.created.push({ id: sid, spec, standby: standby === true, secretEnv });
        await this.gate;
        for (const { id: sid, spec } of sandboxes) {
          const o = this.outcome(spec);
          let result: CreateResult;
          if (o.ok) {
            const port = this.#nextPort++;
            this.sandboxes.set(sid, { id: sid, function: spec.name, host: id, port, spec });
            result = { ok: true, id: sid, host: id, port, timings: zeroTimings() };
          } else result = { id: sid, ...o };
          emit(result);
        }
      },
      deleteSandboxes: ({ ids }) => {
        this.deleted.push(...ids);
        const deleted = ids.filter((i) => this.sandboxes.delete(i));
        return Promise.resolve({ deleted, missing: ids.filter((i) => !deleted.includes(i)) });
      },
      listSandboxes: () =>
        Promise.resolve({
          sandboxes: [...this.sandboxes.values()].map(({ spec: _s, ...s }) => s),
        }),
      sandboxLogs: () => Promise.resolve({ sandboxes: [] }),
      dropLogs: () => Promise.resolve({}),
      checkImage: ({ spec }) => {
        this.checked.push(spec.image);
        return Promise.resolve(
          spec.image.startsWith('/no/such/')
            ? { error: `image path ${spec.image} does not exist` }
            : {},
        );
      },
    });
    void listener.listen(this.record.rpcPort, id);
    this.cp = transport
      .connect({ host: 'cp', port: cpPort, logger: silentLogger() })
      .client(controlPlaneService);
  }

  register(): Promise<{ heartbeatIntervalMs: number }> {
    return this.cp.registerWorker({
      worker: this.record,
      sandboxes: [...this.sandboxes.values()].map(({ spec: _s, ...s }) => s),
    });
  }

  /** Reports a sandbox dead, as a worker does when one exits. */
  async fail(id: string, reason: string): Promise<void> {
    this.sandboxes.delete(id);
    await this.cp.sandboxesFailed({ workerId: this.id, failures: [{ id, reason }] });
  }
}

export class FakeDataPlane {
  readonly updates: DataPlaneUpdate[] = [];
  /** The sandbox ids of each drainSandboxes call, in order. */
  readonly drains: string[][] = [];
  /** While set, drains answer only once it settles (requests still in flight). */
  drainGate: Promise<void> | undefined;
  readonly cp: ServiceClient<typeof controlPlaneService>;
  readonly record;
  /** Per function: its in-flight count integrated over (real) time, as a data plane keeps it. */
  readonly #load = new Map<string, { at: number; inflight: number; inflightMs: number }>();

  constructor(
    transport: InProcessTransport,
    cpPort: number,
    readonly id: string,
  ) {
    this.record = { id, host: id, rpcPort: 8081, proxyPort: 8080 };
    const listener = transport.createListener();
    listener.mount(dataPlaneService, {
      applyUpdates: (u) => {
        this.updates.push(u);
        return Promise.resolve({});
      },
      drainSandboxes: async ({ ids }) => {
        this.drains.push(ids);
        await this.drainGate;
        return { remaining: 0 };
      },
      drainFunction: () => Promise.resolve({ remaining: 0 }),
    });
    void listener.listen(this.record.rpcPort, id);
    this.cp = transport
      .connect({ host: 'cp', port: cpPort, logger: silentLogger() })
      .client(controlPlaneService);
  }

  register(): Promise<{ heartbeatIntervalMs: number }> {
    return this.cp.registerDataPlane({ dataPlane: this.record });
  }

  /** Asks the control plane for a function, as a data plane does on its first request for it. */
  async lookup(name: string): Promise<boolean> {
    return (await this.cp.lookupFunction({ dataPlaneId: this.id, name })).found;
  }

  /**
   * Reports a function's in-flight and queued requests (and its answered
   * ones), as a data plane does: after a request looked the function up;
   * with its load, the count since the previous report integrated over
   * time (no service times: the scaler takes the mean as it is).
   */
  async report(fn: string, inflight: number, queued: number, answered?: number): Promise<unknown> {
    if (!this.functions().includes(fn)) await this.lookup(fn);
    const totals =
      answered === undefined ? {} : { totals: { ...zeroTraffic(), invocations: answered } };
    const now = performance.now();
    const l = this.#load.get(fn) ?? { at: now, inflight: 0, inflightMs: 0 };
    l.inflightMs += l.inflight * (now - l.at);
    l.at = now;
    l.inflight = inflight;
    this.#load.set(fn, l);
    const load = { inflightMs: l.inflightMs, served: 0, serviceMs: 0 };
    return this.cp.reportMetrics({
      dataPlaneId: this.id,
      metrics: [{ function: fn, inflight, queued, ...totals, load }],
    });
  }

  /** Endpoint ids it routes to now, after applying every update in order. */
  endpoints(fn?: string): string[] {
    const live = new Map<string, string>();
    for (const u of this.updates) {
      if (u.reset === true) live.clear();
      for (const e of u.addEndpoints ?? []) live.set(e.id, e.function);
      for (const id of u.removeEndpoints ?? []) live.delete(id);
    }
    return [...live].filter(([, f]) => fn === undefined || f === fn).map(([id]) => id);
  }

  /** The latest route of a function it was sent. */
  route(name: string): FunctionRoute | undefined {
    let route: FunctionRoute | undefined;
    for (const u of this.updates)
      for (const f of u.upsertFunctions ?? []) if (f.name === name) route = f;
    return route;
  }

  /** Functions it knows now. */
  functions(): string[] {
    const live = new Set<string>();
    for (const u of this.updates) {
      if (u.reset === true) live.clear();
      for (const f of u.upsertFunctions ?? []) live.add(f.name);
      for (const n of u.removeFunctions ?? []) live.delete(n);
    }
    return [...live];
  }
}

function zeroTimings() {
  return { imageFetchMs: 0, createMs: 0, networkMs: 0, startMs: 0, readinessMs: 0, totalMs: 0 };
}
