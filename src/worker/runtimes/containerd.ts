/**
 * containerd runtime: each sandbox is an OCI container run by containerd
 * (runc, or gVisor's runsc with `--oci-runtime runsc`) in its own network
 * namespace, attached to a CNI bridge, with the function's port published on
 * a host port from the worker's pool (CNI portmap), so it is reachable at the
 * worker's address like any other sandbox. Memory limit and CPU quota come
 * from the function's requests, raised to the worker's floors.
 *
 * Baton drives containerd through its own client, `ctr` (one short command
 * per step), and follows its event stream (`ctr events`) for exits and OOM
 * kills. Delete stops the task (SIGTERM, SIGKILL after the grace period),
 * deletes the container with its snapshot, removes the CNI attachments
 * (veth, address, port forwarding) and the network namespace. Containers are
 * labelled with the worker's identity and network namespaces carry a tag of
 * it in their names; a worker that starts finds the containers and
 * namespaces a previous run of itself left behind and removes them, and
 * touches no one else's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../../shared/logger.js';
import { OCI_RUNTIMES, type OciRuntime } from '../../shared/runtime-names.js';
import {
  InvalidConfigError,
  SandboxStartError,
  UnavailableError,
  errorMessage,
} from '../../shared/errors.js';
import type { FunctionSpec } from '../../shared/function-spec.js';
import { NO_CAPABILITIES } from '../../shared/cluster-objects.js';
import { ExitedOutputs, lastLines, type SandboxOutput } from '../log-buffer.js';
import type { PortPool } from '../ports.js';
import { probeUntilReady } from '../probe.js';
import {
  CONNECT_TIMEOUT,
  DEFAULT_CONTAINERD_ADDRESS,
  DEFAULT_CONTAINERD_NAMESPACE,
  ctr,
  onPath,
  pathOf,
  runCommand,
} from '../../shared/containerd.js';
import { DEFAULT_READINESS_TIMEOUT_MS, DEFAULT_STOP_GRACE_MS } from './process.js';
import { DEFAULT_MIN_CPU_REQUEST_MILLI, defaultCreationConcurrency, limitsFor } from './limits.js';
import type { SandboxLimits } from './isolation/cgroups.js';
import type {
  CreatedSandbox,
  HostReport,
  Resources,
  SandboxExitListener,
  SandboxHandle,
  SandboxRuntime,
} from './sandbox-runtime.js';

export { OCI_RUNTIMES, type OciRuntime };
export { DEFAULT_CONTAINERD_ADDRESS, DEFAULT_CONTAINERD_NAMESPACE };
export const DEFAULT_CNI_SUBNET = '10.89.0.0/16';
export const DEFAULT_CNI_BRIDGE = 'baton0';
/** Where Debian's containernetworking-plugins and the upstream tarball put the plugins. */
const CNI_PATHS = ['/usr/lib/cni', '/opt/cni/bin'];
const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'];
const CNI_NETWORK = 'baton';
/** Bytes of a container's output kept for `baton logs` and failure reasons. */
const LOG_TAIL_BYTES = 64 * 1024;
/** Where `ip netns` keeps named network namespaces. */
const NETNS_DIR = '/var/run/netns';

const SHIMS: Record<OciRuntime, { runtime: string; shim: string }> = {
  runc: { runtime: 'io.containerd.runc.v2', shim: 'containerd-shim-runc-v2' },
  runsc: { runtime: 'io.containerd.runsc.v1', shim: 'containerd-shim-runsc-v1' },
};

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
}

interface Entry {
  handle: SandboxHandle;
  state: 'starting' | 'ready' | 'stopping';
  limits: SandboxLimits;
  /** The function's port inside the container (published on handle.port). */
  containerPort: number;
  logFile: string;
  /** Set once containerd reports the task's end. */
  exitReason: string | undefined;
  oom: boolean;
  exited: Promise<void>;
  markExited: () => void;
  /** What it wrote (the newest LOG_TAIL_BYTES), kept once it is removed. */
  output?: string;
  /** Set once its removal has begun; resolves when everything of it is gone. */
  removal?: Promise<void>;
}

/** Docker-style short names (`busybox`, `library/nginx:1`) as containerd needs them: fully qualified. */
export function normalizeImageRef(image: string): string {
  let ref = image.trim();
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  if (slash < 0) ref = `docker.io/library/${ref}`;
  else if (!first.includes('.') && !first.includes(':') && first !== 'localhost')
    ref = `docker.io/${ref}`;
  const lastPart = ref.slice(ref.lastIndexOf('/') + 1);
  if (!lastPart.includes(':') && !ref.includes('@')) ref += ':latest';
  return ref;
}

/** The containerd reference an image name may take: letters, digits, and the separators of a reference. */
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:@]*$/i;

export class ContainerdRuntime implements SandboxRuntime {
  readonly name = 'containerd';
  readonly capabilities = NO_CAPABILITIES;
  readonly sandboxFloor: Resources;
  readonly creationConcurrency: number;
  readonly #o: Required<
    Omit<
      ContainerdRuntimeOptions,
      'cniPath' | 'identity' | 'minCpuRequestMilli' | 'creationConcurrency'
    >
  > & {
    identity: string;
  };
  #cniPath = '';
  readonly #sandboxes = new Map<string, Entry>();
  readonly #exitedOutputs = new ExitedOutputs();
  readonly #images = new Map<string, Promise<number>>();
  #listener: SandboxExitListener | undefined;
  #events: ChildProcess | undefined;
  #eventsRestart: NodeJS.Timeout | undefined;
  readonly #logDir: string;
  /** Names of this worker's network namespaces start with this (`baton-TAG-`). */
  readonly #netnsPrefix: string;
  /** containerd's logger for every container (see loggerUri); set by checkHost. */
  #logUri = '';
  #closing: Promise<void> | undefined;

  constructor(o: ContainerdRuntimeOptions) {
    this.#o = {
      host: o.host,
      ports: o.ports,
      logger: o.logger,
      address: o.address ?? DEFAULT_CONTAINERD_ADDRESS,
      namespace: o.namespace ?? DEFAULT_CONTAINERD_NAMESPACE,
      ociRuntime: o.ociRuntime ?? 'runc',
      cniSubnet: o.cniSubnet ?? DEFAULT_CNI_SUBNET,
      cniBridge: o.cniBridge ?? DEFAULT_CNI_BRIDGE,
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
    if (o.cniPath !== undefined) this.#cniPath = o.cniPath;
    if (!OCI_RUNTIMES.includes(this.#o.ociRuntime))
      throw new InvalidConfigError(
        `--oci-runtime: unknown OCI runtime "${String(this.#o.ociRuntime)}" (expected ${OCI_RUNTIMES.join(' or ')})`,
      );
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(this.#o.cniSubnet))
      throw new InvalidConfigError(`--cni-subnet: "${this.#o.cniSubnet}" is not an IPv4 CIDR`);
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(this.#o.cniBridge))
      throw new InvalidConfigError(
        `--cni-bridge: "${this.#o.cniBridge}" is not a valid interface name (1-15 letters, digits, '_', '.', '-')`,
      );
    this.#logDir = mkdtempSync(join(tmpdir(), 'baton-containerd-logs-'));
    this.#netnsPrefix = netnsPrefix(this.#o.identity);
  }

  async checkHost(): Promise<HostReport> {
    if (process.getuid?.() !== 0)
      throw new InvalidConfigError(
        '--runtime containerd: needs root (network namespaces, CNI and containerd are root-only here)',
      );
    if (!existsSync(this.#o.address))
      throw new InvalidConfigError(
        `--containerd-address: no socket at ${this.#o.address} (is containerd running?)`,
      );
    let version: string;
    try {
      version = (await this.#ctr(['version'])).match(/Server:[\s\S]*?Version:\s*(\S+)/)?.[1] ?? '?';
    } catch (err) {
      throw new InvalidConfigError(
        `--containerd-address: cannot reach containerd at ${this.#o.address}: ${errorMessage(err)}`,
      );
    }
    const cniPath =
      this.#cniPath !== ''
        ? this.#cniPath
        : (CNI_PATHS.find((d) => existsSync(join(d, 'bridge'))) ?? CNI_PATHS[0]!);
    const missing = CNI_PLUGINS.filter((p) => !existsSync(join(cniPath, p)));
    if (missing.length > 0)
      throw new InvalidConfigError(
        `--cni-path: ${cniPath} lacks the CNI plugins ${missing.join(', ')} (Debian: apt-get install containernetworking-plugins)`,
      );
    this.#cniPath = cniPath;
    const shim = SHIMS[this.#o.ociRuntime];
    if (!onPath(shim.shim))
      throw new InvalidConfigError(
        `--oci-runtime: ${this.#o.ociRuntime} needs ${shim.shim} on PATH, which is not there`,
      );
    if (!onPath('ip'))
      throw new InvalidConfigError(
        '--runtime containerd: needs the `ip` command (Debian: iproute2)',
      );
    const cat = pathOf('cat');
    if (cat === undefined)
      throw new InvalidConfigError(
        '--runtime containerd: needs the `cat` command for container output (Debian: coreutils)',
      );
    this.#logUri = loggerUri(cat, this.#logDir);
    this.#followEvents();
    const stale = await this.#removeStale();
    const staleNetworks = await this.#removeStaleNetworks();
    return {
      notes: [
        `containerd ${version} at ${this.#o.address}, namespace ${this.#o.namespace}, OCI runtime ${this.#o.ociRuntime} (${shim.runtime})`,
        `network: a namespace per sandbox on CNI bridge ${this.#o.cniBridge} (${this.#o.cniSubnet}), function port published on ${this.#o.host}:${this.#o.ports.first}-${this.#o.ports.last} (plugins in ${cniPath})`,
        `limits: requested memory (at least ${this.#o.minMemoryLimitMib} MiB) and requested milli-CPU (at least ${this.#o.minCpuLimitMilli}) per container`,
        ...(stale > 0
          ? [`removed ${stale} container(s) left by an earlier run of this worker`]
          : []),
        ...(staleNetworks > 0
          ? [`removed ${staleNetworks} network namespace(s) left by an earlier run of this worker`]
          : []),
      ],
    };
  }

  async create(id: string, spec: FunctionSpec, signal?: AbortSignal): Promise<CreatedSandbox> {
    if (this.#closing !== undefined) throw new UnavailableError('worker is shutting down');
    if (this.#sandboxes.has(id)) throw new SandboxStartError(`sandbox ${id} already exists`);
    if (!IMAGE_REF.test(spec.image))
      throw new SandboxStartError(
        `image "${spec.image}" is not an image reference (the containerd runtime runs OCI images)`,
      );
    const t0 = performance.now();
    const ref = normalizeImageRef(spec.image);
    const imageFetchMs = await this.#ensureImage(ref);
    const port = this.#o.ports.acquire();
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
      exitReason: undefined,
      oom: false,
      exited: new Promise((resolve) => (markExited = resolve)),
      markExited,
    };
    this.#sandboxes.set(id, entry);
    const t1 = performance.now();
    let networkMs = 0;
    let startMs = 0;
    try {
      await runCommand('ip', ['netns', 'add', this.#netns(id)]).catch((err: unknown) => {
        throw new UnavailableError(
          `cannot make a network namespace for ${id}: ${errorMessage(err)}`,
        );
      });
      const network = this.#cniAdd(id, port, spec.port).then(() => {
        networkMs = performance.now() - t1;
      });
      const run = this.#ctr(this.#runArgs(id, port, ref, spec, limits)).then(() => {
        startMs = performance.now() - t1;
      });
      const [net, started] = await Promise.allSettled([network, run]);
      if (started.status === 'rejected') {
        // The image may have been removed since it was last seen: look again next time.
        this.#images.delete(ref);
        throw new SandboxStartError(
          `cannot start a container of ${ref}: ${errorMessage(started.reason)}`,
        );
      }
      if (net.status === 'rejected')
        throw new UnavailableError(
          `cannot attach ${id} to the network: ${errorMessage(net.reason)}`,
        );
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
        const output = lastLines(entry.output ?? '', 4);
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
    const entry = this.#sandboxes.get(id);
    if (entry === undefined || entry.removal !== undefined) return false;
    await this.#teardown(entry);
    return true;
  }

  list(): SandboxHandle[] {
    return [...this.#sandboxes.values()].filter((e) => e.state === 'ready').map((e) => e.handle);
  }

  logs(functionName: string): SandboxOutput[] {
    const running = [...this.#sandboxes.values()]
      .filter((e) => e.handle.function === functionName)
      .map((e) => ({
        id: e.handle.id,
        function: functionName,
        state: e.exitReason === undefined ? 'running' : `exited: ${e.exitReason}`,
        text: readTail(e.logFile),
      }));
    return [...this.#exitedOutputs.of(functionName), ...running];
  }

  onExit(listener: SandboxExitListener): void {
    this.#listener = listener;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#sandboxes.values()].map((e) => this.#teardown(e)));
      clearTimeout(this.#eventsRestart);
      this.#events?.kill('SIGTERM');
      this.#events = undefined;
      rmSync(this.#logDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #runArgs(
    id: string,
    hostPort: number,
    ref: string,
    spec: FunctionSpec,
    limits: SandboxLimits,
  ): string[] {
    const env = { ...spec.env, PORT: String(spec.port) };
    return [
      'run',
      '--detach',
      '--runtime',
      SHIMS[this.#o.ociRuntime].runtime,
      '--label',
      `baton.worker=${this.#o.identity}`,
      '--label',
      `baton.function=${spec.name}`,
      '--label',
      `baton.ports=${hostPort}:${spec.port}`,
      '--with-ns',
      `network:${this.#netnsPath(id)}`,
      '--memory-limit',
      String(limits.memoryMib * 1024 * 1024),
      '--cpu-period',
      '100000',
      '--cpu-quota',
      String(limits.cpuMilli * 100),
      '--log-uri',
      this.#logUri,
      ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ref,
      id,
      ...spec.args,
    ];
  }

  /** Makes sure containerd has the image, pulling it once if not; resolves the time the pull took. */
  #ensureImage(ref: string): Promise<number> {
    let known = this.#images.get(ref);
    if (known === undefined) {
      known = (async () => {
        const present = (await this.#ctr(['images', 'ls', '-q', `name==${ref}`])).trim() !== '';
        if (present) return 0;
        const t0 = performance.now();
        try {
          await this.#ctr(['images', 'pull', ref]);
        } catch (err) {
          throw new SandboxStartError(
            `image ${ref} is not in containerd (namespace ${this.#o.namespace}) and could not be pulled: ${errorMessage(err)}; import a local image with \`baton image import FILE.tar\``,
          );
        }
        return performance.now() - t0;
      })();
      this.#images.set(ref, known);
      known.catch(() => this.#images.delete(ref));
    }
    return known;
  }

  async #cniAdd(id: string, hostPort: number, containerPort: number): Promise<void> {
    await Promise.all([
      this.#cni('ADD', id, 'lo', { type: 'loopback' }),
      this.#cniAddEth0(id, hostPort, containerPort),
    ]);
  }

  async #cniAddEth0(id: string, hostPort: number, containerPort: number): Promise<void> {
    const bridge = await this.#cni('ADD', id, 'eth0', this.#bridgeConfig()).catch(
      async (err: unknown) => {
        // An address still reserved for this id (a creation interrupted before its
        // cleanup, e.g. by a killed worker): release it and try once more.
        if (!/duplicate allocation/.test(errorMessage(err))) throw err;
        await this.#cni('DEL', id, 'eth0', this.#bridgeConfig());
        return this.#cni('ADD', id, 'eth0', this.#bridgeConfig());
      },
    );
    await this.#cni('ADD', id, 'eth0', {
      ...this.#portmapConfig(hostPort, containerPort),
      prevResult: JSON.parse(bridge) as unknown,
    });
  }

  async #cniDel(id: string, hostPort: number, containerPort: number): Promise<void> {
    // Reverse order of ADD; each plugin finds what it made by container id (portmap also needs the mapping).
    for (const [ifname, conf] of [
      ['eth0', this.#portmapConfig(hostPort, containerPort)],
      ['eth0', this.#bridgeConfig()],
      ['lo', { type: 'loopback' }],
    ] as const) {
      await this.#cni('DEL', id, ifname, conf).catch((err: unknown) =>
        this.#o.logger.warn(
          { sandbox: id, plugin: conf.type, err: errorMessage(err) },
          'CNI DEL failed',
        ),
      );
    }
  }

  #bridgeConfig() {
    return {
      type: 'bridge',
      bridge: this.#o.cniBridge,
      isGateway: true,
      ipMasq: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: this.#o.cniSubnet }]],
        routes: [{ dst: '0.0.0.0/0' }],
      },
    };
  }

  #portmapConfig(hostPort: number, containerPort: number) {
    return {
      type: 'portmap',
      capabilities: { portMappings: true },
      snat: true,
      runtimeConfig: { portMappings: [{ hostPort, containerPort, protocol: 'tcp' }] },
    };
  }

  /** Runs one CNI plugin the way the CNI spec says a runtime does: env for the call, JSON config on stdin. */
  #cni(
    command: 'ADD' | 'DEL',
    id: string,
    ifname: string,
    conf: { type: string } & Record<string, unknown>,
  ): Promise<string> {
    const input = JSON.stringify({ cniVersion: '1.0.0', name: CNI_NETWORK, ...conf });
    return runCommand(join(this.#cniPath, conf.type), [], {
      input,
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: this.#netnsPath(id),
        CNI_IFNAME: ifname,
        CNI_PATH: this.#cniPath,
      },
    });
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
      await this.#ctr(['tasks', 'kill', '--signal', 'SIGTERM', id]).catch(() => undefined);
      const stopped = await Promise.race([
        entry.exited.then(() => true),
        sleepMs(this.#o.stopGraceMs).then(() => false),
      ]);
      if (!stopped)
        await this.#ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]).catch(() => undefined);
    }
    await this.#removeContainer(id);
    await this.#removeNetwork(id, entry.handle.port, entry.containerPort);
    entry.output = readTail(entry.logFile);
    this.#exitedOutputs.add({
      id,
      function: entry.handle.function,
      state: `exited: ${entry.exitReason ?? 'deleted'}`,
      text: entry.output,
    });
    rmSync(entry.logFile, { force: true });
    this.#o.ports.release(entry.handle.port);
    this.#sandboxes.delete(id);
    entry.exitReason ??= 'deleted';
    entry.markExited();
  }

  async #removeContainer(id: string): Promise<void> {
    await this.#ctr(['tasks', 'delete', '--force', id]).catch(() => undefined);
    await this.#ctr(['containers', 'delete', id]).catch((err: unknown) => {
      if (!/not found/i.test(errorMessage(err)))
        this.#o.logger.warn({ sandbox: id, err: errorMessage(err) }, 'cannot delete container');
    });
  }

  /** Removes containers labelled with this worker's identity (a previous run's), with their networks. */
  async #removeStale(): Promise<number> {
    const ids = (
      await this.#ctr(['containers', 'ls', '-q', `labels."baton.worker"==${this.#o.identity}`])
    )
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !this.#sandboxes.has(l));
    for (const id of ids) {
      const labels = await this.#ctr(['containers', 'info', id]).then(
        (info) => (JSON.parse(info) as { Labels?: Record<string, string> }).Labels ?? {},
        (): Record<string, string> => ({}),
      );
      const [hostPort, containerPort] = (labels['baton.ports'] ?? '').split(':').map(Number);
      await this.#removeContainer(id);
      await this.#removeNetwork(id, hostPort, containerPort);
    }
    return ids.length;
  }

  /**
   * Removes the network namespaces of this worker's earlier run that no
   * container held (a worker that died between making one and starting its
   * container), with whatever the CNI plugins attached to them.
   */
  async #removeStaleNetworks(): Promise<number> {
    let names: string[];
    try {
      names = readdirSync(NETNS_DIR);
    } catch {
      return 0; // none made yet on this host
    }
    const stale = names
      .filter((n) => n.startsWith(this.#netnsPrefix))
      .map((n) => n.slice(this.#netnsPrefix.length))
      .filter((id) => !this.#sandboxes.has(id));
    for (const id of stale) await this.#removeNetwork(id, undefined, undefined);
    return stale.length;
  }

  /**
   * Detaches a sandbox from the network (CNI DEL, which also drops its port
   * forwarding) and deletes its namespace. The ports may be unknown (a
   * leftover): port forwarding is then removed by the sandbox id alone.
   */
  async #removeNetwork(
    id: string,
    hostPort: number | undefined,
    containerPort: number | undefined,
  ): Promise<void> {
    // portmap skips a DEL without mappings, though it finds its rules by the sandbox id.
    await this.#cniDel(id, hostPort || 1, containerPort || 1);
    await runCommand('ip', ['netns', 'delete', this.#netns(id)]).catch((err: unknown) => {
      if (existsSync(this.#netnsPath(id)))
        this.#o.logger.warn(
          { sandbox: id, err: errorMessage(err) },
          'cannot delete network namespace',
        );
    });
  }

  #netns(id: string): string {
    return `${this.#netnsPrefix}${id}`;
  }

  #netnsPath(id: string): string {
    return join(NETNS_DIR, this.#netns(id));
  }

  /** Follows containerd's events for task exits and OOM kills; restarts the follower if it ends. */
  #followEvents(): void {
    if (this.#events !== undefined || this.#closing !== undefined) return;
    const args = ['--address', this.#o.address, '--connect-timeout', CONNECT_TIMEOUT, 'events'];
    // setpriv (util-linux) has the kernel end the follower with the worker,
    // however the worker ends (a SIGKILLed worker left it running).
    const child = onPath('setpriv')
      ? spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'ctr', ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn('ctr', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#events = child;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => this.#onEvent(line));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    child.once('error', (err) =>
      this.#o.logger.error({ err: errorMessage(err) }, 'cannot follow containerd events'),
    );
    child.once('exit', (code) => {
      if (this.#events !== child) return;
      this.#events = undefined;
      if (this.#closing !== undefined) return;
      this.#o.logger.warn(
        { code, stderr: stderr.trim() },
        'containerd event stream ended; following it again in 1 s',
      );
      this.#eventsRestart = setTimeout(() => {
        this.#followEvents();
        // Exits while nobody listened: once the new follower is subscribed, ask containerd.
        this.#eventsRestart = setTimeout(() => void this.#reconcile(), 500);
      }, 1000);
    });
  }

  /** Reports ready sandboxes whose task containerd no longer runs (exits missed by the event follower). */
  async #reconcile(): Promise<void> {
    let running: Set<string>;
    try {
      running = new Set(
        (await this.#ctr(['tasks', 'ls']))
          .split('\n')
          .slice(1)
          .map((l) => l.trim().split(/\s+/))
          .filter((cols) => cols[2] === 'RUNNING')
          .map((cols) => cols[0]!),
      );
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'cannot list containerd tasks');
      return;
    }
    for (const entry of this.#sandboxes.values())
      if (entry.state === 'ready' && !running.has(entry.handle.id))
        this.#exited(entry, 'stopped while containerd events were not followed');
  }

  #onEvent(line: string): void {
    // "2026-11-24 14:35:11.133 +0000 UTC NAMESPACE TOPIC {json}"
    const m = /^\S+ \S+ \S+ \S+ (\S+) (\S+) (\{.*\})$/.exec(line);
    if (m === null || m[1] !== this.#o.namespace) return;
    const topic = m[2];
    if (topic !== '/tasks/exit' && topic !== '/tasks/oom') return;
    let event: { container_id?: string; id?: string; exit_status?: number };
    try {
      event = JSON.parse(m[3]!) as typeof event;
    } catch {
      return;
    }
    const entry = this.#sandboxes.get(event.container_id ?? '');
    if (entry === undefined) return;
    if (topic === '/tasks/oom') {
      entry.oom = true;
      return;
    }
    // Exits of processes started inside the container (exec) carry their own id.
    if (event.id !== undefined && event.id !== event.container_id) return;
    const status = event.exit_status ?? 0;
    this.#exited(
      entry,
      // An OOM event counts any process of the container; the task's own SIGKILL says it was the one.
      entry.oom && status === 128 + constants.signals.SIGKILL
        ? `killed by the OOM killer: over its memory limit of ${entry.limits.memoryMib} MiB`
        : status > 128
          ? `killed by ${signalName(status - 128)}`
          : `exited with code ${status}`,
    );
  }

  #exited(entry: Entry, reason: string): void {
    if (entry.exitReason !== undefined) return;
    entry.exitReason = reason;
    const wasReady = entry.state === 'ready';
    entry.markExited();
    if (!wasReady) return;
    // Reported once removed: its output is complete then, and it is no longer listed.
    void this.#teardown(entry).then(() => {
      const output = lastLines(entry.output ?? '', 3);
      this.#listener?.(entry.handle.id, `${reason}${output === '' ? '' : `: ${output}`}`);
    });
  }

  #ctr(args: string[]): Promise<string> {
    return ctr(this.#o, args);
  }
}

/** SIGKILL for 9: the way an exit status over 128 names the signal that ended the task. */
function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

/**
 * `baton-TAG-`: TAG is short for the worker's identity, so that a worker
 * finds its own leftovers among every worker's namespaces on the host.
 */
export function netnsPrefix(identity: string): string {
  return `baton-${createHash('sha256').update(identity).digest('hex').slice(0, 8)}-`;
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * containerd's `binary://` logger for containers' output: the shim starts it
 * with the container's stdout on fd 3 and stderr on fd 4 and waits for fd 5
 * to close; two `cat`s append both to LOG_DIR/CONTAINER_ID.log (the sandbox's
 * logFile), and the shim waits for them when the task is deleted. containerd
 * 1.6's own `file://` logging lost the output of a container that exited at
 * once (`ctr run --detach --log-uri file://...` alone: 3 of 40 runs on an
 * idle machine, 24 of 30 with both cores busy; this logger: 0 of 40 and 0
 * of 30), so a crash at start came without its last words.
 */
function loggerUri(cat: string, logDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const file = `${q(logDir)}/"$CONTAINER_ID".log`;
  const script = `exec 5>&-; ${q(cat)} <&3 >>${file} & exec ${q(cat)} <&4 >>${file}`;
  return `binary:///bin/sh?-c=${encodeURIComponent(script)}`;
}

/** The newest LOG_TAIL_BYTES of a container's log file ('' when there is none). */
function readTail(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}
