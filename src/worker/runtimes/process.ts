/**
 * Process runtime: each sandbox is a child process serving HTTP on a port
 * from the worker's pool (told in $PORT), in its own process group. Ready
 * once it answers an HTTP probe. Delete = SIGTERM to the group, SIGKILL after
 * the grace period. A ready sandbox that exits is reported to the listener.
 *
 * Isolation (on where the host allows it, `--isolation none` turns it off):
 * the sandbox runs under bubblewrap (own pid, ipc, uts and mount namespaces,
 * read-only root, private /tmp) inside its own cgroup, whose memory limit is
 * the function's requested memory and whose CPU quota is its requested
 * milli-CPU, each raised to a floor a Node sandbox needs (`limitsFor`). The
 * CPU quota applies once the sandbox is ready: start-up runs unthrottled
 * (like Cloud Run's start-up boost). An OOM kill is reported as such.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../shared/logger.js';
import type { IsolationMode } from '../../shared/runtime-names.js';
import {
  InvalidConfigError,
  SandboxStartError,
  UnavailableError,
  errorMessage,
} from '../../shared/errors.js';
import type { FunctionSpec } from '../../shared/function-spec.js';
import { NO_CAPABILITIES } from '../../shared/cluster-objects.js';
import { nodeEntry } from '../../shared/node-entry.js';
import { SANDBOX_ENV } from '../../workloads/sandbox-environment.js';
import { POOL_CONTROL_FD, type PoolAssignment } from '../../workloads/pool-protocol.js';
import { ExitedOutputs, LogBuffer, type SandboxOutput } from '../log-buffer.js';
import type { PortPool } from '../ports.js';
import { probeUntilReady } from '../probe.js';
import { resolveProcessImage, type ProcessImage } from './process-images.js';
import { containingDir, detectBubblewrap, type Bubblewrap } from './isolation/bubblewrap.js';
import {
  detectCgroups,
  enterCommand,
  type Cgroups,
  type SandboxCgroup,
  type SandboxLimits,
} from './isolation/cgroups.js';
import type {
  CreatedSandbox,
  HostReport,
  Resources,
  SandboxExitListener,
  SandboxHandle,
  SandboxRuntime,
} from './sandbox-runtime.js';
import {
  DEFAULT_MIN_CPU_LIMIT_MILLI,
  DEFAULT_MIN_CPU_REQUEST_MILLI,
  DEFAULT_MIN_MEMORY_LIMIT_MIB,
  defaultCreationConcurrency,
  limitsFor,
} from './limits.js';

export const DEFAULT_READINESS_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_GRACE_MS = 2_000;
/** Pre-warmed pool hosts a worker keeps by default. */
export const DEFAULT_PREWARM = 2;

export { ISOLATION_MODES, type IsolationMode } from '../../shared/runtime-names.js';

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
  isolation?: IsolationMode;
  minCpuLimitMilli?: number;
  minMemoryLimitMib?: number;
  /** The least milli-CPU a sandbox is charged in placement. */
  minCpuRequestMilli?: number;
  /** Creations run at once. */
  creationConcurrency?: number;
  /** Started Node hosts kept waiting for built-in images and JS/TS modules (0 = none). */
  prewarm?: number;
}

/** A started child (a sandbox, or a pool host waiting to become one), its output and its end. */
interface Launched {
  child: ChildProcess;
  logs: LogBuffer;
  cgroup: SandboxCgroup | undefined;
  /** Its memory limit now, for the OOM kill's reason. */
  memoryMib: number;
  exit: Promise<string>;
  exitReason: string | undefined;
  /** Pool hosts: lines from the control channel go here. */
  onControl: ((line: string) => void) | undefined;
}

interface Entry {
  handle: SandboxHandle;
  proc: Launched;
  state: 'starting' | 'ready' | 'stopping';
  limits: SandboxLimits;
  /** Served by a pre-warmed pool host. */
  prewarmed: boolean;
}

interface PoolHost {
  proc: Launched;
  state: 'starting' | 'warm';
}

export class ProcessRuntime implements SandboxRuntime {
  readonly name = 'process';
  readonly capabilities = NO_CAPABILITIES;
  readonly sandboxFloor: Resources;
  readonly creationConcurrency: number;
  readonly #opts: Required<Omit<ProcessRuntimeOptions, 'logBufferBytes'>> & {
    logBufferBytes: number | undefined;
  };
  #bwrap: Bubblewrap | undefined;
  #cgroups: Cgroups | undefined;
  readonly #sandboxes = new Map<string, Entry>();
  readonly #pool: PoolHost[] = [];
  #poolSeq = 0;
  /** Set when pool hosts die before they are warm: the pool stops refilling. */
  #poolBroken: string | undefined;
  readonly #listeners: SandboxExitListener[] = [];
  readonly #exited = new ExitedOutputs();
  readonly #machine = hostname();
  #closing: Promise<void> | undefined;

  constructor(options: ProcessRuntimeOptions) {
    this.#opts = {
      readinessTimeoutMs: DEFAULT_READINESS_TIMEOUT_MS,
      stopGraceMs: DEFAULT_STOP_GRACE_MS,
      imageBaseDir: process.cwd(),
      isolation: 'auto',
      minCpuLimitMilli: DEFAULT_MIN_CPU_LIMIT_MILLI,
      minMemoryLimitMib: DEFAULT_MIN_MEMORY_LIMIT_MIB,
      minCpuRequestMilli: DEFAULT_MIN_CPU_REQUEST_MILLI,
      creationConcurrency: defaultCreationConcurrency(),
      prewarm: 0,
      ...options,
      logBufferBytes: options.logBufferBytes,
    };
    this.sandboxFloor = {
      cpuMilli: this.#opts.minCpuRequestMilli,
      memoryMib: this.#opts.minMemoryLimitMib,
    };
    this.creationConcurrency = this.#opts.creationConcurrency;
  }

  checkHost(): Promise<HostReport> {
    const o = this.#opts;
    const notes = [`process sandboxes on ${o.host}, ports ${o.ports.first}-${o.ports.last}`];
    if (o.isolation === 'none') {
      notes.push('isolation: none (--isolation none): plain child processes, no limits');
    } else {
      const missing: string[] = [];
      const bwrap = detectBubblewrap();
      if (typeof bwrap === 'string') missing.push(bwrap);
      else {
        this.#bwrap = bwrap;
        notes.push(
          `isolation: ${bwrap.version}: own pid, ipc, uts and mount namespaces, read-only root, private /tmp`,
        );
      }
      const cgroups = detectCgroups();
      if (typeof cgroups === 'string') missing.push(cgroups);
      else {
        this.#cgroups = cgroups;
        notes.push(
          `limits: ${cgroups.description}: requested memory (at least ${o.minMemoryLimitMib} MiB), requested milli-CPU (at least ${o.minCpuLimitMilli}) once ready`,
        );
      }
      if (missing.length > 0 && o.isolation === 'strict') {
        void this.#cgroups?.close();
        return Promise.reject(new InvalidConfigError(`--isolation strict: ${missing.join('; ')}`));
      }
      for (const m of missing) notes.push(`could not enable ${m}`);
    }
    if (o.prewarm > 0) {
      notes.push(
        `pre-warmed pool: ${o.prewarm} started Node hosts for built-in images and JS/TS modules`,
      );
      this.#fillPool();
    }
    return Promise.resolve({ notes });
  }

  async create(id: string, spec: FunctionSpec, signal?: AbortSignal): Promise<CreatedSandbox> {
    if (this.#closing !== undefined) throw new UnavailableError('worker is shutting down');
    if (this.#sandboxes.has(id)) throw new SandboxStartError(`sandbox ${id} already exists`);
    const t0 = performance.now();
    const image = resolveProcessImage(spec.image, this.#opts.imageBaseDir);
    const tImage = performance.now();
    const port = this.#opts.ports.acquire();
    const sandboxEnv: Record<string, string> = {
      [SANDBOX_ENV.port]: String(port),
      [SANDBOX_ENV.host]: this.#opts.host,
      [SANDBOX_ENV.functionName]: spec.name,
      [SANDBOX_ENV.sandboxId]: id,
      [SANDBOX_ENV.machineName]: this.#machine,
    };
    const limits = limitsFor(spec, {
      cpuMilli: this.#opts.minCpuLimitMilli,
      memoryMib: this.#opts.minMemoryLimitMib,
    });
    const handle: SandboxHandle = { id, function: spec.name, host: this.#opts.host, port };

    const warm = spec.args.length === 0 ? this.#takeWarm(image) : undefined;
    let entry: Entry;
    if (warm !== undefined) {
      entry = { handle, proc: warm.proc, state: 'starting', limits, prewarmed: true };
      try {
        warm.proc.cgroup?.limitMemory(limits.memoryMib);
        warm.proc.memoryMib = limits.memoryMib;
      } catch (err) {
        signalGroup(warm.proc.child, 'SIGKILL');
        this.#opts.ports.release(port);
        throw new UnavailableError(`cannot set the memory limit of ${id}: ${errorMessage(err)}`);
      }
    } else {
      const env: Record<string, string> = inheritedEnv();
      Object.assign(env, spec.env, image.env, sandboxEnv);
      let proc: Launched;
      try {
        proc = this.#launch(
          id,
          image.command,
          [...image.args, ...spec.args],
          image.cwd,
          env,
          limits.memoryMib,
          imagePaths(image),
          false,
        );
      } catch (err) {
        this.#opts.ports.release(port);
        throw new SandboxStartError(`cannot start ${image.command}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      entry = { handle, proc, state: 'starting', limits, prewarmed: false };
    }
    void entry.proc.exit.then((reason) => this.#onSandboxExit(entry, reason));
    this.#sandboxes.set(id, entry);
    const tSpawned = performance.now();

    const ready =
      warm !== undefined && image.pool !== undefined
        ? await this.#assign(
            entry.proc,
            {
              host: this.#opts.host,
              port,
              cwd: image.cwd,
              env: { ...spec.env, ...image.env, ...sandboxEnv },
              serve: image.pool,
            },
            signal,
          )
        : await probeUntilReady({
            host: this.#opts.host,
            port,
            timeoutMs: this.#opts.readinessTimeoutMs,
            ...(signal === undefined ? {} : { signal }),
            failure: () => entry.proc.exitReason,
          });
    const tReady = performance.now();
    if (!ready.ready) {
      await this.delete(id);
      const reason = entry.proc.exitReason ?? ready.reason;
      if (/EADDRINUSE/.test(reason))
        throw new UnavailableError(`sandbox port ${port} was taken: ${reason}`);
      if (signal?.aborted === true) throw new UnavailableError(`creation of ${id} aborted`);
      throw new SandboxStartError(`sandbox of ${spec.name} failed to start: ${reason}`);
    }
    entry.state = 'ready';
    try {
      entry.proc.cgroup?.limitCpu(limits.cpuMilli);
    } catch (err) {
      await this.delete(id);
      throw new SandboxStartError(`cannot set the CPU quota of ${id}: ${errorMessage(err)}`);
    }
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
      await this.#stop(entry.proc);
    } else {
      await entry.proc.exit;
    }
    return true;
  }

  list(): SandboxHandle[] {
    const out: SandboxHandle[] = [];
    for (const e of this.#sandboxes.values()) if (e.state === 'ready') out.push(e.handle);
    return out;
  }

  logs(functionName: string): SandboxOutput[] {
    const running = [...this.#sandboxes.values()]
      .filter((e) => e.handle.function === functionName)
      .map((e) => ({
        id: e.handle.id,
        function: functionName,
        state: e.state === 'ready' ? 'running' : e.state,
        text: e.proc.logs.text(),
      }));
    return [...this.#exited.of(functionName), ...running];
  }

  /** Pool hosts warm and waiting (for tests and benchmarks). */
  get warmHosts(): number {
    return this.#pool.filter((h) => h.state === 'warm').length;
  }

  /** Host pid of the sandbox's first process (its tree holds the rest), for benchmarks. */
  hostPid(id: string): number | undefined {
    return this.#sandboxes.get(id)?.proc.child.pid;
  }

  /** Whether the sandbox is a pool host that took it over (for tests and benchmarks). */
  isPrewarmed(id: string): boolean {
    return this.#sandboxes.get(id)?.prewarmed === true;
  }

  onExit(listener: SandboxExitListener): void {
    this.#listeners.push(listener);
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all([
      ...[...this.#sandboxes.keys()].map((id) => this.delete(id)),
      ...this.#pool.splice(0).map((h) => this.#stop(h.proc)),
    ]).then(async () => {
      await this.#cgroups?.close();
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Starts `command` as a sandbox: in its cgroup (memory limit now, CPU quota
   * once ready) and under bubblewrap where the host has them, in its own
   * process group, output kept. `paths` are what it must be able to read.
   */
  #launch(
    groupId: string,
    command: string,
    args: string[],
    cwd: string | undefined,
    env: Record<string, string>,
    memoryMib: number,
    paths: string[],
    control: boolean,
  ): Launched {
    const cgroup = this.#cgroups?.create(groupId, { cpuMilli: 0, memoryMib });
    let child: ChildProcess;
    try {
      let cmd = { command, args };
      if (this.#bwrap !== undefined)
        cmd = this.#bwrap.wrap(cmd.command, cmd.args, [...paths, ...packageRoots]);
      if (cgroup !== undefined) cmd = enterCommand(cgroup, cmd.command, cmd.args);
      child = spawn(cmd.command, cmd.args, {
        cwd,
        env,
        stdio: control ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      cgroup?.remove();
      throw err;
    }
    const logs = new LogBuffer(this.#opts.logBufferBytes);
    child.stdout?.on('data', (c: Buffer) => logs.append(c));
    child.stderr?.on('data', (c: Buffer) => logs.append(c));
    child.stdin?.on('error', () => undefined);
    const proc: Launched = {
      child,
      logs,
      cgroup,
      memoryMib,
      exit: undefined as never,
      exitReason: undefined,
      onControl: undefined,
    };
    if (control) {
      const channel = child.stdio[POOL_CONTROL_FD] as Readable & Writable;
      let buffered = '';
      channel.on('error', () => undefined);
      channel.on('data', (c: Buffer) => {
        buffered += c.toString('utf8');
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          proc.onControl?.(line);
        }
      });
    }
    proc.exit = new Promise<string>((resolve) => {
      child.once('error', (err) => {
        proc.exitReason ??= `cannot start ${command}: ${errorMessage(err)}`;
        if (child.exitCode === null && child.signalCode === null && child.pid === undefined)
          resolve(proc.exitReason);
      });
      child.once('exit', (code, sig) => {
        proc.exitReason ??=
          proc.cgroup?.oomKilled() === true
            ? `killed by the OOM killer: over its memory limit of ${proc.memoryMib} MiB`
            : describeExit(code, sig, logs);
        resolve(proc.exitReason);
      });
    });
    void proc.exit.then(() => {
      if (proc.cgroup !== undefined) removeWhenEmpty(proc.cgroup);
    });
    return proc;
  }

  /** SIGTERM to the group, SIGKILL after the grace period; resolves once it exited. */
  async #stop(proc: Launched): Promise<void> {
    signalGroup(proc.child, 'SIGTERM');
    const killer = setTimeout(() => signalGroup(proc.child, 'SIGKILL'), this.#opts.stopGraceMs);
    await proc.exit;
    clearTimeout(killer);
  }

  /** Starts pool hosts until the pool is full. */
  #fillPool(): void {
    while (
      this.#pool.length < this.#opts.prewarm &&
      this.#closing === undefined &&
      this.#poolBroken === undefined
    ) {
      const n = ++this.#poolSeq;
      const { command, args } = nodeEntry(import.meta.url, '../../workloads/pool-host');
      const env = inheritedEnv();
      env[SANDBOX_ENV.host] = this.#opts.host;
      env[SANDBOX_ENV.machineName] = this.#machine;
      let proc: Launched;
      try {
        proc = this.#launch(
          `pool-${n}`,
          command,
          args,
          undefined,
          env,
          this.#opts.minMemoryLimitMib,
          [],
          true,
        );
      } catch (err) {
        this.#poolBroken = `cannot start a pool host: ${errorMessage(err)}`;
        this.#opts.logger.warn({ reason: this.#poolBroken }, 'pre-warmed pool disabled');
        return;
      }
      const host: PoolHost = { proc, state: 'starting' };
      proc.onControl = (line) => {
        if (line === 'warm') host.state = 'warm';
      };
      this.#pool.push(host);
      void proc.exit.then((reason) => {
        const i = this.#pool.indexOf(host);
        if (i < 0) return; // taken: it is a sandbox now
        this.#pool.splice(i, 1);
        if (this.#closing !== undefined) return;
        if (host.state === 'starting') {
          this.#poolBroken = `a pool host exited before it was warm: ${reason}`;
          this.#opts.logger.warn({ reason: this.#poolBroken }, 'pre-warmed pool disabled');
          return;
        }
        this.#opts.logger.warn({ reason }, 'pre-warmed pool host exited; replacing it');
        this.#fillPool();
      });
    }
  }

  /**
   * A warm pool host for `image`, if one is waiting and the image can be
   * served by one: a built-in image, or a module the host can read (under
   * bubblewrap the private /tmp hides paths below /tmp, which a host started
   * before the function was known cannot have bound; Baton's own directories
   * it has, wherever they are).
   */
  #takeWarm(image: ProcessImage): PoolHost | undefined {
    if (image.pool === undefined) return undefined;
    if (
      this.#bwrap !== undefined &&
      imagePaths(image).some(
        (p) => p.startsWith('/tmp/') && !packageRoots.some((root) => isWithin(p, root)),
      )
    )
      return undefined;
    const i = this.#pool.findIndex((h) => h.state === 'warm');
    if (i < 0) return undefined;
    const [host] = this.#pool.splice(i, 1);
    // Refill once this creation has sent its assignment: spawning is not free.
    setImmediate(() => this.#fillPool());
    return host;
  }

  /** Sends a pool host its assignment and waits for it to serve. */
  #assign(
    proc: Launched,
    assignment: PoolAssignment,
    signal: AbortSignal | undefined,
  ): Promise<{ ready: true } | { ready: false; reason: string }> {
    return new Promise((resolve) => {
      const done = (r: { ready: true } | { ready: false; reason: string }) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        proc.onControl = undefined;
        resolve(r);
      };
      const onAbort = () => done({ ready: false, reason: 'aborted' });
      const timer = setTimeout(
        () =>
          done({
            ready: false,
            reason: `not serving after ${this.#opts.readinessTimeoutMs} ms`,
          }),
        this.#opts.readinessTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      proc.onControl = (line) => {
        if (line === 'ready') done({ ready: true });
        else if (line.startsWith('failed: ')) done({ ready: false, reason: line.slice(8) });
      };
      void proc.exit.then((reason) => done({ ready: false, reason }));
      const channel = proc.child.stdio[POOL_CONTROL_FD] as Writable;
      channel.write(`${JSON.stringify(assignment)}\n`);
    });
  }

  #onSandboxExit(entry: Entry, reason: string): void {
    if (this.#sandboxes.get(entry.handle.id) !== entry) return;
    this.#sandboxes.delete(entry.handle.id);
    this.#opts.ports.release(entry.handle.port);
    this.#exited.add({
      id: entry.handle.id,
      function: entry.handle.function,
      state: `exited: ${reason}`,
      text: entry.proc.logs.text(),
    });
    const wasReady = entry.state === 'ready';
    if (!wasReady) return;
    this.#opts.logger.warn(
      { sandbox: entry.handle.id, function: entry.handle.function, reason },
      'sandbox exited',
    );
    for (const l of this.#listeners) l(entry.handle.id, reason);
  }
}

function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

/** What a sandbox of `image` must be able to read: its program, its directory, its handler. */
function imagePaths(image: ProcessImage): string[] {
  const paths = [image.command, ...image.args].filter((p) => p.startsWith('/')).map(containingDir);
  if (image.cwd !== undefined) paths.push(image.cwd);
  const handler = image.env[SANDBOX_ENV.handler];
  if (handler !== undefined) paths.push(containingDir(handler));
  return paths;
}

function isWithin(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return path === d || path.startsWith(`${d}/`);
}

/** Directories of Baton itself (its code and node_modules), which sandboxes run from. */
const packageRoots = [
  fileURLToPath(new URL('../../..', import.meta.url)),
  dirname(process.execPath),
];

/** A group is removable once the kernel has reaped its last task: retry for a while. */
function removeWhenEmpty(cgroup: SandboxCgroup, attempts = 40): void {
  if (cgroup.remove() || attempts <= 0) return;
  setTimeout(() => removeWhenEmpty(cgroup, attempts - 1), 50).unref();
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
