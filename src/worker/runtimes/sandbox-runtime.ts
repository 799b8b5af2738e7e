/**
 * SandboxRuntime: the worker's three-call interface (create / delete / list)
 * plus a host check. One implementation per folder (on RuntimeBase); the conformance suite in
 * test/conformance/runtime.test.ts runs against each.
 */
import type { FunctionSpec } from '../../shared/function-spec.js';
import type { RuntimeCapabilities } from '../../shared/cluster-objects.js';
import type { CreationTimings } from '../../rpc/contracts/common.js';
import type { SandboxOutput } from '../log-buffer.js';

export interface SandboxHandle {
  readonly id: string;
  readonly function: string;
  /** Address where the sandbox serves HTTP. */
  readonly host: string;
  readonly port: number;
  /**
   * Created with CreateOptions.standby by a runtime that keeps nothing for
   * it until used (listed, so that a control plane adopting it after a
   * restart counts it as the one that made it did).
   */
  readonly standby?: boolean;
}

export interface CreatedSandbox extends SandboxHandle {
  readonly timings: CreationTimings;
}

export interface HostReport {
  /** What the runtime could enable, one line each (printed at worker start). */
  readonly notes: string[];
  /** One line: what keeps a sandbox from the host and from others (shown per worker in status). */
  readonly isolation: string;
  /**
   * Protection the runtime would give but the host does not allow, each
   * naming what is missing and the package that brings it (printed by
   * `baton up`, logged as warnings). Empty when none is missing.
   */
  readonly warnings: string[];
}

export interface CreateOptions {
  /**
   * Made for no request in particular (the control plane's floor, for a
   * runtime with the `standby` capability): it may leave the work of serving to the first
   * request, so that an idle standby sandbox holds next to nothing. It must
   * still check the function can start and fail the creation if not.
   */
  readonly standby?: boolean;
}

export type SandboxExitListener = (id: string, reason: string) => void;

/** Milli-CPU and MiB. */
export interface Resources {
  readonly cpuMilli: number;
  readonly memoryMib: number;
}

export interface SandboxRuntime extends AsyncDisposable {
  readonly name: string;

  /** What it can do (standby sandboxes, a fresh sandbox per request, ...); sent in the worker's record. */
  readonly capabilities: RuntimeCapabilities;

  /**
   * The least one sandbox takes of its worker, whatever its function
   * requests (a process sandbox is a Node process with a memory limit):
   * placement charges each sandbox the larger of this and its request.
   */
  readonly sandboxFloor: Resources;

  /**
   * Creations this runtime runs at once; more wait their turn. Runtimes
   * whose creations cost whole processes keep this near the core count, so
   * a burst cannot starve the worker (and its heartbeats) of CPU.
   */
  readonly creationConcurrency: number;

  /** Checks the host once, before any create. Throws InvalidConfigError naming what is missing. */
  checkHost(): Promise<HostReport>;

  /**
   * Starts a sandbox and resolves once it is ready to serve. Rejects with
   * SandboxStartError when the spec cannot run (bad image, exits at start:
   * retrying will not help) and with other BatonErrors for transient failures.
   * Aborting `signal` stops the creation and cleans up.
   */
  create(
    id: string,
    spec: FunctionSpec,
    signal?: AbortSignal,
    options?: CreateOptions,
  ): Promise<CreatedSandbox>;

  /**
   * Checks that the spec's image can run here without starting it (resolves,
   * compiles): rejects with SandboxStartError saying why not. Runtimes that
   * cannot tell before a creation (OCI images) leave it out.
   */
  checkImage?(spec: FunctionSpec): Promise<void>;

  /** Stops the sandbox and releases its resources. Resolves false for an unknown id. Idempotent. */
  delete(id: string): Promise<boolean>;

  /** Sandboxes that are ready now. */
  list(): SandboxHandle[];

  /**
   * Output of the function's sandboxes, running and recently exited, newest
   * output last (bounded), only what was written at or after `sinceMs` when
   * given. Runtimes whose sandboxes run no user code have none.
   */
  logs?(functionName: string, sinceMs?: number): SandboxOutput[];

  /** Forgets the output kept of a deleted function's sandboxes. */
  dropLogs?(functionName: string): void;

  /** Registers the listener for ready sandboxes that die on their own. */
  onExit(listener: SandboxExitListener): void;

  /** Deletes every sandbox and releases the runtime. Idempotent. */
  close(): Promise<void>;
}

export { RUNTIME_NAMES, type RuntimeName } from '../../shared/runtime-names.js';

export function zeroTimings(): CreationTimings {
  return { imageFetchMs: 0, createMs: 0, networkMs: 0, startMs: 0, readinessMs: 0, totalMs: 0 };
}
