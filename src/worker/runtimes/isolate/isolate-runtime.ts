/**
 * What the two isolate runtimes share: JS/TS handlers (the web-standard
 * `Request -> Response` default export the process runtime serves) run in V8
 * isolates through isolated-vm, each isolate with its own heap under the
 * function's memory limit and every request under a CPU-time limit. A
 * handler that exceeds either is stopped (its isolate disposed), its request
 * answered 500 with the reason, and the worker lives on.
 *
 * Each sandbox listens on its own port from the worker's pool (http-bridge),
 * so the data plane addresses it like any other sandbox. Isolates come from
 * an IsolateReserve, made ahead with the guest prelude loaded and no
 * function's code in them. What differs between the runtimes (which
 * isolates a sandbox keeps) is in PooledIsolateRuntime and
 * PerRequestIsolateRuntime.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { Logger } from '../../../shared/logger.js';
import {
  InvalidConfigError,
  SandboxStartError,
  UnavailableError,
  errorMessage,
} from '../../../shared/errors.js';
import type { FunctionSpec } from '../../../shared/function-spec.js';
import type { RuntimeCapabilities } from '../../../shared/cluster-objects.js';
import { SANDBOX_ENV } from '../../../shared/sandbox-environment.js';
import type { GuestReply } from '../../../guest/isolate/reply.js';
import { LogBuffer, type SandboxOutput } from '../../log-buffer.js';
import type { PortPool } from '../../ports.js';
import { resolveImageSource, type ImageSource } from '../image-source.js';
import type { CreatedSandbox, CreateOptions, HostReport } from '../sandbox-runtime.js';
import { RuntimeBase, type SandboxEntry } from '../runtime-base.js';
import { bundleHandler, bundlePrelude, guestModule } from './bundle.js';
import { loadIvm, type Ivm } from './isolated-vm.js';
import { AFTER_ANSWER_DELAY_MS, IsolateReserve } from './reserve.js';
import { GuestInstance, LimitExceeded, programCode, type GuestProgram } from './guest-instance.js';
import { guestRequest, listen, reply, writeReply } from './http-bridge.js';
import { DEFAULT_ISOLATE_CPU_LIMIT_MS } from './isolate-defaults.js';

export { MAX_ISOLATE_BODY_BYTES } from './http-bridge.js';

/** Heap of an isolate whose function requests no memory. */
export const DEFAULT_ISOLATE_MEMORY_MIB = 128;
/** V8 needs this much to start an isolate with a context. */
export const MIN_ISOLATE_MEMORY_MIB = 8;
/** Ready isolates kept per heap limit. */
export const DEFAULT_ISOLATE_RESERVE = 2;

export interface IsolateRuntimeOptions {
  host: string;
  ports: PortPool;
  logger: Logger;
  cpuLimitMs?: number;
  /** Blank isolates kept ready per heap limit (0 = make each when needed). */
  reserve?: number;
  /** Relative image paths resolve against this directory. */
  imageBaseDir?: string;
  logBufferBytes?: number;
}

export interface IsolateEntry extends SandboxEntry {
  program: GuestProgram;
  server: Server;
  /** The isolate the sandbox keeps, if it keeps one now (see keepsIsolate, loadsOnDemand). */
  instance: GuestInstance | undefined;
  /** A standby sandbox of a runtime that keeps isolates: it loads one on demand, and may give it up. */
  standby: boolean;
  inflight: number;
  lastUsedAt: number;
  logs: LogBuffer;
}

export abstract class IsolateRuntime extends RuntimeBase<IsolateEntry> {
  abstract override readonly name: string;
  abstract override readonly capabilities: RuntimeCapabilities;
  /** An isolate's heap is limited to at least MIN_ISOLATE_MEMORY_MIB; it holds no process. */
  readonly sandboxFloor = { cpuMilli: 0, memoryMib: MIN_ISOLATE_MEMORY_MIB };
  /** A creation is a compile from cache and a context on the worker's thread: nothing to queue. */
  readonly creationConcurrency = Number.POSITIVE_INFINITY;
  protected readonly opts: Required<Omit<IsolateRuntimeOptions, 'logBufferBytes'>> & {
    logBufferBytes: number | undefined;
  };
  readonly #machine = hostname();
  #ivm: Ivm | undefined;
  #reserve: IsolateReserve | undefined;
  #setup: Promise<Ivm> | undefined;

  constructor(options: IsolateRuntimeOptions) {
    super();
    this.opts = {
      cpuLimitMs: DEFAULT_ISOLATE_CPU_LIMIT_MS,
      imageBaseDir: process.cwd(),
      reserve: DEFAULT_ISOLATE_RESERVE,
      ...options,
      logBufferBytes: options.logBufferBytes,
    };
  }

  /** Whether a sandbox created now keeps the isolate that loaded its handler. */
  protected abstract keepsIsolate(standby: boolean): boolean;
  /** Whether a sandbox created now loads an isolate on demand and keeps it (see IsolateEntry.standby). */
  protected abstract loadsOnDemand(standby: boolean): boolean;
  /** One line for checkHost: what a sandbox keeps warm. */
  protected abstract describeIsolation(): string;
  /** A sandbox is ready (a runtime that gives isolates up watches it). */
  protected onReady(_entry: IsolateEntry): void {}

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
    const o = this.opts;
    return {
      notes: [
        `${this.name} sandboxes on ${o.host}, ports ${o.ports.first}-${o.ports.last}`,
        this.describeIsolation(),
        `limits: heap = the function's memory (${DEFAULT_ISOLATE_MEMORY_MIB} MiB if it asks none), ${o.cpuLimitMs} ms CPU per request`,
        o.reserve > 0
          ? `${o.reserve} isolates made ahead per heap limit, the guest prelude loaded`
          : 'no isolates made ahead (--prewarm 0)',
      ],
      isolation: `V8 isolates in the worker's process (${this.name}): no access to the host's files, processes or sockets`,
      warnings: [],
    };
  }

  async create(
    id: string,
    spec: FunctionSpec,
    signal?: AbortSignal,
    options: CreateOptions = {},
  ): Promise<CreatedSandbox> {
    this.assertCreatable(id);
    this.creating.add(id);
    try {
      const ivm = await this.#prepare();
      return await this.#create(ivm, id, spec, signal, options.standby === true);
    } finally {
      this.creating.delete(id);
      this.#reserve?.refill();
    }
  }

  /** The addon, once it and the reserve (which needs the prelude bundled) are set up. */
  #prepare(): Promise<Ivm> {
    this.#setup ??= Promise.all([loadIvm(), bundlePrelude()]).then(([ivm, prelude]) => {
      this.#ivm = ivm;
      this.#reserve = new IsolateReserve(ivm, prelude, this.opts.reserve);
      return ivm;
    });
    // A failure is kept: it is the host's (the addon) or the install's (the prelude).
    return this.#setup;
  }

  async checkImage(spec: FunctionSpec): Promise<void> {
    await this.#bundle(spec);
  }

  /** The handler's bundle (cached); SandboxStartError when the image is not a module that bundles. */
  async #bundle(spec: FunctionSpec): Promise<{ code: string; source: ImageSource }> {
    const source = resolveImageSource(spec.image, this.opts.imageBaseDir, this.name);
    if (source.kind === 'executable')
      throw new SandboxStartError(
        `image ${source.path} is an executable; the ${this.name} runtime runs JS/TS modules only`,
      );
    const entry = source.kind === 'builtin' ? guestModule('builtin') : source.path;
    return { code: await bundleHandler(entry), source };
  }

  async #create(
    ivm: Ivm,
    id: string,
    spec: FunctionSpec,
    signal: AbortSignal | undefined,
    standby: boolean,
  ): Promise<CreatedSandbox> {
    const t0 = performance.now();
    const { code: bundled, source } = await this.#bundle(spec);
    const code = programCode(bundled);
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
    const logs = new LogBuffer(this.opts.logBufferBytes);
    let instance: GuestInstance;
    try {
      // Loading the handler checks it starts, also for a sandbox that keeps no isolate.
      ({ instance } = await GuestInstance.start(
        ivm,
        this.#reserve!.take(program.memoryMib),
        program,
        this.opts.cpuLimitMs,
        (level, line) => appendLog(logs, level, line),
      ));
    } catch (err) {
      throw new SandboxStartError(`sandbox of ${spec.name} failed to start: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    const tStarted = performance.now();
    const keep = this.keepsIsolate(standby);
    if (signal?.aborted === true || !keep) instance.dispose();
    if (signal?.aborted === true) throw new UnavailableError(`creation of ${id} aborted`);

    const port = this.opts.ports.acquire();
    const entry: IsolateEntry = {
      handle: { id, function: spec.name, host: this.opts.host, port },
      program,
      server: undefined as never,
      instance: keep ? instance : undefined,
      standby: this.loadsOnDemand(standby),
      inflight: 0,
      lastUsedAt: performance.now(),
      logs,
      state: 'ready',
    };
    entry.server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      void this.#serve(entry, req, res);
    });
    try {
      await listen(entry.server, port, this.opts.host);
    } catch (err) {
      instance.dispose();
      this.opts.ports.release(port);
      const reason = errorMessage(err);
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
        throw new UnavailableError(`sandbox port ${port} was taken: ${reason}`);
      throw new SandboxStartError(`sandbox of ${spec.name} cannot listen: ${reason}`);
    }
    this.sandboxes.set(id, entry);
    this.onReady(entry);
    const tReady = performance.now();
    return {
      ...entry.handle,
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

  async #serve(entry: IsolateEntry, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const args = await guestRequest(req, `${entry.handle.host}:${entry.handle.port}`);
    if (!Array.isArray(args)) return reply(res, args.status, args.text);
    const cpuLimitMs = this.opts.cpuLimitMs;
    let instance = entry.instance;
    const cold = instance === undefined;
    entry.inflight++;
    try {
      let out: GuestReply | undefined;
      if (instance !== undefined) out = await instance.dispatch(args, cpuLimitMs);
      else {
        // A fresh isolate loads the handler and answers in one call: every
        // request of a sandbox that keeps none, a standby sandbox's first.
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
      writeReply(res, out!, cold);
    } catch (err) {
      if (err instanceof LimitExceeded) {
        const reason = `handler of ${entry.handle.function} ${err.message}; its isolate was stopped`;
        appendLog(entry.logs, 'error', reason);
        reply(res, 500, `${reason}\n`);
        this.opts.logger.warn(
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
      if (cold) {
        // Not kept: disposed once the answer is on its way (AFTER_ANSWER_DELAY_MS).
        const used = instance;
        if (used !== undefined && used !== entry.instance)
          setTimeout(() => used.dispose(), AFTER_ANSWER_DELAY_MS);
        this.#reserve!.refill();
      }
    }
  }

  /** A sandbox whose kept isolate died: gone, and reported. */
  #fail(entry: IsolateEntry, reason: string): void {
    if (this.sandboxes.get(entry.handle.id) !== entry) return;
    void this.#remove(entry, reason);
    this.reportExit(entry.handle.id, reason);
  }

  #remove(entry: IsolateEntry, reason: string): Promise<void> {
    entry.state = 'stopping';
    this.sandboxes.delete(entry.handle.id);
    this.keepOutput(entry, reason, entry.logs);
    entry.instance?.dispose();
    const closed = new Promise<void>((resolve) => entry.server.close(() => resolve()));
    entry.server.closeAllConnections();
    return closed.then(() => this.opts.ports.release(entry.handle.port));
  }

  async delete(id: string): Promise<boolean> {
    const entry = this.sandboxes.get(id);
    if (entry === undefined) return false;
    await this.#remove(entry, 'deleted');
    return true;
  }

  protected override listed(e: IsolateEntry) {
    return e.standby ? { ...e.handle, standby: true } : e.handle;
  }

  logs(functionName: string, sinceMs?: number): SandboxOutput[] {
    return this.outputs(
      functionName,
      sinceMs,
      (e) => e.logs,
      () => 'running',
    );
  }

  protected async shutdown(): Promise<void> {
    await Promise.all([...this.sandboxes.keys()].map((id) => this.delete(id)));
    this.#reserve?.close();
  }
}

function appendLog(logs: LogBuffer, level: string, line: string): void {
  logs.append(Buffer.from(level === 'info' ? `${line}\n` : `[${level}] ${line}\n`));
}
