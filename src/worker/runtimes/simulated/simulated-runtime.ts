/**
 * Simulated runtime (Dirigent's fake worker for scale tests): creating a
 * sandbox takes `delayMs` (40 ms by default, the median Firecracker snapshot
 * restore) and costs nothing else; every sandbox of the worker is served by
 * one shared workload server, which picks the function from the Host header.
 * Execution is simulated too: the trace workload waits its requested time
 * instead of burning CPU. Images other than the built-ins behave as `trace`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../shared/logger.js';
import { UnavailableError } from '../../../shared/errors.js';
import type { FunctionSpec } from '../../../shared/function-spec.js';
import { NO_CAPABILITIES } from '../../../shared/cluster-objects.js';
import { builtinImage } from '../../../shared/builtin-images.js';
import { createWorkloadServer, hostFunctionName } from '../../../workloads/workload-server.js';
import type { WorkloadContext } from '../../../workloads/workload.js';
import { zeroTimings, type CreatedSandbox, type HostReport } from '../sandbox-runtime.js';
import { RuntimeBase, type SandboxEntry } from '../runtime-base.js';
import { DEFAULT_SIMULATED_DELAY_MS } from './simulated-defaults.js';

export interface SimulatedRuntimeOptions {
  host: string;
  /**
   * Port of the shared workload server; 0 (the default) takes the first
   * free port of `ports`, or without them (or with all of them taken) any.
   */
  port?: number;
  /** The worker's --port-range: where the workload server listens unless `port` says. */
  ports?: { first: number; last: number };
  delayMs?: number;
  logger: Logger;
}

interface FunctionEntry {
  ctx: WorkloadContext;
  sandboxes: number;
}

/** Simulated sandboxes never die on their own: nobody is ever told of an exit. */
export class SimulatedRuntime extends RuntimeBase<SandboxEntry> {
  readonly name = 'simulated';
  readonly capabilities = { ...NO_CAPABILITIES, idleHoldsNothing: true };
  /** A simulated sandbox is an entry in a shared server: it is charged only what it requests. */
  readonly sandboxFloor = { cpuMilli: 0, memoryMib: 0 };
  readonly creationConcurrency = Number.POSITIVE_INFINITY;
  readonly #opts: SimulatedRuntimeOptions;
  readonly #delayMs: number;
  readonly #functions = new Map<string, FunctionEntry>();
  readonly #server: Server;
  readonly #machine = hostname();
  #port = 0;

  constructor(options: SimulatedRuntimeOptions) {
    super();
    this.#opts = options;
    this.#delayMs = options.delayMs ?? DEFAULT_SIMULATED_DELAY_MS;
    this.#server = createWorkloadServer((req) => this.#functions.get(hostFunctionName(req))?.ctx);
  }

  async checkHost(): Promise<HostReport> {
    if (this.#port === 0) this.#port = await this.#listen();
    return {
      notes: [
        `simulated sandboxes: ${this.#delayMs} ms creation, shared workload server on ${this.#opts.host}:${this.#port}`,
      ],
      isolation: 'simulated: no function code runs',
      warnings: [],
    };
  }

  /**
   * The workload server listens where it was told, else on the first free
   * port of the worker's range: on port 0, thousands of simulated workers
   * took as many of the ephemeral ports the cluster's own connections need.
   */
  async #listen(): Promise<number> {
    const given = this.#opts.port ?? 0;
    const range = given === 0 ? this.#opts.ports : undefined;
    if (range !== undefined) {
      for (let port = range.first; port <= range.last; port++) {
        try {
          return await this.#listenOn(port);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        }
      }
      this.#opts.logger.warn(
        { range: `${range.first}-${range.last}` },
        'simulated runtime: every port of --port-range is taken; the workload server listens on any free port',
      );
    }
    return await this.#listenOn(given);
  }

  /** One attempt; both its listeners go either way, so a long run of taken ports leaves none behind. */
  #listenOn(port: number): Promise<number> {
    const server = this.#server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        server.off('listening', onListening);
        reject(err);
      };
      const onListening = () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(port, this.#opts.host);
    });
  }

  async create(id: string, spec: FunctionSpec, signal?: AbortSignal): Promise<CreatedSandbox> {
    if (this.#port === 0)
      throw new UnavailableError('simulated runtime: checkHost() must run first');
    this.assertCreatable(id);
    this.creating.add(id);
    const t0 = performance.now();
    try {
      await sleep(this.#delayMs, undefined, signal === undefined ? undefined : { signal });
    } catch {
      throw new UnavailableError(`creation of ${id} aborted`);
    } finally {
      this.creating.delete(id);
    }
    let fn = this.#functions.get(spec.name);
    if (fn === undefined) {
      const builtin = builtinImage(spec.image) ?? {
        kind: 'trace' as const,
        execution: 'sleep' as const,
      };
      fn = {
        ctx: {
          kind: builtin.kind,
          execution: 'sleep',
          functionName: spec.name,
          machineName: this.#machine,
          sandboxId: id,
        },
        sandboxes: 0,
      };
      this.#functions.set(spec.name, fn);
    }
    fn.sandboxes++;
    const handle = { id, function: spec.name, host: this.#opts.host, port: this.#port };
    this.sandboxes.set(id, { handle, state: 'ready' });
    const total = performance.now() - t0;
    return { ...handle, timings: { ...zeroTimings(), createMs: total, totalMs: total } };
  }

  delete(id: string): Promise<boolean> {
    const entry = this.sandboxes.get(id);
    if (entry === undefined) return Promise.resolve(false);
    this.sandboxes.delete(id);
    const name = entry.handle.function;
    const fn = this.#functions.get(name);
    if (fn !== undefined && --fn.sandboxes === 0) this.#functions.delete(name);
    return Promise.resolve(true);
  }

  protected async shutdown(): Promise<void> {
    for (const id of [...this.sandboxes.keys()]) await this.delete(id);
    if (this.#port !== 0) {
      await new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
        this.#server.closeAllConnections();
      });
    }
  }
}
