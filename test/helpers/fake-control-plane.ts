/**
 * A stand-in control plane for data-plane tests: the real control-plane RPC
 * service on a loopback port whose handlers record what data planes say,
 * and a client to push updates to a data plane the way the control plane
 * does. Nothing is scheduled or persisted.
 */
import { silentLogger } from '../../src/shared/logger.js';
import { RpcServer } from '../../src/rpc/server.js';
import { RpcConnection } from '../../src/rpc/client.js';
import { controlPlaneService } from '../../src/rpc/contracts/control-plane.js';
import { dataPlaneService, type DataPlaneUpdate } from '../../src/rpc/contracts/data-plane.js';
import type { DataPlaneRecord } from '../../src/shared/cluster-objects.js';

export interface Eviction {
  id: string;
  code: string;
  reason: string;
}

export class FakeControlPlane implements AsyncDisposable {
  readonly #server = new RpcServer({ logger: silentLogger() });
  readonly #conns: RpcConnection[] = [];
  port = 0;
  readonly evictions: Eviction[] = [];
  /** Asynchronous invocations data planes handed over. */
  readonly enqueued: Array<{ function: string; path: string; bodyBase64: string }> = [];
  readonly metrics: Array<{ function: string; inflight: number; queued: number }> = [];
  /** Names data planes looked up, in order. */
  readonly lookups: string[] = [];
  /** What a lookup of a name pushes before it answers `found` (names absent here are not found). */
  readonly holds = new Map<string, DataPlaneUpdate>();
  /** Lookups fail (the control plane cannot answer). */
  failLookups = false;
  /** The data plane that registered last. */
  dataPlane: DataPlaneRecord | undefined;
  #registered: Array<() => void> = [];

  /** `onRegister`: what to push to a data plane as it registers (default: nothing). */
  static async start(
    onRegister?: (dp: DataPlaneRecord) => DataPlaneUpdate,
  ): Promise<FakeControlPlane> {
    const cp = new FakeControlPlane();
    cp.#server.mount(controlPlaneService, {
      registerWorker: () => Promise.resolve({ heartbeatIntervalMs: 60_000 }),
      deregisterWorker: () => Promise.resolve({}),
      workerHeartbeat: () => Promise.resolve({ known: true }),
      sandboxesFailed: () => Promise.resolve({}),
      getInvocation: () => Promise.reject(new Error('no asynchronous invocations here')),
      enqueueInvocation: (input) => {
        cp.enqueued.push(input);
        return Promise.resolve({ id: `async-${cp.enqueued.length}` });
      },
      registerDataPlane: ({ dataPlane }) => {
        cp.dataPlane = dataPlane;
        if (onRegister !== undefined) void cp.push(onRegister(dataPlane));
        for (const r of cp.#registered.splice(0)) r();
        return Promise.resolve({ heartbeatIntervalMs: 60_000 });
      },
      deregisterDataPlane: () => Promise.resolve({}),
      dataPlaneHeartbeat: () => Promise.resolve({ known: true }),
      reportMetrics: ({ metrics }) => {
        cp.metrics.push(...metrics);
        return Promise.resolve({});
      },
      evictSandboxes: ({ sandboxes }) => {
        cp.evictions.push(...sandboxes);
        return Promise.resolve({});
      },
      lookupFunction: async ({ name }) => {
        cp.lookups.push(name);
        if (cp.failLookups) throw new Error('the control plane is not ready');
        const update = cp.holds.get(name);
        if (update === undefined) return { found: false };
        await cp.push(update);
        return { found: true };
      },
      listFunctions: () => Promise.resolve({ functions: [] }),
    });
    cp.port = (await cp.#server.listen(0, '127.0.0.1')).port;
    return cp;
  }

  /** Resolves once a data plane has registered. */
  registered(): Promise<void> {
    if (this.dataPlane !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#registered.push(resolve));
  }

  /** Pushes an update to the data plane that registered last. */
  async push(update: DataPlaneUpdate): Promise<void> {
    const dp = this.dataPlane;
    if (dp === undefined) throw new Error('no data plane has registered');
    const conn = new RpcConnection({ host: dp.host, port: dp.rpcPort, logger: silentLogger() });
    this.#conns.push(conn);
    await conn.client(dataPlaneService).applyUpdates(update);
  }

  async close(): Promise<void> {
    for (const c of this.#conns.splice(0)) await c.close();
    await this.#server.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
