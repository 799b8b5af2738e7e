/**
 * Process runtime: each sandbox is a child process serving HTTP on a port
 * from the worker's pool (told in $PORT), in its own process group. Ready
 * once it answers an HTTP probe (or, for a pre-warmed pool host, once it says
 * it serves). Delete = SIGTERM to the group, SIGKILL after the grace period.
 * A ready sandbox that exits is reported to the listeners.
 *
 * Isolation (on where the host allows it, `--isolation none` turns it off):
 * the sandbox runs under bubblewrap (own pid, ipc, uts and mount namespaces,
 * read-only root, private /tmp) inside its own cgroup, whose memory limit is
 * the function's requested memory and whose CPU quota is its requested
 * milli-CPU, each raised to a floor a Node sandbox needs (`limitsFor`). The
 * CPU quota applies once the sandbox is ready: start-up runs unthrottled
 * (like Cloud Run's start-up boost). An OOM kill is reported as such.
 */
import { hostname } from 'node:os';
import type { Logger } from '../../../shared/logger.js';
import type { IsolationMode } from '../../../shared/runtime-names.js';
import {
  InvalidConfigError,
  SandboxStartError,
  UnavailableError,
  errorMessage,
} from '../../../shared/errors.js';
import type { FunctionSpec } from '../../../shared/function-spec.js';
import { NO_CAPABILITIES } from '../../../shared/cluster-objects.js';
import { SANDBOX_ENV, SANDBOX_EXIT } from '../../../shared/sandbox-environment.js';
import type { SandboxOutput } from '../../log-buffer.js';
import type { PortPool } from '../../ports.js';
import { probeUntilReady } from '../../probe.js';
import type { CreatedSandbox, HostReport, Resources } from '../sandbox-runtime.js';
import { RuntimeBase, type SandboxEntry } from '../runtime-base.js';
import {
  DEFAULT_MIN_CPU_LIMIT_MILLI,
  DEFAULT_MIN_CPU_REQUEST_MILLI,
  DEFAULT_MIN_MEMORY_LIMIT_MIB,
  DEFAULT_READINESS_TIMEOUT_MS,
  DEFAULT_STOP_GRACE_MS,
  SANDBOX_TMP_MIB,
  defaultCreationConcurrency,
  limitsFor,
} from '../limits.js';
import { resolveProcessImage, type ProcessImage } from './process-images.js';
import { checkModuleCompiles } from '../module-check.js';
import { detectBubblewrap } from './isolation/bubblewrap.js';
import { detectSandboxUsers, unreadableByOthers } from './isolation/users.js';
import { fenceLocalConnections, type LocalFence } from './isolation/local-fence.js';
import { detectCgroups, type SandboxLimits } from './isolation/cgroups.js';
import {
  Launcher,
  PACKAGE_ROOTS,
  imagePaths,
  inheritedEnv,
  signalGroup,
  stopProcess,
  type Launched,
} from './launcher.js';
import { PrewarmPool, type Readiness } from './prewarm-pool.js';

export { ISOLATION_MODES, type IsolationMode } from '../../../shared/runtime-names.js';

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
  /** This host's ports sandbox users may connect to (see isolation/local-fence.ts). */
  sandboxLocalPorts?: readonly number[];
}

interface Entry extends SandboxEntry {
  proc: Launched;
  limits: SandboxLimits;
  /** Served by a pre-warmed pool host. */
  prewarmed: boolean;
}

export class ProcessRuntime extends RuntimeBase<Entry> {
  readonly name = 'process';
  readonly capabilities = NO_CAPABILITIES;
  readonly sandboxFloor: Resources;
  readonly creationConcurrency: number;
  readonly #opts: Required<Omit<ProcessRuntimeOptions, 'logBufferBytes'>> & {
    logBufferBytes: number | undefined;
  };
  /** Plain child processes until checkHost finds what the host allows. */
  #launcher: Launcher;
  #pool: PrewarmPool | undefined;
  #fence: LocalFence | undefined;
  readonly #machine = hostname();

  constructor(options: ProcessRuntimeOptions) {
    super();
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
      sandboxLocalPorts: [],
      ...options,
      logBufferBytes: options.logBufferBytes,
    };
    this.sandboxFloor = {
      cpuMilli: this.#opts.minCpuRequestMilli,
      memoryMib: this.#opts.minMemoryLimitMib,
    };
    this.creationConcurrency = this.#opts.creationConcurrency;
    this.#launcher = new Launcher(undefined, undefined, this.#opts.logBufferBytes);
  }

  checkHost(): Promise<HostReport> {
    const o = this.#opts;
    const notes = [`process sandboxes on ${o.host}, ports ${o.ports.first}-${o.ports.last}`];
    const warnings: string[] = [];
    let bwrap;
    let cgroups;
    let users;
    const root = process.getuid?.() === 0;
    if (o.isolation === 'none') {
      notes.push('isolation: none (--isolation none): plain child processes, no limits');
      warnings.push(
        `--isolation none: sandboxes run ${root ? 'as root ' : ''}with no namespaces and no limits`,
      );
    } else {
      const missing: string[] = [];
      const b = detectBubblewrap();
      if (typeof b === 'string') missing.push(b);
      else {
        bwrap = b;
        notes.push(
          `isolation: ${b.version}: own pid, ipc, uts and mount namespaces, read-only root of system directories, private /tmp (${SANDBOX_TMP_MIB} MiB)`,
        );
      }
      const c = detectCgroups();
      if (typeof c === 'string') missing.push(c);
      else {
        cgroups = c;
        notes.push(
          `limits: ${c.description}: requested memory (at least ${o.minMemoryLimitMib} MiB), requested milli-CPU (at least ${o.minCpuLimitMilli}) once ready`,
        );
      }
      // Sandboxes run Baton's own code (guests, built-in images) and Node: they must read them.
      const installUnreadable = unreadableByOthers(PACKAGE_ROOTS);
      const u =
        installUnreadable === undefined
          ? detectSandboxUsers(o.ports.first, o.ports.last)
          : `sandbox users: Baton's install cannot be read by them: ${installUnreadable}`;
      if (typeof u !== 'string') {
        users = u;
        notes.push(`users: ${u.description}`);
        const f = fenceLocalConnections(...u.uids, o.sandboxLocalPorts);
        if (typeof f === 'string') missing.push(f);
        else notes.push(`network: ${(this.#fence = f).description}`);
      } else if (root) missing.push(u);
      else notes.push(u);
      if (missing.length > 0 && o.isolation === 'strict') {
        void cgroups?.close();
        this.#fence?.remove();
        return Promise.reject(new InvalidConfigError(`--isolation strict: ${missing.join('; ')}`));
      }
      for (const m of missing) {
        notes.push(`could not enable ${m}`);
        warnings.push(m);
      }
    }
    const isolation = [
      bwrap === undefined ? 'no namespaces' : 'bubblewrap namespaces',
      cgroups === undefined ? 'no limits' : `cgroup v${cgroups.version} limits`,
      users !== undefined ? 'a user per sandbox' : root ? 'AS ROOT' : "as the worker's user",
      this.#fence !== undefined ? 'no connections to this host' : 'may connect to this host',
    ].join(', ');
    this.#launcher = new Launcher(bwrap, cgroups, o.logBufferBytes, users);
    if (o.prewarm > 0) {
      notes.push(
        `pre-warmed pool: ${o.prewarm} started Node hosts for built-in images and JS/TS modules`,
      );
      this.#pool = new PrewarmPool(this.#launcher, {
        size: o.prewarm,
        host: o.host,
        memoryMib: o.minMemoryLimitMib,
        stopGraceMs: o.stopGraceMs,
        logger: o.logger,
      });
      this.#pool.fill();
    }
    return Promise.resolve({ notes, isolation, warnings });
  }

  async checkImage(spec: FunctionSpec): Promise<void> {
    const image = this.#image(spec);
    if (image.pool !== undefined && 'handler' in image.pool)
      await checkModuleCompiles(image.pool.handler);
  }

  /** What runs for the spec's image; SandboxStartError when it cannot (missing, unreadable by sandboxes). */
  #image(spec: FunctionSpec): ProcessImage {
    const image = resolveProcessImage(spec.image, this.#opts.imageBaseDir);
    if (this.#launcher.users !== undefined) {
      const unreadable = unreadableByOthers(imagePaths(image));
      if (unreadable !== undefined)
        throw new SandboxStartError(`the sandbox cannot read its function: ${unreadable}`);
    }
    return image;
  }

  async create(id: string, spec: FunctionSpec, signal?: AbortSignal): Promise<CreatedSandbox> {
    this.assertCreatable(id);
    const launcher = this.#launcher;
    const t0 = performance.now();
    const image = this.#image(spec);
    const tImage = performance.now();
    const port = await this.#opts.ports.acquireFree(this.#opts.host);
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
    const handle = { id, function: spec.name, host: this.#opts.host, port };

    const warm = spec.args.length === 0 ? this.#pool?.take(image) : undefined;
    let proc: Launched;
    if (warm !== undefined) {
      proc = warm;
      try {
        proc.cgroup?.limitMemory(limits.memoryMib);
        proc.memoryMib = limits.memoryMib;
      } catch (err) {
        signalGroup(proc.child, 'SIGKILL');
        this.#opts.ports.release(port);
        throw new UnavailableError(`cannot set the memory limit of ${id}: ${errorMessage(err)}`);
      }
    } else {
      try {
        proc = launcher.launch({
          groupId: id,
          command: image.command,
          args: [...image.args, ...spec.args],
          cwd: image.cwd,
          env: { ...inheritedEnv(), ...spec.env, ...image.env, ...sandboxEnv },
          memoryMib: limits.memoryMib,
          paths: imagePaths(image),
          control: false,
        });
      } catch (err) {
        this.#opts.ports.release(port);
        throw new SandboxStartError(`cannot start ${image.command}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    }
    const entry: Entry = { handle, proc, state: 'starting', limits, prewarmed: warm !== undefined };
    void proc.exit.then((reason) => this.#onSandboxExit(entry, reason));
    this.sandboxes.set(id, entry);
    const tSpawned = performance.now();

    const ready: Readiness =
      warm !== undefined && image.pool !== undefined
        ? await this.#pool!.assign(
            proc,
            {
              host: this.#opts.host,
              port,
              cwd: image.cwd,
              env: { ...spec.env, ...image.env, ...sandboxEnv },
              serve: image.pool,
            },
            this.#opts.readinessTimeoutMs,
            signal,
          )
        : await probeUntilReady({
            host: this.#opts.host,
            port,
            timeoutMs: this.#opts.readinessTimeoutMs,
            ...(signal === undefined ? {} : { signal }),
            failure: () => proc.exitReason,
          });
    const tReady = performance.now();
    if (!ready.ready) {
      await this.delete(id);
      const reason = proc.exitReason ?? ready.reason;
      // Deleted, so exited: its exit code says whether its port was taken.
      if (proc.child.exitCode === SANDBOX_EXIT.cannotListen)
        throw new UnavailableError(`sandbox port ${port} was taken: ${reason}`);
      if (signal?.aborted === true) throw new UnavailableError(`creation of ${id} aborted`);
      throw new SandboxStartError(`sandbox of ${spec.name} failed to start: ${reason}`);
    }
    entry.state = 'ready';
    try {
      proc.cgroup?.limitCpu(limits.cpuMilli);
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
    const entry = this.sandboxes.get(id);
    if (entry === undefined) return false;
    if (entry.state !== 'stopping') {
      entry.state = 'stopping';
      await stopProcess(entry.proc, this.#opts.stopGraceMs);
    } else {
      await entry.proc.exit;
    }
    return true;
  }

  logs(functionName: string, sinceMs?: number): SandboxOutput[] {
    return this.outputs(functionName, sinceMs, (e) => e.proc.logs);
  }

  /** Pool hosts warm and waiting (for tests and benchmarks). */
  get warmHosts(): number {
    return this.#pool?.warm ?? 0;
  }

  /** Host pid of the sandbox's first process (its tree holds the rest), for benchmarks. */
  hostPid(id: string): number | undefined {
    return this.sandboxes.get(id)?.proc.child.pid;
  }

  /** Whether the sandbox is a pool host that took it over (for tests and benchmarks). */
  isPrewarmed(id: string): boolean {
    return this.sandboxes.get(id)?.prewarmed === true;
  }

  protected async shutdown(): Promise<void> {
    await Promise.all([
      ...[...this.sandboxes.keys()].map((id) => this.delete(id)),
      this.#pool?.close(),
    ]);
    await this.#launcher.close();
    this.#fence?.remove();
  }

  #onSandboxExit(entry: Entry, reason: string): void {
    if (this.sandboxes.get(entry.handle.id) !== entry) return;
    this.sandboxes.delete(entry.handle.id);
    this.#opts.ports.release(entry.handle.port);
    this.keepOutput(entry, reason, entry.proc.logs);
    if (entry.state !== 'ready') return;
    this.#opts.logger.warn(
      { sandbox: entry.handle.id, function: entry.handle.function, reason },
      'sandbox exited',
    );
    this.reportExit(entry.handle.id, reason);
  }
}
