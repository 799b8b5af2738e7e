/**
 * Sandbox users cannot open connections to this host. Per-sandbox users
 * (users.ts) keep functions from each other's files and processes, but the
 * host's network is shared: a function could connect to Baton's HTTP API on
 * loopback (which asks no token there), to etcd or Redis, to other
 * sandboxes. An iptables rule (and ip6tables, where the host has IPv6)
 * rejects new connections from the worker's range of sandbox uids to any
 * local address (everything routed over `lo`: loopback and the host's own
 * addresses). Replies on connections others opened to a sandbox (the data
 * plane's requests, the worker's probes) pass, and so does the outside
 * network. Ports in `allow` stay open: DNS (a local resolver), and the
 * data plane's invocation port so functions can call functions.
 *
 * The rules are tagged with the uid range (one per worker on a host); a
 * worker removes its own when it stops, and any left by an earlier run of
 * the same range when it starts.
 */
import { execFileSync } from 'node:child_process';
import { errorMessage } from '../../../../shared/errors.js';
import { onPath } from '../../../../shared/path-lookup.js';

/** DNS: a host's resolver may listen on loopback (systemd-resolved's 127.0.0.53). */
export const ALWAYS_ALLOWED_PORTS = [53];

export interface LocalFence {
  /** One line for the worker's report. */
  readonly description: string;
  /** Deletes the rules. Idempotent. */
  remove(): void;
}

/**
 * Installs the rules for uids `first`-`last`, or says why it cannot
 * (not root, iptables missing, the kernel refused a rule).
 */
export function fenceLocalConnections(
  first: number,
  last: number,
  allow: readonly number[],
): LocalFence | string {
  if (process.getuid?.() !== 0) return 'local network fence: the worker is not root';
  if (!onPath('iptables'))
    return 'local network fence: iptables not found (Debian package iptables)';
  const ports = [...new Set([...ALWAYS_ALLOWED_PORTS, ...allow])].sort((a, b) => a - b);
  const rules = fenceRules(first, last, ports);
  const tools = fenceTools();
  const remove = () => removeLocalFence(first, last, tools);
  remove();
  for (const tool of tools) {
    // Inserted at the top in reverse, so the ACCEPTs come before the REJECT.
    for (const rule of [...rules].reverse()) {
      const failed = run(tool, ['-I', 'OUTPUT', '1', ...rule]);
      if (failed !== undefined) {
        remove();
        return `local network fence: ${tool} refused a rule: ${failed}`;
      }
    }
  }
  return {
    description: `no connections to this host's ports but ${ports.join(', ')} (${tools.join(' and ')}, uids ${first}-${last})`,
    remove,
  };
}

/**
 * Deletes the rules of uids `first`-`last`, whatever ports they let
 * through (those of a worker killed with SIGKILL, say). Never throws.
 */
export function removeLocalFence(first: number, last: number, tools?: readonly string[]): void {
  if (process.getuid?.() !== 0 || !onPath('iptables')) return;
  const tag = `baton sandboxes ${first}-${last}`;
  for (const tool of tools ?? fenceTools()) {
    let listed: string;
    try {
      listed = execFileSync(tool, ['-w', '5', '-S', 'OUTPUT'], { encoding: 'utf8' });
    } catch {
      continue;
    }
    for (const line of listed.split('\n'))
      if (line.startsWith('-A OUTPUT ') && line.includes(`"${tag}"`))
        run(tool, ['-D', 'OUTPUT', ...splitRule(line.slice('-A OUTPUT '.length))]);
  }
}

/** iptables, and ip6tables where the host has IPv6. */
function fenceTools(): string[] {
  return ['iptables', ...(onPath('ip6tables') && ipv6Works() ? ['ip6tables'] : [])];
}

/** A rule as `iptables -S` prints it, as arguments (double-quoted parts kept whole). */
function splitRule(rule: string): string[] {
  return [...rule.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** The rules' match and target, without the chain: ACCEPTs for `ports` first, then the REJECT. */
export function fenceRules(first: number, last: number, ports: readonly number[]): string[][] {
  const who = ['-o', 'lo', '-m', 'owner', '--uid-owner', `${first}-${last}`];
  const fresh = ['-m', 'conntrack', '--ctstate', 'NEW'];
  const tag = ['-m', 'comment', '--comment', `baton sandboxes ${first}-${last}`];
  const accepts = ['tcp', 'udp'].map((proto) => [
    ...who,
    '-p',
    proto,
    '-m',
    'multiport',
    '--dports',
    ports.join(','),
    ...fresh,
    ...tag,
    '-j',
    'ACCEPT',
  ]);
  return [...accepts, [...who, ...fresh, ...tag, '-j', 'REJECT']];
}

/** undefined when the command succeeded, else its error's first line. */
function run(tool: string, args: string[]): string | undefined {
  try {
    execFileSync(tool, ['-w', '5', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    return undefined;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return (stderr === undefined || stderr === '' ? errorMessage(err) : stderr).split('\n')[0];
  }
}

function ipv6Works(): boolean {
  return run('ip6tables', ['-S', 'OUTPUT']) === undefined;
}
