/**
 * One isolate running a function's handler: loaded from a reserve isolate
 * with the function's code in one call to the isolate's thread, then
 * dispatching requests, each under the CPU-time limit (a watchdog on the
 * worker's thread) and the heap limit. Timers, the clock, URL parsing and
 * logs are callbacks into the worker.
 */
import type IsolatedVm from 'isolated-vm';
import type { GuestReply } from '../../../guest/isolate/reply.js';
import { MODULE_GLOBAL } from './bundle.js';
import { compileCached, type Ivm } from './isolated-vm.js';
import type { ReadyIsolate } from './reserve.js';

/** What every isolate of one sandbox starts from. */
export interface GuestProgram {
  /** The handler's bundle as a function that runs it and returns its exports (see programCode). */
  code: string;
  env: Record<string, string>;
  memoryMib: number;
}

/** Where the handler's code is said to be in stack traces (its first line is line 1). */
const HANDLER_FILENAME = 'file:///handler.js';

/**
 * A handler's bundle wrapped in a function, so that running the script runs
 * none of its code: that happens in `__baton.boot`, once the host is attached.
 */
export function programCode(bundle: string): string {
  return `(function () {\n${bundle}\nreturn ${MODULE_GLOBAL};\n})`;
}

/** A request as the guest's dispatch takes it: method, url, headers, body. */
export type GuestRequestArgs = [string, string, Array<[string, string]>, Uint8Array | null];

/** Why a request's isolate was stopped by the runtime (as opposed to the handler throwing). */
export class LimitExceeded extends Error {}

/** One isolate with its context, ready to dispatch requests. */
export class GuestInstance {
  readonly #timers = new Map<number, NodeJS.Timeout>();
  #dispatch: IsolatedVm.Reference<unknown> | undefined;
  #fire: Promise<IsolatedVm.Reference<unknown>> | undefined;
  #killed: string | undefined;

  readonly #context: IsolatedVm.Context;

  private constructor(
    readonly isolate: IsolatedVm.Isolate,
    context: IsolatedVm.Context,
    readonly memoryMib: number,
  ) {
    this.#context = context;
  }

  /**
   * Loads `program` into `ready` (made with the program's heap limit). With a
   * request, answers it in the same call (a per-request isolate): the reply
   * comes back with the instance, which is then only to be disposed.
   */
  static async start(
    ivm: Ivm,
    ready: ReadyIsolate,
    program: GuestProgram,
    cpuLimitMs: number,
    log: (level: string, line: string) => void,
    request?: GuestRequestArgs,
  ): Promise<{ instance: GuestInstance; reply: GuestReply | undefined }> {
    const g = new GuestInstance(ready.isolate, ready.context, program.memoryMib);
    try {
      const reply = await g.#load(ivm, ready.boot, program, cpuLimitMs, log, request);
      return { instance: g, reply };
    } catch (err) {
      g.dispose();
      throw err;
    }
  }

  async #load(
    ivm: Ivm,
    boot: IsolatedVm.Reference<unknown>,
    program: GuestProgram,
    cpuLimitMs: number,
    log: (level: string, line: string) => void,
    request: GuestRequestArgs | undefined,
  ): Promise<GuestReply | undefined> {
    // Compiling and running the script run no guest code (it only makes the
    // function that runs the handler's bundle): done on this thread, with
    // everything else handed in with the one call to the isolate's thread.
    const load = compileCached(this.isolate, program.code, HANDLER_FILENAME, -1).runSync(
      this.#context,
      { reference: true },
    ) as IsolatedVm.Reference<unknown>;
    const args = [
      new ivm.Callback(() => performance.now()),
      new ivm.Callback(urlParts),
      new ivm.Callback(log, { ignored: true }),
      new ivm.Callback((id: number, ms: number) => this.#setTimer(id, ms), { ignored: true }),
      new ivm.Callback((id: number) => this.#clearTimer(id), { ignored: true }),
      new ivm.ExternalCopy(program.env).copyInto({ release: true }),
      load.derefInto({ release: true }),
      request === undefined ? undefined : new ivm.ExternalCopy(request).copyInto({ release: true }),
    ];
    // __baton.boot: the host attached, the handler's bundle run, a request handed in answered.
    return (await this.#limited(cpuLimitMs, () =>
      boot.apply(undefined, args, { result: { promise: true, copy: true } }),
    )) as GuestReply | undefined;
  }

  dispatch(request: GuestRequestArgs, cpuLimitMs: number): Promise<GuestReply> {
    // The prelude defines __baton read-only and frozen: reading it runs no guest code.
    this.#dispatch ??= this.#context.evalSync('__baton.dispatch', {
      reference: true,
    }) as IsolatedVm.Reference<unknown>;
    return this.#limited(
      cpuLimitMs,
      () =>
        this.#dispatch!.apply(undefined, request, {
          arguments: { copy: true },
          result: { promise: true, copy: true },
        }) as Promise<GuestReply>,
    );
  }

  get dead(): boolean {
    return this.isolate.isDisposed;
  }

  dispose(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }

  /**
   * Runs `fn` under the CPU-time limit: a watchdog on the worker's thread
   * reads the isolate's CPU clock and disposes the isolate once the limit is
   * spent (the isolate runs on its own thread, so a loop in it cannot stop
   * the watchdog). Memory exhaustion disposes the isolate too (isolated-vm).
   */
  async #limited<T>(cpuLimitMs: number, fn: () => Promise<T>): Promise<T> {
    const start = this.isolate.cpuTime;
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      if (this.isolate.isDisposed) return;
      const usedMs = Number(this.isolate.cpuTime - start) / 1e6;
      if (usedMs >= cpuLimitMs) {
        this.#killed = `exceeded its CPU time limit of ${cpuLimitMs} ms`;
        this.dispose();
      } else timer = setTimeout(check, Math.max(1, cpuLimitMs - usedMs));
    };
    timer = setTimeout(check, cpuLimitMs);
    try {
      return await fn();
    } catch (err) {
      if (this.#killed !== undefined) throw new LimitExceeded(this.#killed);
      // isolated-vm disposes an isolate that runs out of memory; only the limits dispose one mid-call.
      if (this.isolate.isDisposed) {
        this.#killed = `exceeded its memory limit of ${this.memoryMib} MiB`;
        this.dispose();
        throw new LimitExceeded(this.#killed);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  #setTimer(id: number, ms: number): void {
    const t = setTimeout(() => this.#fireTimer(id), ms);
    this.#timers.set(id, t);
  }

  #fireTimer(id: number): void {
    this.#timers.delete(id);
    if (this.isolate.isDisposed) return;
    // The entry point is read when the first timer is due (the script may still be running).
    const fire = (this.#fire ??= this.#context.eval('__baton.fireTimer', {
      reference: true,
    }) as Promise<IsolatedVm.Reference<unknown>>);
    fire
      .then((ref) => ref.apply(undefined, [id], { arguments: { copy: true } }))
      .catch(() => undefined);
  }

  #clearTimer(id: number): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
  }
}

/** URL parsing for the guest's URL class: the parts as JSON, or null when invalid. */
function urlParts(input: string, base: string | undefined): string | null {
  let u: URL;
  try {
    u = new URL(input, base);
  } catch {
    return null;
  }
  return JSON.stringify({
    protocol: u.protocol,
    username: u.username,
    password: u.password,
    hostname: u.hostname,
    port: u.port,
    pathname: u.pathname,
    search: u.search,
    hash: u.hash,
  });
}
