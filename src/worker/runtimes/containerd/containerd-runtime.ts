/**
 * containerd runtime: each sandbox is an OCI container run by containerd
 * (runc, or gVisor's runsc with `--oci-runtime runsc`) in its own network
 * namespace, attached to a CNI bridge, with the function's port published on
 * a host port from the worker's pool (cni-network.ts), so it is reachable at
 * the worker's address like any other sandbox. Memory limit and CPU quota
 * come from the function's requests, raised to the worker's floors; its
 * filesystem is read-only but for a private /tmp; its root is an
 * unprivileged host user (container-users.ts).
 *
 * Baton drives containerd with `ctr` (one short command per step, ctr.ts) and
 * follows its event stream for exits and OOM kills (event-follower.ts).
 * Delete stops the task (SIGTERM, then SIGKILL), deletes the container with
 * its snapshot, then its network.
 * Containers are labelled with the worker's identity: a worker that starts
 * removes the containers and namespaces an earlier run of itself left.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../../shared/logger.js';
import { OCI_RUNTIMES, type OciRuntime } from '../../../shared/runtime-names.js';
import {
  InvalidConfigError,
  SandboxStartError,
  UnavailableError,
  errorMessage,
} from '../../../shared/errors.js';
import type { FunctionSpec } from '../../../shared/function-spec.js';
import { NO_CAPABILITIES } from '../../../shared/cluster-objects.js';
import { lastLines, type OutputReader, type SandboxOutput } from '../../log-buffer.js';
import type { PortPool } from '../../ports.js';
import { probeUntilReady } from '../../probe.js';
import type { CreatedSandbox, HostReport, Resources } from '../sandbox-runtime.js';
import { RuntimeBase, type SandboxEntry } from '../runtime-base.js';
import {
  DEFAULT_MIN_CPU_REQUEST_MILLI,
  DEFAULT_READINESS_TIMEOUT_MS,
  DEFAULT_STOP_GRACE_MS,
  SANDBOX_TMP_MIB,
  defaultCreationConcurrency,
  limitsFor,
  type SandboxLimits,
} from '../limits.js';
import { DEFAULT_CONTAINERD_ADDRESS, DEFAULT_CONTAINERD_NAMESPACE } from './ctr.js';
import { SHIMS, checkContainerdHost, leftoverNotes } from './host-check.js';
import { ContainerdClient } from './containerd-client.js';
import { containerUsers, type ContainerUsers } from './container-users.js';
import { startContainer } from './container-start.js';
import { CniNetwork, DEFAULT_CNI_BRIDGE, DEFAULT_CNI_SUBNET } from './cni-network.js';
import { EventFollower, taskExitReason, type TaskEvent } from './event-follower.js';
import { freshLogDir, frozenLogFile, logFileReader, loggerUri } from './container-logs.js';
import { IMAGE_REF, normalizeImageRef } from './image-ref.js';
import {
  limitProcesses,
  probeProcessLimit,
  processLimitNote,
  removePidsCgroup,
} from './pids-limit.js';
import { waitAtMost } from '../../../shared/time.js';

export { OCI_RUNTIMES, type OciRuntime, DEFAULT_CONTAINERD_ADDRESS, DEFAULT_CONTAINERD_NAMESPACE };
export { DEFAULT_CNI_BRIDGE, DEFAULT_CNI_SUBNET, netnsPrefix } from './cni-network.js';
export { normalizeImageRef } from './image-ref.js';

export interface ContainerdRuntimeOptions {
  /** The worker's address: sandbox ports are published here. */
  host: string;
  ports: PortPool;
  logger: Logger;
  address?: string;
  namespace?: string;
  ociRuntime?: OciRuntime;
  cniSubnet?: string;
  cniBridge?: string;
  /** Directory of the CNI plugins (default: the first of /usr/lib/cni, /opt/cni/bin that has them). */
  cniPath?: string;
  readinessTimeoutMs?: number;
  stopGraceMs?: number;
  minCpuLimitMilli?: number;
  minMemoryLimitMib?: number;
  /** The least milli-CPU a sandbox is charged in placement. */
  minCpuRequestMilli?: number;
  /** Creations run at once. */
  creationConcurrency?: number;
  /** Label value that marks this worker's containers (default: HOST:FIRST-LAST of the port pool). */
  identity?: string;
  /** Who containers run as on the host (default: remapped, see container-users.ts). */
  containerUsers?: ContainerUsers;
}

interface Entry extends SandboxEntry {
  limits: SandboxLimits;
  /** The function's port inside the container (published on handle.port). */
  containerPort: number;
  logFile: string;
  /** Where ctr writes its process id. */
  pidFile: string;
  /** Set once containerd reports the task's end. */
  exitReason: string | undefined;
  oom: boolean;
  exited: Promise<void>;
  markExited: () => void;
  /** What it wrote (the newest bytes), kept once it is removed. */
  output?: OutputReader;
  /** Set once its removal has begun; resolves when everything of it is gone. */
  removal?: Promise<void>;
}

export class ContainerdRuntime extends RuntimeBase<Entry> {
  readonly name = 'containerd';
  readonly capabilities = NO_CAPABILITIES;
  readonly sandboxFloor: Resources;
  readonly creationConcurrency: number;
  readonly #o: Required<
    Omit<
      ContainerdRuntimeOptions,
      | 'cniSubnet'
      | 'cniBridge'
      | 'cniPath'
      | 'minCpuRequestMilli'
      | 'creationConcurrency'
      | 'containerUsers'
    >
  >;
  readonly #containerd: ContainerdClient;
  readonly #network: CniNetwork;
  readonly #events: EventFollower;
  readonly #logDir: string;
  readonly #users: ReturnType<typeof containerUsers>;
  #limitPids = false; // containers get a pids.max (pids-limit.ts): the host allows it
  /** containerd's logger for every container (see loggerUri); set by checkHost. */
  #logUri = '';

  /** Throws InvalidConfigError naming a bad option. */
  constructor(o: ContainerdRuntimeOptions) {
    super();
    this.#o = {
      host: o.host,
      ports: o.ports,
      logger: o.logger,
      address: o.address ?? DEFAULT_CONTAINERD_ADDRESS,
      namespace: o.namespace ?? DEFAULT_CONTAINERD_NAMESPACE,
      ociRuntime: o.ociRuntime ?? 'runc',
      readinessTimeoutMs: o.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS,
      stopGraceMs: o.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      minCpuLimitMilli: o.minCpuLimitMilli ?? 100,
      minMemoryLimitMib: o.minMemoryLimitMib ?? 16,
      identity: o.identity ?? `${o.host}:${o.ports.first}-${o.ports.last}`,
    };
    this.sandboxFloor = {
      cpuMilli: o.minCpuRequestMilli ?? DEFAULT_MIN_CPU_REQUEST_MILLI,
      memoryMib: this.#o.minMemoryLimitMib,
    };
    this.creationConcurrency = o.creationConcurrency ?? defaultCreationConcurrency();
    if (!OCI_RUNTIMES.includes(this.#o.ociRuntime))
      throw new InvalidConfigError(
        `--oci-runtime: unknown OCI runtime "${String(this.#o.ociRuntime)}" (expected ${OCI_RUNTIMES.join(' or ')})`,
      );
    this.#containerd = new ContainerdClient(this.#o, o.logger);
    this.#network = new CniNetwork({
      bridge: o.cniBridge ?? DEFAULT_CNI_BRIDGE,
      subnet: o.cniSubnet ?? DEFAULT_CNI_SUBNET,
      pluginDir: o.cniPath,
      identity: this.#o.identity,
      logger: o.logger,
    });
    this.#events = new EventFollower({
      address: this.#o.address,
      namespace: this.#o.namespace,
      logger: o.logger,
      onEvent: (e) => this.#onEvent(e),
      onGap: () => void this.#reconcile(),
    });
    this.#logDir = freshLogDir(this.#o.identity);
    this.#users = containerUsers(
      o.containerUsers ?? 'remapped',
      this.#o.ociRuntime,
      this.#o.identity,
    );
  }

  async checkHost(): Promise<HostReport> {
    const o = this.#o;
    const { version, cat } = await checkContainerdHost(o.address, o.ociRuntime, this.#containerd);
    const cniPath = this.#network.check();
    const shim = SHIMS[o.ociRuntime];
    this.#logUri = loggerUri(cat, this.#logDir);
    this.#events.start();
    const stale = await this.#removeStale();
    const staleNetworks = await this.#network.removeLeftovers((id) => this.sandboxes.has(id));
    const pids = probeProcessLimit(o.namespace);
    this.#limitPids = pids === undefined;
    return {
      notes: [
        `containerd ${version} at ${o.address}, namespace ${o.namespace}, OCI runtime ${o.ociRuntime} (${shim.runtime})`,
        `network: a namespace per sandbox on CNI bridge ${this.#network.bridge} (${this.#network.subnet}), function port published on ${o.host}:${o.ports.first}-${o.ports.last} (plugins in ${cniPath})`,
        `limits: requested memory (at least ${o.minMemoryLimitMib} MiB) and requested milli-CPU (at least ${o.minCpuLimitMilli}) per container`,
        ...leftoverNotes(stale, staleNetworks),
      ],
      isolation: `containers (${o.ociRuntime}): own namespaces and network namespace, ${this.#users.note}, read-only but a private /tmp (${SANDBOX_TMP_MIB} MiB), ${processLimitNote(pids)}`,
      warnings: [
        ...(pids === undefined ? [] : [`containers have no process limit: ${pids}`]),
        ...(this.#users.warning === undefined ? [] : [this.#users.warning]),
      ],
    };
  }

  async create(id: string, spec: FunctionSpec, signal?: AbortSignal): Promise<CreatedSandbox> {
    this.assertCreatable(id);
    if (!IMAGE_REF.test(spec.image))
      throw new SandboxStartError(
        `image "${spec.image}" is not an image reference (the containerd runtime runs OCI images)`,
      );
    const t0 = performance.now();
    const ref = normalizeImageRef(spec.image);
    const imageFetchMs = await this.#containerd.ensureImage(ref);
    const port = await this.#o.ports.acquireFree(this.#o.host);
    const limits = limitsFor(spec, {
      cpuMilli: this.#o.minCpuLimitMilli,
      memoryMib: this.#o.minMemoryLimitMib,
    });
    let markExited!: () => void;
    const entry: Entry = {
      handle: { id, function: spec.name, host: this.#o.host, port },
      state: 'starting',
      limits,
      containerPort: spec.port,
      logFile: join(this.#logDir, `${id}.log`),
      pidFile: join(this.#logDir, `${id}.pid`),
      exitReason: undefined,
      oom: false,
      exited: new Promise((resolve) => (markExited = resolve)),
      markExited,
    };
    this.sandboxes.set(id, entry);
    try {
      if (this.#limitPids) limitProcesses(this.#o.namespace, id);
      const { startMs, networkMs } = await startContainer(this.#containerd, this.#network, {
        run: {
          id,
          ref,
          runtime: SHIMS[this.#o.ociRuntime].runtime,
          labels: {
            'baton.worker': this.#o.identity,
            'baton.function': spec.name,
            'baton.ports': `${port}:${spec.port}`,
          },
          pidFile: entry.pidFile,
          memoryMib: limits.memoryMib,
          cpuMilli: limits.cpuMilli,
          logUri: this.#logUri,
          env: { ...spec.env, PORT: String(spec.port) },
          args: spec.args,
        },
        hostPort: port,
        containerPort: spec.port,
        users: this.#users.range,
        exited: entry.exited,
      });
      const t2 = performance.now();
      const probe = await probeUntilReady({
        host: this.#o.host,
        port,
        timeoutMs: this.#o.readinessTimeoutMs,
        ...(signal === undefined ? {} : { signal }),
        failure: () => entry.exitReason,
      });
      if (!probe.ready) {
        if (signal?.aborted === true) throw new UnavailableError(`creation of ${id} aborted`);
        // Its output is complete once the task is deleted (containerd drains its pipes first).
        await this.#teardown(entry);
        const output = lastLines(entry.output?.read().text ?? '', 4);
        throw new SandboxStartError(
          `sandbox of ${spec.name} failed to start: ${probe.reason}${output === '' ? '' : `: ${output}`}`,
        );
      }
      entry.state = 'ready';
      const readinessMs = performance.now() - t2;
      return {
        ...entry.handle,
        timings: {
          imageFetchMs,
          createMs: 0,
          networkMs,
          startMs,
          readinessMs,
          totalMs: performance.now() - t0,
        },
      };
    } catch (err) {
      await this.#teardown(entry);
      throw err;
    }
  }

  async delete(id: string): Promise<boolean> {
    const entry = this.sandboxes.get(id);
    if (entry === undefined || entry.removal !== undefined) return false;
    await this.#teardown(entry);
    return true;
  }

  logs(functionName: string, sinceMs?: number): SandboxOutput[] {
    return this.outputs(
      functionName,
      sinceMs,
      (e) => logFileReader(e.logFile),
      (e) => (e.exitReason === undefined ? 'running' : `exited: ${e.exitReason}`),
    );
  }

  protected async shutdown(): Promise<void> {
    await Promise.all([...this.sandboxes.values()].map((e) => this.#teardown(e)));
    this.#events.close();
    rmSync(this.#logDir, { recursive: true, force: true });
  }

  /** Stops and removes everything of the sandbox; safe to call at any stage of its life, once. */
  #teardown(entry: Entry): Promise<void> {
    entry.state = 'stopping';
    entry.removal ??= this.#remove(entry);
    return entry.removal;
  }

  async #remove(entry: Entry): Promise<void> {
    const id = entry.handle.id;
    if (entry.exitReason === undefined) {
      await this.#containerd.kill(id, 'SIGTERM');
      if (!(await waitAtMost(entry.exited, this.#o.stopGraceMs)))
        await this.#containerd.kill(id, 'SIGKILL');
    }
    await this.#containerd.remove(id);
    await this.#network.remove(id, entry.handle.port, entry.containerPort);
    removePidsCgroup(this.#o.namespace, id);
    entry.output = frozenLogFile(entry.logFile);
    this.keepOutput(entry, entry.exitReason ?? 'deleted', entry.output);
    rmSync(entry.logFile, { force: true });
    rmSync(entry.pidFile, { force: true });
    this.#o.ports.release(entry.handle.port);
    this.sandboxes.delete(id);
    entry.exitReason ??= 'deleted';
    entry.markExited();
  }

  /** Removes containers labelled with this worker's identity (a previous run's), with their networks. */
  async #removeStale(): Promise<number> {
    const stale = (await this.#containerd.labelled('baton.worker', this.#o.identity)).filter(
      (c) => !this.sandboxes.has(c.id),
    );
    for (const { id, labels } of stale) {
      const [hostPort, containerPort] = (labels['baton.ports'] ?? '').split(':').map(Number);
      await this.#containerd.remove(id);
      await this.#network.remove(id, hostPort, containerPort);
    }
    return stale.length;
  }

  /** Reports ready sandboxes whose task containerd no longer runs (exits missed by the follower). */
  async #reconcile(): Promise<void> {
    let running: Set<string>;
    try {
      running = await this.#containerd.runningTasks();
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'cannot list containerd tasks');
      return;
    }
    for (const entry of this.sandboxes.values())
      if (entry.state === 'ready' && !running.has(entry.handle.id))
        this.#exited(entry, 'stopped while containerd events were not followed');
  }

  #onEvent(event: TaskEvent): void {
    const entry = this.sandboxes.get(event.containerId);
    if (entry === undefined) return;
    if (event.kind === 'oom') {
      entry.oom = true;
      return;
    }
    this.#exited(entry, taskExitReason(event.status, entry.oom, entry.limits.memoryMib));
  }

  #exited(entry: Entry, reason: string): void {
    if (entry.exitReason !== undefined) return;
    entry.exitReason = reason;
    const wasReady = entry.state === 'ready';
    entry.markExited();
    if (!wasReady) return;
    // Reported once removed: its output is complete then, and it is no longer listed.
    void this.#teardown(entry).then(() => {
      const output = lastLines(entry.output?.read().text ?? '', 3);
      this.reportExit(entry.handle.id, `${reason}${output === '' ? '' : `: ${output}`}`);
    });
  }
}
