/**
 * Isolate runtimes: JS/TS handlers (the web-standard `Request -> Response`
 * default export the process runtime serves) run in V8 isolates through
 * isolated-vm, each isolate with its own heap under the function's memory
 * limit, and every request under a CPU-time limit. A handler that exceeds
 * either is stopped (its isolate disposed), its request answered 500 with the
 * reason, and the worker lives on.
 *
 * Each sandbox listens on its own port from the worker's pool, so the data
 * plane addresses it like any other sandbox. Two modes:
 * - `isolate` (pooled): one isolate per sandbox, created with the sandbox
 *   and kept warm; a sandbox whose isolate is killed by a limit is reported
 *   as failed, and the control plane replaces it. A standby sandbox (the
 *   control plane's floor, the `standby` capability) only checks the handler
 *   loads: its first request makes the isolate, which then stays until it
 *   has been idle for `idleMs` (or a limit kills it), and the next request
 *   makes another. Requests that find no isolate each load one (so none
 *   waits for another's answer); the first loaded stays.
 * - `isolate-per-request`: nothing is kept warm (Dandelion's model); every
 *   request gets a fresh isolate, disposed when it answers. The sandbox is
 *   the listening port and the compiled code cache; the isolate that checked
 *   the handler loads at creation is disposed at once.
 * Both take their isolates from an `IsolateReserve`, made ahead with the
 * guest prelude loaded and no function's code in them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import type IsolatedVm from 'isolated-vm';
import type { Logger } from '../../shared/logger.js';
import {
  InvalidConfigError,
  SandboxStartError,
  UnavailableError,
  errorMessage,
} from '../../shared/errors.js';
import type { FunctionSpec } from '../../shared/function-spec.js';
import type { RuntimeCapabilities } from '../../shared/cluster-objects.js';
import { START_HEADER, declaresBody } from '../../shared/http-headers.js';
import { SANDBOX_ENV } from '../../workloads/sandbox-environment.js';
import type { GuestReply } from '../../workloads/guest/reply.js';
import { ExitedOutputs, LogBuffer, type SandboxOutput } from '../log-buffer.js';
import type { PortPool } from '../ports.js';
import { bundleHandler, bundlePrelude, guestModule, MODULE_GLOBAL } from './isolate-bundle.js';
import { resolveImageSource } from './process-images.js';
import type {
  CreatedSandbox,
  CreateOptions,
  HostReport,
  SandboxExitListener,
  SandboxHandle,
  SandboxRuntime,
} from './sandbox-runtime.js';

type Ivm = typeof IsolatedVm;

export type IsolateMode = 'pooled' | 'per-request';

/** CPU time one request may use before its isolate is stopped. */
export const DEFAULT_ISOLATE_CPU_LIMIT_MS = 30_000;
/** Heap of an isolate whose function requests no memory. */
export const DEFAULT_ISOLATE_MEMORY_MIB = 128;
/** V8 needs this much to start an isolate with a context. */
export const MIN_ISOLATE_MEMORY_MIB = 8;
/** Ready isolates kept per heap limit. */
export const DEFAULT_ISOLATE_RESERVE = 2;
/**
 * What the worker does for a request after answering it (disposing of its
 * isolate, making the reserve's next while the reserve still has one) waits
 * this long, so as not to take the CPU from the answer on its way back
 * through the data plane to the client: on a 2-core machine, making an
 * isolate at once added ~1 ms to the client's wait for an isolate cold start.
 */
export const AFTER_ANSWER_DELAY_MS = 5;
/** A standby sandbox's isolate is given up after this long without a request. */
export const DEFAULT_ISOLATE_IDLE_MS = 60_000;
/** Largest request body handed to a handler (bodies are buffered). */
export const MAX_ISOLATE_BODY_BYTES = 6 * 1024 * 1024;

export interface IsolateRuntimeOptions {
  host: string;
  ports: PortPool;
  logger: Logger;
  mode: IsolateMode;
  cpuLimitMs?: number;
  /** Idle time after which a standby sandbox gives up its isolate. */
  idleMs?: number;
  /** Blank isolates kept ready per heap limit (0 = make each when needed). */
  reserve?: number;
  /** Relative image paths resolve against this directory. */
  imageBaseDir?: string;
  logBufferBytes?: number;
}

let ivmLoad: Promise<Ivm> | undefined;

/**
 * V8 compiles a function when it first runs unless told to compile eagerly,
 * and a code cache holds only what was compiled. With lazy compilation every
 * fresh isolate compiled the prelude's and handler's functions again on its
 * first request (~0.9 ms of a ~1.1 ms first dispatch here). The flag is
 * process-wide (V8 has no per-isolate switch, and rejects a cache made under
 * other flags), so it is set with the addon's loading, before the first
 * compilation in an isolate; the worker's own modules are loaded by then.
 */
function compileEagerly(): void {
  setFlagsFromString('--no-lazy');
}

/** isolated-vm is a native addon and an optional dependency: load it on first use. */
function loadIvm(): Promise<Ivm> {
  ivmLoad ??= import('isolated-vm').then((m: { default?: Ivm }) => {
    compileEagerly();
    return m.default ?? (m as unknown as Ivm);
  });
  return ivmLoad;
}

/** What every isolate of one sandbox starts from. */
interface GuestProgram {
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
function programCode(bundle: string): string {
  return `(function () {\n${bundle}\nreturn ${MODULE_GLOBAL};\n})`;
}

/**
 * An isolate with the guest prelude loaded and nothing else: no function's
 * code has run in it, and no host is attached yet.
 */
export interface ReadyIsolate {
  isolate: IsolatedVm.Isolate;
  context: IsolatedVm.Context;
  /** The prelude's `__baton.boot`, which makes the isolate a function's. */
  boot: IsolatedVm.Reference<unknown>;
}

/**
 * Isolates made ahead, off the request path, each with the guest prelude (the
 * web APIs, Baton's own code, the same for every function) loaded. Setting up
 * a V8 isolate and its context is most of an isolate's start (~1.6 of
 * ~2.2 ms on one machine), and running the prelude in a fresh context another
 * ~0.3 ms; with a reserve, a new sandbox or a per-request isolate still
 * starts from an isolate no function's code has run in, but waits for
 * neither. The heap limit is fixed when an isolate is made, so the reserve is
 * kept per limit (the few most recently asked for).
 */
export class IsolateReserve {
  readonly #byLimit = new Map<number, ReadyIsolate[]>();
  #refilling = false;
  #closed = false;

  constructor(
    readonly ivm: Ivm,
    /** The prelude's bundle (see isolate-bundle.ts). */
    readonly prelude: string,
    /** Isolates kept per heap limit (0 = none: every start makes its own). */
    readonly size: number,
    readonly maxLimits = 4,
  ) {}

  /**
   * An isolate with a heap limit of `memoryMib`. The caller calls `refill()`
   * once it has answered: making an isolate holds up the thread.
   */
  take(memoryMib: number): ReadyIsolate {
    const kept = this.#byLimit.get(memoryMib);
    // Most recently used last, so the limit dropped when there are too many is the oldest.
    this.#byLimit.delete(memoryMib);
    if (this.size > 0 && !this.#closed) this.#byLimit.set(memoryMib, kept ?? []);
    for (const [limit, isolates] of this.#byLimit) {
      if (this.#byLimit.size <= this.maxLimits) break;
      for (const b of isolates) b.isolate.dispose();
      this.#byLimit.delete(limit);
    }
    return kept?.pop() ?? this.#make(memoryMib);
  }

  #make(memoryMib: number): ReadyIsolate {
    const isolate = new this.ivm.Isolate({ memoryLimit: memoryMib });
    try {
      const context = isolate.createContextSync();
      // Baton's own code (the web APIs, and its warm-up): run on this thread, with no limit.
      compileCached(isolate, this.prelude, 'file:///baton-prelude.js').runSync(context);
      const boot = context.evalSync('__baton.boot', {
        reference: true,
      }) as IsolatedVm.Reference<unknown>;
      return { isolate, context, boot };
    } catch (err) {
      isolate.dispose();
      throw err;
    }
  }

  /**
   * Tops the reserve up in the background, one isolate per turn of the event
   * loop: after AFTER_ANSWER_DELAY_MS while every limit still has one left,
   * at once when one has none (its next take would make one on the request's
   * path, as under a steady stream of per-request isolates).
   */
  refill(): void {
    if (this.#refilling || this.#closed) return;
    this.#refilling = true;
    let empty = false;
    for (const isolates of this.#byLimit.values()) empty ||= isolates.length === 0;
    if (empty) setImmediate(() => this.#topUp());
    else setTimeout(() => this.#topUp(), AFTER_ANSWER_DELAY_MS).unref();
  }

  #topUp(): void {
    if (!this.#closed)
      for (const [limit, isolates] of this.#byLimit)
        if (isolates.length < this.size) {
          try {
            isolates.push(this.#make(limit));
          } catch {
            // V8 could not make one (out of memory?): the next take makes its
            // own and reports why; the next refill tries again.
            break;
          }
          setImmediate(() => this.#topUp());
          return;
        }
    this.#refilling = false;
  }

  /** Isolates held now, over all limits. */
  get held(): number {
    let n = 0;
    for (const isolates of this.#byLimit.values()) n += isolates.length;
    return n;
  }

  close(): void {
    this.#closed = true;
    for (const isolates of this.#byLimit.values()) for (const b of isolates) b.isolate.dispose();
    this.#byLimit.clear();
  }
}

/** A request as the guest's dispatch takes it: method, url, headers, body. */
type GuestRequestArgs = [string, string, Array<[string, string]>, Uint8Array | null];

/**
 * Code caches by script: every isolate runs the prelude, and every sandbox of
 * a function (and every function of one built-in image) the same program,
 * its environment handed in apart, so only the first compiles either in
 * full. The most recent few are kept.
 */
const codeCaches = new Map<string, IsolatedVm.ExternalCopy<ArrayBuffer>>();
const MAX_CODE_CACHES = 64;

function rememberCodeCache(code: string, cache: IsolatedVm.ExternalCopy<ArrayBuffer>): void {
  codeCaches.delete(code);
  codeCaches.set(code, cache);
  for (const oldest of codeCaches.keys()) {
    if (codeCaches.size <= MAX_CODE_CACHES) break;
    codeCaches.delete(oldest);
  }
}

/** Compiles `code` in `isolate` from its code cache, making the cache if there is none. */
function compileCached(
  isolate: IsolatedVm.Isolate,
  code: string,
  filename: string,
  lineOffset = 0,
): IsolatedVm.Script {
  const cachedData = codeCaches.get(code);
  // The cache comes back on the script (isolated-vm's typings leave it out).
  const script: IsolatedVm.Script & IsolatedVm.CachedDataResult = isolate.compileScriptSync(code, {
    filename,
    lineOffset,
    // isolated-vm produces a cache only when there is none or V8 rejected
    // the one given (made under other flags).
    produceCachedData: true,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  if (script.cachedData !== undefined && script.cachedData !== cachedData)
    rememberCodeCache(code, script.cachedData);
  return script;
}

/** Why a request's isolate was stopped by the runtime (as opposed to the handler throwing). */
class LimitExceeded extends Error {}

/** One isolate with its context, ready to dispatch requests. */
class GuestInstance {
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
      if (/memory limit/i.test(errorMessage(err)) || this.isolate.isDisposed) {
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

interface Entry {
  handle: SandboxHandle;
  program: GuestProgram;
  server: Server;
  /**
   * Pooled mode: the sandbox's isolate; none yet (or no more) in a standby
   * sandbox. Per-request mode: always none, each request makes one.
   */
  instance: GuestInstance | undefined;
  /** Pooled and made standby: loads its isolate on demand and gives it up when idle. */
  standby: boolean;
  inflight: number;
  lastUsedAt: number;
  logs: LogBuffer;
  state: 'ready' | 'stopping';
}

export class IsolateRuntime implements SandboxRuntime {
  readonly name: string;
  readonly capabilities: RuntimeCapabilities;
  /** An isolate's heap is limited to at least MIN_ISOLATE_MEMORY_MIB; it holds no process. */
  readonly sandboxFloor = { cpuMilli: 0, memoryMib: MIN_ISOLATE_MEMORY_MIB };
  /** A creation is a compile from cache and a context on the worker's thread: nothing to queue. */
  readonly creationConcurrency = Number.POSITIVE_INFINITY;
  readonly #opts: IsolateRuntimeOptions & {
    cpuLimitMs: number;
    idleMs: number;
    imageBaseDir: string;
    reserve: number;
  };
  readonly #sandboxes = new Map<string, Entry>();
  readonly #starting = new Set<string>();
  readonly #listeners: SandboxExitListener[] = [];
  readonly #exited = new ExitedOutputs();
  readonly #machine = hostname();
  #ivm: Ivm | undefined;
  #reserve: IsolateReserve | undefined;
  #setup: Promise<Ivm> | undefined;
  #closing: Promise<void> | undefined;
  #idleSweep: NodeJS.Timeout | undefined;

  constructor(options: IsolateRuntimeOptions) {
    this.#opts = {
      cpuLimitMs: DEFAULT_ISOLATE_CPU_LIMIT_MS,
      idleMs: DEFAULT_ISOLATE_IDLE_MS,
      imageBaseDir: process.cwd(),
      reserve: DEFAULT_ISOLATE_RESERVE,
      ...options,
    };
    this.name = options.mode === 'pooled' ? 'isolate' : 'isolate-per-request';
    this.capabilities = {
      standby: true,
      freshPerRequest: options.mode === 'per-request',
      reportsColdStart: true,
    };
  }

  async checkHost(): Promise<HostReport> {
    try {
      await loadIvm();
    } catch (err) {
      throw new InvalidConfigError(
        `--runtime ${this.name}: the isolated-vm addon is not installed or did not build (${errorMessage(err).split('\n')[0]}); reinstall with npm install, which compiles it with node-gyp`,
      );
    }
    // Bundle now: the first creation should not pay for esbuild's start.
    await Promise.all([this.#prepare(), bundleHandler(guestModule('builtin'))]);
    const o = this.#opts;
    return {
      notes: [
        `${this.name} sandboxes on ${o.host}, ports ${o.ports.first}-${o.ports.last}`,
        o.mode === 'pooled'
          ? `isolation: a V8 isolate per sandbox (own heap, no Node APIs), kept warm (a standby sandbox's while used, up to ${o.idleMs} ms idle)`
          : 'isolation: a fresh V8 isolate per request (own heap, no Node APIs), nothing kept warm',
        `limits: heap = the function's memory (${DEFAULT_ISOLATE_MEMORY_MIB} MiB if it asks none), ${o.cpuLimitMs} ms CPU per request`,
        o.reserve > 0
          ? `${o.reserve} isolates made ahead per heap limit, the guest prelude loaded`
          : 'no isolates made ahead (--prewarm 0)',
      ],
    };
  }

  async create(
    id: string,
    spec: FunctionSpec,
    signal?: AbortSignal,
    options: CreateOptions = {},
  ): Promise<CreatedSandbox> {
    if (this.#closing !== undefined) throw new UnavailableError('worker is shutting down');
    if (this.#sandboxes.has(id) || this.#starting.has(id))
      throw new SandboxStartError(`sandbox ${id} already exists`);
    this.#starting.add(id);
    try {
      const ivm = await this.#prepare();
      return await this.#create(ivm, id, spec, signal, options.standby === true);
    } finally {
      this.#starting.delete(id);
      this.#reserve?.refill();
    }
  }

  /** The addon, once it and the reserve (which needs the prelude bundled) are set up. */
  #prepare(): Promise<Ivm> {
    this.#setup ??= Promise.all([loadIvm(), bundlePrelude()]).then(([ivm, prelude]) => {
      this.#ivm = ivm;
      this.#reserve = new IsolateReserve(ivm, prelude, this.#opts.reserve);
      return ivm;
    });
    // A failure is kept: it is the host's (the addon) or the install's (the prelude).
    return this.#setup;
  }

  async #create(
    ivm: Ivm,
    id: string,
    spec: FunctionSpec,
    signal: AbortSignal | undefined,
    standby: boolean,
  ): Promise<CreatedSandbox> {
    const t0 = performance.now();
    const source = resolveImageSource(spec.image, this.#opts.imageBaseDir, this.name);
    if (source.kind === 'executable')
      throw new SandboxStartError(
        `image ${source.path} is an executable; the ${this.name} runtime runs JS/TS modules only`,
      );
    const code = programCode(
      await bundleHandler(source.kind === 'builtin' ? guestModule('builtin') : source.path),
    );
    const tBundled = performance.now();
    const program: GuestProgram = {
      code,
      memoryMib: Math.max(MIN_ISOLATE_MEMORY_MIB, spec.memoryMib || DEFAULT_ISOLATE_MEMORY_MIB),
      env: {
        ...spec.env,
        [SANDBOX_ENV.functionName]: spec.name,
        [SANDBOX_ENV.sandboxId]: id,
        [SANDBOX_ENV.machineName]: this.#machine,
        ...(source.kind === 'builtin' ? { [SANDBOX_ENV.image]: source.image } : {}),
      },
    };
    const logs = new LogBuffer(this.#opts.logBufferBytes);
    let instance: GuestInstance;
    try {
      ({ instance } = await GuestInstance.start(
        ivm,
        this.#reserve!.take(program.memoryMib),
        program,
        this.#opts.cpuLimitMs,
        (level, line) => appendLog(logs, level, line),
      ));
    } catch (err) {
      throw new SandboxStartError(`sandbox of ${spec.name} failed to start: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    const tStarted = performance.now();
    const keep = this.#opts.mode === 'pooled' && !standby;
    if (signal?.aborted === true || !keep) instance.dispose();
    if (signal?.aborted === true) throw new UnavailableError(`creation of ${id} aborted`);

    const port = this.#opts.ports.acquire();
    const handle: SandboxHandle = { id, function: spec.name, host: this.#opts.host, port };
    const entry: Entry = {
      handle,
      program,
      server: undefined as never,
      instance: keep ? instance : undefined,
      standby: this.#opts.mode === 'pooled' && standby,
      inflight: 0,
      lastUsedAt: performance.now(),
      logs,
      state: 'ready',
    };
    entry.server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      void this.#serve(entry, req, res);
    });
    try {
      await listen(entry.server, port, this.#opts.host);
    } catch (err) {
      instance.dispose();
      this.#opts.ports.release(port);
      const reason = errorMessage(err);
      if (/EADDRINUSE/.test(reason))
        throw new UnavailableError(`sandbox port ${port} was taken: ${reason}`);
      throw new SandboxStartError(`sandbox of ${spec.name} cannot listen: ${reason}`);
    }
    this.#sandboxes.set(id, entry);
    if (entry.standby)
      this.#idleSweep ??= setInterval(
        () => this.#giveUpIdle(),
        sweepEveryMs(this.#opts.idleMs),
      ).unref();
    const tReady = performance.now();
    return {
      ...handle,
      timings: {
        imageFetchMs: tBundled - t0,
        createMs: tStarted - tBundled,
        networkMs: 0,
        startMs: 0,
        readinessMs: tReady - tStarted,
        totalMs: tReady - t0,
      },
    };
  }

  async #serve(entry: Entry, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A bodiless request is not waited on.
    const body = declaresBody(req.headers) ? await readBody(req, MAX_ISOLATE_BODY_BYTES) : NO_BODY;
    if (body === 'too large') {
      reply(res, 413, `request body over ${MAX_ISOLATE_BODY_BYTES} bytes\n`);
      return;
    }
    // Normalised here, so the guest's Request takes it without a call back for parsing.
    let url: string;
    try {
      url = new URL(
        `http://${req.headers.host ?? `${entry.handle.host}:${entry.handle.port}`}${req.url ?? '/'}`,
      ).href;
    } catch {
      reply(res, 400, `not a valid URL: host ${req.headers.host ?? ''}, path ${req.url ?? ''}\n`);
      return;
    }
    const headers: Array<[string, string]> = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(name)) headers.push([name, req.rawHeaders[i + 1]!]);
    }
    const cpuLimitMs = this.#opts.cpuLimitMs;
    const args: GuestRequestArgs = [
      req.method ?? 'GET',
      url,
      headers,
      body.length === 0 && (req.method === 'GET' || req.method === 'HEAD') ? null : body,
    ];
    let instance = entry.instance;
    const fresh = instance === undefined;
    entry.inflight++;
    try {
      let out: GuestReply | undefined;
      if (instance !== undefined) out = await instance.dispatch(args, cpuLimitMs);
      else {
        // A fresh isolate loads the handler and answers in one call: every
        // request in per-request mode, a standby sandbox's first.
        ({ instance, reply: out } = await GuestInstance.start(
          this.#ivm!,
          this.#reserve!.take(entry.program.memoryMib),
          entry.program,
          cpuLimitMs,
          (level, line) => appendLog(entry.logs, level, line),
          args,
        ));
        if (entry.standby && entry.instance === undefined && entry.state === 'ready')
          entry.instance = instance;
      }
      writeReply(res, out!, fresh);
    } catch (err) {
      if (err instanceof LimitExceeded) {
        const reason = `handler of ${entry.handle.function} ${err.message}; its isolate was stopped`;
        appendLog(entry.logs, 'error', reason);
        reply(res, 500, `${reason}\n`);
        this.#opts.logger.warn(
          { sandbox: entry.handle.id, function: entry.handle.function, reason },
          'isolate stopped by its limit',
        );
        if (instance !== undefined && instance === entry.instance) {
          // A standby sandbox makes another on its next request.
          if (entry.standby) entry.instance = undefined;
          else this.#fail(entry, reason);
        }
      } else {
        const message = errorMessage(err);
        appendLog(entry.logs, 'error', `request failed: ${message}`);
        reply(res, 500, `handler failed: ${message.split('\n')[0]}\n`);
      }
    } finally {
      entry.inflight--;
      entry.lastUsedAt = performance.now();
      if (fresh) {
        // Not kept: disposed once the answer is on its way (AFTER_ANSWER_DELAY_MS).
        const used = instance;
        if (used !== undefined && used !== entry.instance)
          setTimeout(() => used.dispose(), AFTER_ANSWER_DELAY_MS);
        this.#reserve!.refill();
      }
    }
  }

  /** Standby sandboxes idle for idleMs give up their isolates. */
  #giveUpIdle(): void {
    const before = performance.now() - this.#opts.idleMs;
    for (const entry of this.#sandboxes.values()) {
      if (!entry.standby || entry.instance === undefined) continue;
      if (entry.inflight > 0 || entry.lastUsedAt > before) continue;
      entry.instance.dispose();
      entry.instance = undefined;
    }
  }

  /** A pooled sandbox whose isolate died: gone, and reported. */
  #fail(entry: Entry, reason: string): void {
    if (this.#sandboxes.get(entry.handle.id) !== entry) return;
    void this.#remove(entry, reason);
    for (const l of this.#listeners) l(entry.handle.id, reason);
  }

  #remove(entry: Entry, reason: string): Promise<void> {
    entry.state = 'stopping';
    this.#sandboxes.delete(entry.handle.id);
    this.#exited.add({
      id: entry.handle.id,
      function: entry.handle.function,
      state: `exited: ${reason}`,
      text: entry.logs.text(),
    });
    entry.instance?.dispose();
    const closed = new Promise<void>((resolve) => entry.server.close(() => resolve()));
    entry.server.closeAllConnections();
    return closed.then(() => this.#opts.ports.release(entry.handle.port));
  }

  async delete(id: string): Promise<boolean> {
    const entry = this.#sandboxes.get(id);
    if (entry === undefined) return false;
    await this.#remove(entry, 'deleted');
    return true;
  }

  list(): SandboxHandle[] {
    return [...this.#sandboxes.values()].map((e) =>
      e.standby ? { ...e.handle, standby: true } : e.handle,
    );
  }

  logs(functionName: string): SandboxOutput[] {
    const running = [...this.#sandboxes.values()]
      .filter((e) => e.handle.function === functionName)
      .map((e) => ({
        id: e.handle.id,
        function: functionName,
        state: 'running',
        text: e.logs.text(),
      }));
    return [...this.#exited.of(functionName), ...running];
  }

  onExit(listener: SandboxExitListener): void {
    this.#listeners.push(listener);
  }

  close(): Promise<void> {
    clearInterval(this.#idleSweep);
    this.#closing ??= Promise.all([...this.#sandboxes.keys()].map((id) => this.delete(id))).then(
      () => this.#reserve?.close(),
    );
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

function appendLog(logs: LogBuffer, level: string, line: string): void {
  logs.append(Buffer.from(level === 'info' ? `${line}\n` : `[${level}] ${line}\n`));
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const NO_BODY = Buffer.alloc(0);

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too large'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.once('end', () => resolve(size > limit ? 'too large' : Buffer.concat(chunks)));
    req.once('error', () => resolve(Buffer.concat(chunks)));
  });
}

/** Idle isolates are looked for this often: a few times per idle period, at most every second. */
function sweepEveryMs(idleMs: number): number {
  return Math.max(10, Math.min(1000, idleMs / 4));
}

/** `fresh`: an isolate was made for this request; the answer says so (the data plane cannot know). */
function writeReply(res: ServerResponse, out: GuestReply, fresh: boolean): void {
  const headers: Record<string, string | string[]> = {};
  if (fresh) headers[START_HEADER] = 'cold';
  for (const [k, v] of out.headers) {
    if (k === 'content-length' || k === START_HEADER || HOP_BY_HOP.has(k)) continue;
    if (k === 'set-cookie') ((headers[k] ??= []) as string[]).push(v);
    else headers[k] = v;
  }
  // The body is whole: its length lets the data plane take it in one read
  // (without it Node would send it chunked).
  if (out.status !== 204 && out.status !== 304 && out.status >= 200)
    headers['content-length'] = String(out.body?.byteLength ?? 0);
  res.writeHead(out.status, out.statusText, headers);
  res.end(out.body === null ? undefined : out.body);
}

function reply(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}
