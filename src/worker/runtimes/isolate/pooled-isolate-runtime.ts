/**
 * `isolate` (pooled): one isolate per sandbox, made with the sandbox and kept
 * warm; a sandbox whose isolate a limit kills is reported as failed, and the
 * control plane replaces it. A standby sandbox (the control plane's floor)
 * only checks that the handler loads: its first request makes the isolate,
 * which then stays until it has been idle for `idleMs` (or a limit kills it),
 * and the next request makes another. Requests that find no isolate each
 * load one (so none waits for another's answer); the first loaded stays.
 */
import {
  IsolateRuntime,
  type IsolateEntry,
  type IsolateRuntimeOptions,
} from './isolate-runtime.js';
import { DEFAULT_ISOLATE_IDLE_MS } from './isolate-defaults.js';

export interface PooledIsolateRuntimeOptions extends IsolateRuntimeOptions {
  /** Idle time after which a standby sandbox gives up its isolate. */
  idleMs?: number;
}

export class PooledIsolateRuntime extends IsolateRuntime {
  readonly name = 'isolate';
  readonly capabilities = { standby: true, freshPerRequest: false, reportsColdStart: true };
  readonly #idleMs: number;
  #idleSweep: NodeJS.Timeout | undefined;

  constructor(options: PooledIsolateRuntimeOptions) {
    super(options);
    this.#idleMs = options.idleMs ?? DEFAULT_ISOLATE_IDLE_MS;
  }

  protected keepsIsolate(standby: boolean): boolean {
    return !standby;
  }

  protected loadsOnDemand(standby: boolean): boolean {
    return standby;
  }

  protected describeIsolation(): string {
    return `isolation: a V8 isolate per sandbox (own heap, no Node APIs), kept warm (a standby sandbox's while used, up to ${this.#idleMs} ms idle)`;
  }

  protected override onReady(entry: IsolateEntry): void {
    if (entry.standby)
      this.#idleSweep ??= setInterval(() => this.#giveUpIdle(), sweepEveryMs(this.#idleMs)).unref();
  }

  protected override shutdown(): Promise<void> {
    clearInterval(this.#idleSweep);
    return super.shutdown();
  }

  /** Standby sandboxes idle for idleMs give up their isolates. */
  #giveUpIdle(): void {
    const before = performance.now() - this.#idleMs;
    for (const entry of this.sandboxes.values()) {
      if (!entry.standby || entry.instance === undefined) continue;
      if (entry.inflight > 0 || entry.lastUsedAt > before) continue;
      entry.instance.dispose();
      entry.instance = undefined;
    }
  }
}

/** Idle isolates are looked for this often: a few times per idle period, at most every second. */
function sweepEveryMs(idleMs: number): number {
  return Math.max(10, Math.min(1000, idleMs / 4));
}
