/**
 * Process runtime: each sandbox is a child process serving HTTP on a port
 * from the worker's pool (told in $PORT), in its own process group. Ready
 * once it answers an HTTP probe. Delete = SIGTERM to the group, SIGKILL after
 * the grace period. A ready sandbox that exits is reported to the listener.
 * Leaves out: namespaces and cgroup limits (see docs/ARCHITECTURE.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import type { Logger } from '../../shared/logger.js';
import { SandboxStartError, UnavailableError, errorMessage } from '../../shared/errors.js';
import type { FunctionSpec } from '../../shared/function-spec.js';
import { SANDBOX_ENV } from '../../workloads/sandbox-environment.js';
import { LogBuffer } from '../log-buffer.js';
import type { PortPool } from '../ports.js';
import { probeUntilReady } from '../probe.js';
import { resolveProcessImage } from './process-images.js';
import type {
  CreatedSandbox,
  HostReport,
  SandboxExitListener,
  SandboxHandle,
  SandboxRuntime,
} from './sandbox-runtime.js';

export const DEFAULT_READINESS_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_GRACE_MS = 2_000;
/** Variables of the worker's environment a sandbox inherits; everything else comes from the spec. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR'];

export interface ProcessRuntimeOptions {
  /** Address sandboxes listen on and are reached at. */
  host: string;
  ports: PortPool;
  logger: Logger;
  readinessTimeoutMs?: number;
  stopGraceMs?: number;
  /** Relative image paths resolve against this directory. */
  imageBaseDir?: string;
  logBufferBytes?: number;
}

interface Entry {
  handle: SandboxHandle;
  child: ChildProcess;
  state: 'starting' | 'ready' | 'stopping';
  logs: LogBuffer;
  exit: Promise<string>;
  exitReason: string | undefined;
}

export class ProcessRuntime implements SandboxRuntime {
  readonly name = 'process';
  readonly #opts: Required<Omit<ProcessRuntimeOptions, 'logBufferBytes'>> & {
    logBufferBytes: number | undefined;
  };
  readonly #sandboxes = new Map<string, Entry>();
  readonly #listeners: SandboxExitListener[] = [];
  readonly #machine = hostname();
  #closing: Promise<void> | undefined;

  constructor(options: ProcessRuntimeOptions) {
    this.#opts = {
      readinessTimeoutMs: DEFAULT_READINESS_TIMEOUT_MS,
      stopGraceMs: DEFAULT_STOP_GRACE_MS,
      imageBaseDir: process.cwd(),
      ...options,
      logBufferBytes: options.logBufferBytes,
    };
  }

  checkHost(): Promise<HostReport> {
    return Promise.resolve({
      notes: [
        `process sandboxes on ${this.#opts.host}, ports ${this.#opts.ports.first}-${this.#opts.ports.last}`,
        'isolation: none (plain child processes)',
      ],
    });
  }

  async create(id: string, spec: FunctionSpec, signal?: AbortSignal): Promise<CreatedSandbox> {
    if (this.#closing !== undefined) throw new UnavailableError('worker is shutting down');
    if (this.#sandboxes.has(id)) throw new SandboxStartError(`sandbox ${id} already exists`);
    const t0 = performance.now();
    const image = resolveProcessImage(spec.image, this.#opts.imageBaseDir);
    const tImage = performance.now();
    const port = this.#opts.ports.acquire();
    const env: Record<string, string> = {};
    for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
    Object.assign(env, spec.env, image.env, {
      [SANDBOX_ENV.port]: String(port),
      [SANDBOX_ENV.host]: this.#opts.host,
      [SANDBOX_ENV.functionName]: spec.name,
      [SANDBOX_ENV.sandboxId]: id,
      [SANDBOX_ENV.machineName]: this.#machine,
    });

    let child: ChildProcess;
    try {
      child = spawn(image.command, [...image.args, ...spec.args], {
        cwd: image.cwd,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      this.#opts.ports.release(port);
      throw new SandboxStartError(`cannot start ${image.command}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    const logs = new LogBuffer(this.#opts.logBufferBytes);
    child.stdout?.on('data', (c: Buffer) => logs.append(c));
    child.stderr?.on('data', (c: Buffer) => logs.append(c));
    child.stdin?.on('error', () => undefined);
    const handle: SandboxHandle = { id, function: spec.name, host: this.#opts.host, port };
    const entry: Entry = {
      handle,
      child,
      state: 'starting',
      logs,
      exit: undefined as never,
      exitReason: undefined,
    };
    entry.exit = new Promise<string>((resolve) => {
      child.once('error', (err) => {
        entry.exitReason ??= `cannot start ${image.command}: ${errorMessage(err)}`;
        if (child.exitCode === null && child.signalCode === null && child.pid === undefined)
          resolve(entry.exitReason);
      });
      child.once('exit', (code, sig) => {
        entry.exitReason ??= describeExit(code, sig, logs);
        resolve(entry.exitReason);
      });
    });
    void entry.exit.then((reason) => this.#onChildExit(entry, reason));
    this.#sandboxes.set(id, entry);
    const tSpawned = performance.now();

    const probe = await probeUntilReady({
      host: this.#opts.host,
      port,
      timeoutMs: this.#opts.readinessTimeoutMs,
      ...(signal === undefined ? {} : { signal }),
      failure: () => entry.exitReason,
    });
    const tReady = performance.now();
    if (!probe.ready) {
      await this.delete(id);
      const reason = entry.exitReason ?? probe.reason;
      if (/EADDRINUSE/.test(reason))
        throw new UnavailableError(`sandbox port ${port} was taken: ${reason}`);
      if (signal?.aborted === true) throw new UnavailableError(`creation of ${id} aborted`);
      throw new SandboxStartError(`sandbox of ${spec.name} failed to start: ${reason}`);
    }
    entry.state = 'ready';
    return {
      ...handle,
      timings: {
        imageFetchMs: tImage - t0,
        createMs: tSpawned - tImage,
        networkMs: 0,
        startMs: 0,
        readinessMs: tReady - tSpawned,
        totalMs: tReady - t0,
      },
    };
  }

  async delete(id: string): Promise<boolean> {
    const entry = this.#sandboxes.get(id);
    if (entry === undefined) return false;
    if (entry.state !== 'stopping') {
      entry.state = 'stopping';
      signalGroup(entry.child, 'SIGTERM');
      const killer = setTimeout(() => signalGroup(entry.child, 'SIGKILL'), this.#opts.stopGraceMs);
      await entry.exit;
      clearTimeout(killer);
    } else {
      await entry.exit;
    }
    return true;
  }

  list(): SandboxHandle[] {
    const out: SandboxHandle[] = [];
    for (const e of this.#sandboxes.values()) if (e.state === 'ready') out.push(e.handle);
    return out;
  }

  /** Output the sandbox wrote, newest last (bounded). */
  logs(id: string): string | undefined {
    return this.#sandboxes.get(id)?.logs.text();
  }

  onExit(listener: SandboxExitListener): void {
    this.#listeners.push(listener);
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all([...this.#sandboxes.keys()].map((id) => this.delete(id))).then(
      () => undefined,
    );
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onChildExit(entry: Entry, reason: string): void {
    if (this.#sandboxes.get(entry.handle.id) !== entry) return;
    this.#sandboxes.delete(entry.handle.id);
    this.#opts.ports.release(entry.handle.port);
    const wasReady = entry.state === 'ready';
    if (!wasReady) return;
    this.#opts.logger.warn(
      { sandbox: entry.handle.id, function: entry.handle.function, reason },
      'sandbox exited',
    );
    for (const l of this.#listeners) l(entry.handle.id, reason);
  }
}

function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

function describeExit(code: number | null, sig: NodeJS.Signals | null, logs: LogBuffer): string {
  const how = sig !== null ? `killed by ${sig}` : `exited with code ${code ?? '?'}`;
  const tail = logs.tail(3);
  return tail.length > 0 ? `${how}: ${tail}` : how;
}
