/**
 * A small network of our own for tests that must not assume one host:
 * one network namespace per "machine", each with a veth pair to a bridge
 * that lives in a namespace of its own (nothing is added to the test's own
 * namespace), addresses 10.213.0.X/24 and no route out. Processes run in a
 * machine with `ip netns exec`; a machine is cut off by taking its link
 * down. Everything is removed by `remove()`.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export interface Machine {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export interface TestNetwork {
  machine(name: string): Machine;
  /** Takes the machine's link down (a partition) or up again. */
  setLink(name: string, up: boolean): void;
  /** Runs a command in a machine to completion; its stdout. */
  run(name: string, command: string, args: string[]): string;
  remove(): void;
}

/** Why such a network cannot be made here (namespaces, veth pairs, a bridge), or false. */
export function netnsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `btprobe${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe]);
  if (made.error !== undefined || made.status !== 0)
    return `cannot create a network namespace: ${made.stderr?.toString().trim() ?? made.error?.message ?? ''}`;
  try {
    for (const args of [
      ['link', 'add', 'br0', 'type', 'bridge'],
      ['link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb'],
    ]) {
      const r = spawnSync('ip', ['netns', 'exec', probe, 'ip', ...args]);
      if (r.status !== 0)
        return `cannot create a ${args[4]} in a network namespace: ${r.stderr.toString().trim()}`;
    }
    return false;
  } finally {
    spawnSync('ip', ['netns', 'delete', probe]);
  }
}

export function createNetwork(names: readonly string[]): TestNetwork {
  const tag = `bt${process.pid % 100000}`;
  const bridgeNs = `${tag}-br`;
  const machines = new Map<string, Machine & { hostIf: string }>();
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  const inNs = (ns: string, ...args: string[]) => ip('netns', 'exec', ns, 'ip', ...args);
  const removeAll = () => {
    for (const m of machines.values()) spawnSync('ip', ['netns', 'delete', m.ns]);
    spawnSync('ip', ['netns', 'delete', bridgeNs]);
  };
  try {
    ip('netns', 'add', bridgeNs);
    inNs(bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    inNs(bridgeNs, 'link', 'set', 'br0', 'up');
    inNs(bridgeNs, 'link', 'set', 'lo', 'up');
    names.forEach((name, i) => {
      const ns = `${tag}-${name}`;
      const address = `10.213.0.${i + 10}`;
      const hostIf = `v${i}`;
      ip('netns', 'add', ns);
      machines.set(name, { name, ns, ip: address, hostIf });
      // Both ends are made in the bridge's namespace, then one moves to the machine.
      inNs(bridgeNs, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0');
      inNs(bridgeNs, 'link', 'set', 'eth0', 'netns', ns);
      inNs(bridgeNs, 'link', 'set', hostIf, 'master', 'br0');
      inNs(bridgeNs, 'link', 'set', hostIf, 'up');
      inNs(ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      inNs(ns, 'link', 'set', 'eth0', 'up');
      inNs(ns, 'link', 'set', 'lo', 'up');
    });
  } catch (err) {
    removeAll();
    throw err;
  }
  const get = (name: string) => {
    const m = machines.get(name);
    if (m === undefined) throw new Error(`no machine ${name}`);
    return m;
  };
  return {
    machine: (name) => {
      const { hostIf: _h, ...m } = get(name);
      return m;
    },
    setLink: (name, up) => inNs(bridgeNs, 'link', 'set', get(name).hostIf, up ? 'up' : 'down'),
    run: (name, command, args) =>
      execFileSync('ip', ['netns', 'exec', get(name).ns, command, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 15_000,
      }),
    remove: removeAll,
  };
}
