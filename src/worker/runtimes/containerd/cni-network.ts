/**
 * A containerd sandbox's network: its own network namespace, attached to a
 * CNI bridge with the function's port published on a host port (CNI
 * `loopback`, `bridge` with `host-local` addresses, `portmap`), run the way
 * the CNI spec says a runtime runs the plugins. Namespaces are named
 * `baton-TAG-SANDBOX`, TAG a hash of the worker's identity, so a worker finds
 * the ones an earlier run of itself left and touches no other worker's.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../../shared/logger.js';
import { InvalidConfigError, UnavailableError, errorMessage } from '../../../shared/errors.js';
import { commandFailure, runCommand } from './ctr.js';

export const DEFAULT_CNI_SUBNET = '10.89.0.0/16';
export const DEFAULT_CNI_BRIDGE = 'baton0';
/** Where Debian's containernetworking-plugins and the upstream tarball put the plugins. */
const CNI_PATHS = ['/usr/lib/cni', '/opt/cni/bin'];
const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'];
const CNI_NETWORK = 'baton';
/** Where `ip netns` keeps named network namespaces. */
const NETNS_DIR = '/var/run/netns';

/**
 * `baton-TAG-`: TAG is short for the worker's identity, so that a worker
 * finds its own leftovers among every worker's namespaces on the host.
 */
export function netnsPrefix(identity: string): string {
  return `baton-${createHash('sha256').update(identity).digest('hex').slice(0, 8)}-`;
}

export interface CniNetworkOptions {
  bridge: string;
  subnet: string;
  /** Directory of the plugins; found at check() when not given. */
  pluginDir: string | undefined;
  /** The worker's identity (see netnsPrefix). */
  identity: string;
  logger: Logger;
}

export class CniNetwork {
  readonly #o: CniNetworkOptions;
  readonly #prefix: string;
  #pluginDir = '';

  /** Throws InvalidConfigError naming a bad subnet or bridge option. */
  constructor(o: CniNetworkOptions) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(o.subnet))
      throw new InvalidConfigError(`--cni-subnet: "${o.subnet}" is not an IPv4 CIDR`);
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(o.bridge))
      throw new InvalidConfigError(
        `--cni-bridge: "${o.bridge}" is not a valid interface name (1-15 letters, digits, '_', '.', '-')`,
      );
    this.#o = o;
    this.#prefix = netnsPrefix(o.identity);
  }

  get bridge(): string {
    return this.#o.bridge;
  }

  get subnet(): string {
    return this.#o.subnet;
  }

  /** Finds the plugins; throws InvalidConfigError naming what is missing. Returns their directory. */
  check(): string {
    const dir =
      this.#o.pluginDir ?? CNI_PATHS.find((d) => existsSync(join(d, 'bridge'))) ?? CNI_PATHS[0]!;
    const missing = CNI_PLUGINS.filter((p) => !existsSync(join(dir, p)));
    if (missing.length > 0)
      throw new InvalidConfigError(
        `--cni-path: ${dir} lacks the CNI plugins ${missing.join(', ')} (Debian: apt-get install containernetworking-plugins)`,
      );
    this.#pluginDir = dir;
    return dir;
  }

  /** The path a container joins (`ctr run --with-ns network:PATH`). */
  namespacePath(id: string): string {
    return join(NETNS_DIR, this.#namespace(id));
  }

  /** Makes the sandbox's namespace; UnavailableError if it cannot. */
  async createNamespace(id: string): Promise<void> {
    await runCommand('ip', ['netns', 'add', this.#namespace(id)]).catch((err: unknown) => {
      throw new UnavailableError(`cannot make a network namespace for ${id}: ${errorMessage(err)}`);
    });
  }

  /**
   * Names the network namespace of a running process as the sandbox's (a
   * container that made its own: see UserRange); UnavailableError if it cannot.
   */
  async adoptNamespace(id: string, pid: number): Promise<void> {
    await runCommand('ip', ['netns', 'attach', this.#namespace(id), String(pid)]).catch(
      (err: unknown) => {
        throw new UnavailableError(
          `cannot name the network namespace of ${id}: ${errorMessage(err)}`,
        );
      },
    );
  }

  /** Attaches the namespace: loopback, and eth0 on the bridge with the port published. */
  async attach(id: string, hostPort: number, containerPort: number): Promise<void> {
    await Promise.all([
      this.#cni('ADD', id, 'lo', { type: 'loopback' }),
      this.#attachEth0(id, hostPort, containerPort),
    ]);
  }

  /**
   * Detaches a sandbox (CNI DEL, which also drops its port forwarding) and
   * deletes its namespace. The ports may be unknown (a leftover): port
   * forwarding is then removed by the sandbox id alone. Never rejects.
   */
  async remove(id: string, hostPort?: number, containerPort?: number): Promise<void> {
    // portmap skips a DEL without mappings, though it finds its rules by the sandbox id.
    const conf = this.#portmapConfig(hostPort || 1, containerPort || 1);
    // Reverse order of ADD; each plugin finds what it made by the sandbox id.
    for (const [ifname, c] of [
      ['eth0', conf],
      ['eth0', this.#bridgeConfig()],
      ['lo', { type: 'loopback' }],
    ] as const) {
      await this.#cni('DEL', id, ifname, c).catch((err: unknown) =>
        this.#o.logger.warn(
          { sandbox: id, plugin: c.type, err: errorMessage(err) },
          'CNI DEL failed',
        ),
      );
    }
    await runCommand('ip', ['netns', 'delete', this.#namespace(id)]).catch((err: unknown) => {
      if (existsSync(this.namespacePath(id)))
        this.#o.logger.warn(
          { sandbox: id, err: errorMessage(err) },
          'cannot delete network namespace',
        );
    });
  }

  /**
   * Removes the namespaces of this worker's earlier run that no sandbox of
   * its own holds (a worker that died between making one and starting its
   * container), with whatever the plugins attached to them. Returns how many.
   */
  async removeLeftovers(isOwn: (id: string) => boolean): Promise<number> {
    let names: string[];
    try {
      names = readdirSync(NETNS_DIR);
    } catch {
      return 0; // none made yet on this host
    }
    const stale = names
      .filter((n) => n.startsWith(this.#prefix))
      .map((n) => n.slice(this.#prefix.length))
      .filter((id) => !isOwn(id));
    for (const id of stale) await this.remove(id);
    return stale.length;
  }

  #namespace(id: string): string {
    return `${this.#prefix}${id}`;
  }

  async #attachEth0(id: string, hostPort: number, containerPort: number): Promise<void> {
    const bridge = await this.#cni('ADD', id, 'eth0', this.#bridgeConfig()).catch(
      async (err: unknown) => {
        // An address still reserved for this id (a creation interrupted before its
        // cleanup, e.g. by a killed worker): release it and try once more.
        if (commandFailure(err) !== 'already-reserved') throw err;
        await this.#cni('DEL', id, 'eth0', this.#bridgeConfig());
        return this.#cni('ADD', id, 'eth0', this.#bridgeConfig());
      },
    );
    await this.#cni('ADD', id, 'eth0', {
      ...this.#portmapConfig(hostPort, containerPort),
      prevResult: JSON.parse(bridge) as unknown,
    });
  }

  #bridgeConfig() {
    return {
      type: 'bridge',
      bridge: this.#o.bridge,
      isGateway: true,
      ipMasq: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: this.#o.subnet }]],
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

  /** Runs one plugin the way the CNI spec says a runtime does: env for the call, JSON config on stdin. */
  #cni(
    command: 'ADD' | 'DEL',
    id: string,
    ifname: string,
    conf: { type: string } & Record<string, unknown>,
  ): Promise<string> {
    const input = JSON.stringify({ cniVersion: '1.0.0', name: CNI_NETWORK, ...conf });
    return runCommand(join(this.#pluginDir, conf.type), [], {
      input,
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: this.namespacePath(id),
        CNI_IFNAME: ifname,
        CNI_PATH: this.#pluginDir,
      },
    });
  }
}
