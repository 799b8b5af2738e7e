/**
 * What every SandboxRuntime does the same way: the table of its sandboxes,
 * the guards of `create` (not while closing, not an id in use), the
 * listeners for sandboxes that die, the output of exited sandboxes, `list`,
 * `logs`, and an idempotent `close`. A runtime's folder holds only what
 * differs (how a sandbox is started, served and stopped).
 */
import { SandboxStartError, UnavailableError } from '../../shared/errors.js';
import type { RuntimeCapabilities } from '../../shared/cluster-objects.js';
import type { FunctionSpec } from '../../shared/function-spec.js';
import { ExitedOutputs, type OutputReader, type SandboxOutput } from '../log-buffer.js';
import type {
  CreatedSandbox,
  CreateOptions,
  HostReport,
  Resources,
  SandboxExitListener,
  SandboxHandle,
  SandboxRuntime,
} from './sandbox-runtime.js';

/** A sandbox in a runtime's table, from the start of its creation until it is gone. */
export interface SandboxEntry {
  handle: SandboxHandle;
  /** Listed (and serving) only once `ready`. */
  state: 'starting' | 'ready' | 'stopping';
}

export abstract class RuntimeBase<E extends SandboxEntry> implements SandboxRuntime {
  abstract readonly name: string;
  abstract readonly capabilities: RuntimeCapabilities;
  abstract readonly sandboxFloor: Resources;
  abstract readonly creationConcurrency: number;

  /** Sandboxes, each from the start of its creation (or once made, see `creating`) until it is gone. */
  protected readonly sandboxes = new Map<string, E>();
  /** Ids being created that are not in the table yet (runtimes that add a sandbox once it is made). */
  protected readonly creating = new Set<string>();
  /** Output of sandboxes that are gone, for `logs`. */
  protected readonly exitedOutputs = new ExitedOutputs();
  readonly #listeners: SandboxExitListener[] = [];
  #closing: Promise<void> | undefined;

  abstract checkHost(): Promise<HostReport>;
  abstract create(
    id: string,
    spec: FunctionSpec,
    signal?: AbortSignal,
    options?: CreateOptions,
  ): Promise<CreatedSandbox>;
  abstract delete(id: string): Promise<boolean>;

  /** Deletes every sandbox and releases what the runtime holds; called once, by `close`. */
  protected abstract shutdown(): Promise<void>;

  protected get closing(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Throws unless a sandbox `id` may be created now: UnavailableError while
   * the runtime closes, SandboxStartError for an id in use.
   */
  protected assertCreatable(id: string): void {
    if (this.#closing !== undefined) throw new UnavailableError('worker is shutting down');
    if (this.sandboxes.has(id) || this.creating.has(id))
      throw new SandboxStartError(`sandbox ${id} already exists`);
  }

  /** The handle a ready sandbox is listed with (a runtime may add to it). */
  protected listed(entry: E): SandboxHandle {
    return entry.handle;
  }

  list(): SandboxHandle[] {
    const out: SandboxHandle[] = [];
    for (const e of this.sandboxes.values()) if (e.state === 'ready') out.push(this.listed(e));
    return out;
  }

  /** `logs` for a runtime whose sandboxes write output: `outputOf` reads a live sandbox's. */
  protected outputs(
    functionName: string,
    sinceMs: number | undefined,
    outputOf: (entry: E) => OutputReader,
    stateOf: (entry: E) => string = (e) => (e.state === 'ready' ? 'running' : e.state),
  ): SandboxOutput[] {
    const live: SandboxOutput[] = [];
    for (const e of this.sandboxes.values())
      if (e.handle.function === functionName)
        live.push({
          id: e.handle.id,
          function: functionName,
          state: stateOf(e),
          ...outputOf(e).read(sinceMs),
        });
    return [...this.exitedOutputs.of(functionName, sinceMs), ...live];
  }

  /** Keeps a gone sandbox's output for `logs`. */
  protected keepOutput(entry: E, reason: string, output: OutputReader): void {
    this.exitedOutputs.add({
      id: entry.handle.id,
      function: entry.handle.function,
      state: `exited: ${reason}`,
      output,
    });
  }

  /** Forgets the output kept of a deleted function's sandboxes. */
  dropLogs(functionName: string): void {
    this.exitedOutputs.drop(functionName);
  }

  onExit(listener: SandboxExitListener): void {
    this.#listeners.push(listener);
  }

  /** Tells the listeners that a ready sandbox died on its own (or was stopped by a limit). */
  protected reportExit(id: string, reason: string): void {
    for (const l of this.#listeners) l(id, reason);
  }

  close(): Promise<void> {
    this.#closing ??= this.shutdown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
